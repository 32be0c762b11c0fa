// A virtio driver on @x/virtio-core, end to end: a transport registers its device, a
// driver registers itself, the bus runs the VIRTIO §3.1 initialisation, and the driver
// sends one buffer to an echo device and reads the answer.
//
// Run: node --conditions=@x/source --import tsx packages/virtio-core/examples/basic.ts
import { fileURLToPath } from 'node:url';
import type { Virtqueue } from '@x/vring';
import { VIRTIO_DEV_ANY_ID, VIRTIO_ID, VirtioBus, type VirtioBuffer, type VirtioDriver } from '@x/virtio-core';
import { FakeVirtioTransport } from '@x/virtio-core/testing';

/** Sends "hello, virtio" through the echo device and returns what came back. */
export async function main(): Promise<string> {
  // The transport: a virtio-mmio-shaped fake whose device echoes queue 1 into queue 0.
  const transport = new FakeVirtioTransport({ echo: true });
  const bus = new VirtioBus({
    onEvent: (e) => {
      if (e.type === 'probe-failed' || e.type === 'error') console.error(`${e.device.name}: ${e.error.message}`);
    },
  });

  let rx: Virtqueue<VirtioBuffer> | undefined;
  let tx: Virtqueue<VirtioBuffer> | undefined;
  let onReply: (text: string) => void = () => undefined;
  const reply = new Promise<string>((resolve) => (onReply = resolve));

  // The driver: queue 0 receives, queue 1 sends, as virtio_rpmsg_bus uses them.
  const driver: VirtioDriver = {
    name: 'echo-example',
    idTable: [{ device: VIRTIO_ID.RPMSG, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: [],
    async probe(dev) {
      [rx, tx] = await dev.findVqs<VirtioBuffer>([
        {
          name: 'rx',
          callback: (vq) => {
            const buf = vq.getBuf() as VirtioBuffer | undefined;
            if (buf !== undefined) onReply(new TextDecoder().decode(buf.view.subarray(0, vq.lastLen)));
          },
        },
        { name: 'tx' },
      ]);
      const inbuf = await dev.allocBuffer(512);
      rx!.addInbuf(inbuf.addr, inbuf.size, inbuf);
      // Publish first, then DRIVER_OK, then the first notification (§3.1.1).
      await dev.ready();
      rx!.kick();
    },
    async remove(dev) {
      await dev.reset();
      for (const vq of [rx, tx]) {
        for (let b = vq?.detachUnusedBuf(); b !== undefined; b = vq?.detachUnusedBuf()) await dev.freeBuffer(b);
      }
      await dev.delVqs();
    },
  };

  await bus.registerDriver(driver);
  const dev = await bus.registerDevice(transport.createDevice());

  const out = await dev.allocBuffer(64);
  const { written } = new TextEncoder().encodeInto('hello, virtio', out.view);
  tx!.addOutbuf(out.addr, written, out);
  tx!.kick();
  const text = await reply;

  console.log(`${dev.name}: status 0x${dev.status.toString(16)}, features 0x${dev.features.toString(16)}, echoed "${text}"`);
  await bus.unregisterDevice(dev);
  transport.dispose();
  return text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
