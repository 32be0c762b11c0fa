// A virtio driver and a vhost driver talk over a loopback link: one SharedArrayBuffer
// of driver memory and one virtio-mmio register block, nothing else. The vhost side
// answers each message in upper case. Both sides run here in one thread; to put the
// device side in a worker, post `link` to it and call attachVhost there.
import { VringIov } from '@x/vring';
import { VIRTIO_DEV_ANY_ID, VirtioBus, type VirtioBuffer, type VirtioDriver } from '@x/virtio-core';
import { VHOST_DEV_ANY_ID, VhostBus, type VhostDriver, type VhostVirtqueue } from '@x/vhost-core';
import { attachVhost, attachVirtio, createLoopbackLink } from '@x/transport-loopback';

const DEVICE_ID = 42;

export async function main(words: string[] = ['hello', 'loopback']): Promise<{ replies: string[]; features: bigint; registerWrites: number }> {
  const link = createLoopbackLink({ deviceId: DEVICE_ID, memorySize: 64 * 1024 });

  // ---- device side: a vhost driver on a VhostBus (queue 0 to the peer, queue 1 from it)
  const riov = new VringIov(8);
  const wiov = new VringIov(8);
  const bytes = new Uint8Array(512);
  const upper: VhostDriver = {
    name: 'upper',
    idTable: [{ vendor: VHOST_DEV_ANY_ID, device: DEVICE_ID }],
    async probe(dev) {
      await dev.setFeatures(1n << 32n); // VERSION_1
      const onKick = (from: VhostVirtqueue): void => {
        const to = dev.vqs[0]!;
        let head: number;
        while ((head = from.getInbuf(riov)) >= 0) {
          const n = from.pull(riov, bytes);
          for (let i = 0; i < n; i++) if (bytes[i]! >= 0x61 && bytes[i]! <= 0x7a) bytes[i]! -= 0x20;
          const out = to.getOutbuf(wiov);
          if (out >= 0) to.putBuf(out, to.push(wiov, bytes, 0, n));
          from.putBuf(head, 0);
        }
        to.notify(); // raises the interrupt only if the driver's ring asks for it
        from.notify();
      };
      await dev.createVqs([{ name: 'to-peer', size: 16 }, { name: 'from-peer', size: 16, callback: onKick }]);
    },
    remove: (dev) => dev.delVqs(),
  };
  const vhostBus = new VhostBus();
  await vhostBus.registerDriver(upper);
  const vhost = await attachVhost(link, vhostBus);

  // ---- driver side: a virtio driver on a VirtioBus
  const replies: string[] = [];
  let done: () => void = () => undefined;
  const allBack = new Promise<void>((resolve) => (done = resolve));
  let tx: { addOutbuf(a: number, l: number, t: VirtioBuffer): boolean; kick(): boolean } | undefined;
  const client: VirtioDriver = {
    name: 'client',
    idTable: [{ device: DEVICE_ID, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: [],
    async probe(dev) {
      const [rx, txq] = await dev.findVqs<VirtioBuffer>([
        {
          name: 'rx',
          callback: () => {
            for (let b = rx!.getBuf(); b !== undefined; b = rx!.getBuf()) {
              replies.push(new TextDecoder().decode(b.view.subarray(0, rx!.lastLen)));
              if (replies.length === words.length) done();
            }
          },
        },
        { name: 'tx' },
      ]);
      for (let i = 0; i < words.length; i++) {
        const b = await dev.allocBuffer(64);
        rx!.addInbuf(b.addr, b.size, b);
      }
      await dev.ready(); // DRIVER_OK before the first notification (§3.1.1)
      rx!.kick();
      tx = txq;
    },
    async remove(dev) {
      await dev.reset();
      await dev.delVqs();
    },
  };
  const virtioBus = new VirtioBus();
  await virtioBus.registerDriver(client);
  const virtio = await attachVirtio(link, virtioBus); // waits for DeviceID, then probes

  for (const w of words) {
    const b = await virtio.device!.allocBuffer(64);
    const { written } = new TextEncoder().encodeInto(w, b.view);
    tx!.addOutbuf(b.addr, written, b);
  }
  tx!.kick();
  await allBack;

  const result = { replies, features: virtio.device!.features, registerWrites: vhost.stats.registerWrites };
  await virtio.close(); // unregisters: remove, reset
  await vhost.close();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main(process.argv.slice(2).length > 0 ? process.argv.slice(2) : undefined));
