// HOST1 ↔ NTB ↔ HOST2 over a direct pair: HOST2 binds an echo vhost device through the
// configuration tree, HOST1's virtio driver sends three messages and reads the echoes.
// The two sides share only the link's SharedArrayBuffers: run each half in its own
// worker by posting `link` to it (see test/workers.test.ts).
//
// Run: node --conditions=@x/source --import tsx packages/transport-ntb/examples/basic.ts
import { fileURLToPath } from 'node:url';
import { ConfigTree, VhostBus, VhostConfigFs } from '@x/vhost-core';
import { VIRTIO_DEV_ANY_ID, VirtioBus, type VirtioBuffer, type VirtioDriver } from '@x/virtio-core';
import type { Virtqueue } from '@x/vring';
import { createNtbPairLink, startNtbVhostSide, startNtbVirtioSide } from '@x/transport-ntb';
import { NtbEchoVhostDriver } from '@x/transport-ntb/testing';

/** Sends `messages` from HOST1 and resolves with the echoes HOST1 read back. */
export async function main(messages: readonly string[] = ['hello', 'over', 'NTB']): Promise<string[]> {
  const link = createNtbPairLink(); // registers + two hosts' RAM: plain data with SharedArrayBuffers

  // HOST2 (vhost): an echo device, bound by linking vhost-transport/ntb-host2 to its client item.
  const vhostBus = new VhostBus();
  const configFs = new VhostConfigFs(new ConfigTree(), vhostBus);
  await vhostBus.registerDriver(new NtbEchoVhostDriver()); // vhost-client/ntb-echo/ffffffff:00000007
  const host2 = await startNtbVhostSide({ link, configFs, clientItem: '/vhost/vhost-client/ntb-echo/ffffffff:00000007' });

  // HOST1 (virtio): a driver on rpmsg's two queues, rx (0) and tx (1).
  const echoes: string[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  let tx!: Virtqueue<VirtioBuffer>;
  const driver: VirtioDriver = {
    name: 'example',
    idTable: [{ device: 7, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: [],
    async probe(dev) {
      const onRx = (vq: Virtqueue): void => {
        let b: VirtioBuffer | undefined;
        while ((b = vq.getBuf() as VirtioBuffer | undefined) !== undefined) {
          echoes.push(new TextDecoder().decode(b.view.subarray(0, vq.lastLen)));
          if (echoes.length === messages.length) done();
        }
      };
      const [rx, t] = await dev.findVqs<VirtioBuffer>([{ name: 'rx', callback: onRx }, { name: 'tx' }]);
      for (let i = 0; i < 8; i++) {
        const b = await dev.allocBuffer(64); // from the memory window's pool (RFC patch 12)
        rx!.addInbuf(b.addr, b.size, b);
      }
      await dev.ready();
      rx!.kick();
      tx = t!;
    },
    async remove(dev) {
      await dev.reset();
      await dev.delVqs();
    },
  };
  const virtioBus = new VirtioBus();
  await virtioBus.registerDriver(driver);
  const host1 = await startNtbVirtioSide({ link, virtioBus });
  await host1.virtio.ready({ timeoutMs: 5000 }); // scratchpad handshake done, device probed

  const dev = host1.virtio.device!;
  for (const m of messages) {
    const b = await dev.allocBuffer(64);
    const n = new TextEncoder().encodeInto(m, b.view).written;
    tx.addOutbuf(b.addr, n, b);
  }
  tx.kick(); // one doorbell: bit 1 = queue 1
  await all;

  await host1.close(); // HOST2 sees the link go down and unregisters its device
  await host2.close();
  return echoes;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const echoes = await main(process.argv.slice(2).length > 0 ? process.argv.slice(2) : undefined);
  for (const e of echoes) console.log(`echo: ${e}`);
}
