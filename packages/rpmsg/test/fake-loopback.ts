import type { Virtqueue } from '@x/vring';
import { VirtioBus, VirtioDevice, type VirtioBuffer, type VirtioConfigOps } from '@x/virtio-core';
import { ConfigTree, VhostBus, VhostConfigFs } from '@x/vhost-core';
import { FakeVhostTransport, type FakeVhostPeer } from '@x/vhost-core/testing';
import { RpmsgConfigFs, VhostRpmsgBus, VirtioRpmsgBus, type VhostRpmsgBusOptions, type VirtioRpmsgBusOptions } from '@x/rpmsg';

/**
 * `VirtioConfigOps` over vhost-core's `FakeVhostPeer`: the far end of a
 * `FakeVhostTransport` driven by virtio-core instead of a script. Only the fake's
 * register block, doorbells, interrupt lines and the peer's memory join the two halves,
 * so this stands in for the loopback transport in tests.
 */
export function fakePeerOps(peer: FakeVhostPeer, queues = 2): VirtioConfigOps {
  let vqs: Virtqueue[] = [];
  return {
    getFeatures: () => peer.readDeviceFeatures(),
    finalizeFeatures: (f) => peer.writeDriverFeatures(f),
    getStatus: () => peer.getStatus(),
    setStatus: async (s) => void (await peer.setStatus(s)),
    reset: async () => {
      await peer.reset();
      vqs = [];
    },
    async findVqs(specs, ring) {
      if (specs.length > queues) throw new RangeError(`the device has ${queues} queues`);
      vqs = [];
      for (const [i, spec] of specs.entries()) {
        await peer.activateQueue(i, { eventIdx: ring.eventIdx });
        const vq = peer.virtqueue(i)!;
        if (spec.callback !== undefined) vq.setCallback(spec.callback);
        vqs.push(vq);
      }
      return vqs;
    },
    async delVqs() {
      for (let i = 0; i < vqs.length; i++) await peer.deactivateQueue(i);
      vqs = [];
    },
    getConfig: (_offset, dst) => void dst.fill(0),
    setConfig: () => undefined,
    allocBuffer(size): VirtioBuffer {
      const addr = peer.alloc(size, 16);
      const view = peer.memory.view(addr, size);
      return { addr, size, view };
    },
    freeBuffer: () => undefined,
  };
}

/** Both buses joined through the fake: VirtioRpmsgBus (RC) ↔ VhostRpmsgBus (EP), with the EP's configuration tree. */
export async function busPair(options: { virtio?: VirtioRpmsgBusOptions; vhost?: VhostRpmsgBusOptions; peerSize?: number } = {}) {
  const tree = new ConfigTree();
  const vhostBus = new VhostBus();
  const vcfs = new VhostConfigFs(tree, vhostBus);
  const rcfs = new RpmsgConfigFs(tree);
  const ep = new VhostRpmsgBus({ configFs: rcfs, ...options.vhost });
  await vhostBus.registerDriver(ep);
  const t = new FakeVhostTransport({ name: 'ep0', configFs: vcfs, peerSize: options.peerSize ?? 8 * 1024 * 1024 });
  await tree.link('/vhost/vhost-transport/ep0', '/vhost/vhost-client/vhost_rpmsg/ffffffff:00000007');
  const virtioBus = new VirtioBus();
  const rc = new VirtioRpmsgBus(options.virtio);
  await virtioBus.registerDriver(rc);
  const device = new VirtioDevice({ id: { device: 7, vendor: 0x104c }, ops: fakePeerOps(t.peer), name: 'virtio0' });
  return {
    tree,
    rc,
    ep,
    t,
    epDevice: t.device,
    /** Registers the RC's device: the §3.1.1 handshake runs and the link comes up. */
    async connect() {
      await virtioBus.registerDevice(device);
      await t.settle();
      return device;
    },
    async close() {
      if (virtioBus.devices.includes(device)) await virtioBus.unregisterDevice(device);
      t.dispose();
    },
  };
}
