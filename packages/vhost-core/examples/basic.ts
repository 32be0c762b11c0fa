// A vhost "echo" client driver bound to a transport through the configuration tree,
// with the peer's virtio driver at the far end of the fake transport. Run it with
//   node --conditions=@x/source --import tsx packages/vhost-core/examples/basic.ts
import { VringIov } from '@x/vring';
import {
  ConfigTree,
  VHOST_DEV_ANY_ID,
  VIRTIO_CONFIG_S as S,
  VhostBus,
  VhostConfigFs,
  type ConfigJson,
  type VhostDriver,
  type VhostVirtqueue,
} from '@x/vhost-core';
import { FakeVhostTransport } from '@x/vhost-core/testing';

/** Feature bit 0 of the echo device: reply in upper case. */
const ECHO_F_UPPER = 0;
const TO_PEER = 0;
const FROM_PEER = 1;

/** The echo client: every buffer the peer sends comes back on the other queue. */
function echoDriver(): VhostDriver {
  const riov = new VringIov(4);
  const wiov = new VringIov(4);
  const buf = new Uint8Array(512);
  const echo = (from: VhostVirtqueue): void => {
    const to = from.device.vqs[TO_PEER]!;
    const upper = from.device.hasFeature(ECHO_F_UPPER);
    for (;;) {
      from.disableCb();
      let head: number;
      while ((head = from.getInbuf(riov)) >= 0) {
        const n = from.pull(riov, buf, 0, Math.min(riov.totalLen, buf.length));
        if (upper) for (let i = 0; i < n; i++) if (buf[i]! >= 0x61 && buf[i]! <= 0x7a) buf[i] = buf[i]! - 0x20;
        const out = to.getOutbuf(wiov);
        if (out >= 0) to.putBuf(out, to.push(wiov, buf, 0, n));
        from.putBuf(head, 0);
      }
      from.notify();
      to.notify();
      if (from.enableCb()) return;
    }
  };
  return {
    name: 'echo',
    // Vendor ANY, device 42: the client item is named ffffffff:0000002a.
    idTable: [{ vendor: VHOST_DEV_ANY_ID, device: 42 }],
    features: 1n << BigInt(ECHO_F_UPPER),
    async probe(dev) {
      await dev.setFeatures(1n << BigInt(ECHO_F_UPPER));
      // No size given: the queues take the configured queue_size.
      await dev.createVqs([{ name: 'to-peer' }, { name: 'from-peer', callback: echo }]);
    },
    async remove(dev) {
      await dev.delVqs();
    },
  };
}

/** What {@link main} reports. */
export interface BasicExampleResult {
  /** The name the bus gave the device. */
  readonly device: string;
  /** Its queue sizes (from the configuration file). */
  readonly queueSizes: number[];
  /** The replies the peer received. */
  readonly replies: string[];
  /** The configuration tree, as a document. */
  readonly config: ConfigJson;
  /** Whether the device was still registered after the unlink. */
  readonly registeredAfterUnlink: boolean;
}

export async function main(messages: string[] = ['hello', 'vhost']): Promise<BasicExampleResult> {
  const tree = new ConfigTree();
  const bus = new VhostBus();
  const cfs = new VhostConfigFs(tree, bus);
  await bus.registerDriver(echoDriver()); // adds /vhost/vhost-client/echo/ffffffff:0000002a
  const transport = new FakeVhostTransport({ name: 'fake0', configFs: cfs }); // adds /vhost/vhost-transport/fake0

  // The configuration file: queue size 16 for the echo client, and the link that
  // registers the transport's device as that client's device.
  await tree.load({
    vhost: {
      'vhost-client': { echo: { 'ffffffff:0000002a': { queue_size: 16, buffer_size: 512 } } },
      'vhost-transport': { fake0: { 'ffffffff:0000002a': { $link: '/vhost/vhost-client/echo/ffffffff:0000002a' } } },
    },
  });
  const device = transport.device;

  // The peer's virtio driver brings the device up (VIRTIO 1.2 §3.1.1).
  const peer = transport.peer;
  await peer.reset();
  await peer.setStatus(S.ACKNOWLEDGE);
  await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER);
  await peer.writeDriverFeatures(await peer.readDeviceFeatures());
  await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  await peer.activateQueue(TO_PEER, { eventIdx: false });
  await peer.activateQueue(FROM_PEER, { eventIdx: false });
  await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);

  // Buffers for the replies, then the messages.
  for (let i = 0; i < messages.length; i++) peer.addInbuf(TO_PEER, 512);
  await peer.kick(TO_PEER);
  for (const m of messages) peer.addOutbuf(FROM_PEER, new TextEncoder().encode(m));
  await peer.kick(FROM_PEER);
  const replies: string[] = [];
  for (let u = peer.getUsed(TO_PEER); u !== undefined; u = peer.getUsed(TO_PEER)) replies.push(new TextDecoder().decode(u.data));

  const result = {
    device: device.name,
    queueSizes: device.vqs.map((v) => v.num),
    replies,
    config: tree.dump(),
  };
  // Unlinking unregisters the device (the driver's remove deletes its queues).
  await tree.unlink('/vhost/vhost-transport/fake0', 'ffffffff:0000002a');
  transport.dispose();
  return { ...result, registeredAfterUnlink: device.bus !== undefined };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((r) => console.log(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)));
}
