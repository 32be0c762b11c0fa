import { VirtioBus } from '@x/virtio-core';
import { ConfigTree, VhostBus, VhostConfigFs } from '@x/vhost-core';
import { attachVirtio, createLoopbackLink, openVhost } from '@x/transport-loopback';
import { RpmsgConfigFs, VhostRpmsgBus, VirtioRpmsgBus, type VhostRpmsgBusOptions, type VirtioRpmsgBusOptions } from '@x/rpmsg';

/**
 * The EP (VhostRpmsgBus, with its configuration tree) and the RC (VirtioRpmsgBus) on the
 * two ends of a @x/transport-loopback link: one SharedArrayBuffer of RC memory, one
 * virtio-mmio register block and its doorbell page, nothing else.
 */
export async function loopbackPair(options: { virtio?: VirtioRpmsgBusOptions; vhost?: VhostRpmsgBusOptions; memorySize?: number } = {}) {
  const link = createLoopbackLink({ deviceId: 7, vendorId: 0x104c, memorySize: options.memorySize ?? 2 << 20 });
  const tree = new ConfigTree();
  const vhostBus = new VhostBus();
  const vcfs = new VhostConfigFs(tree, vhostBus);
  const rcfs = new RpmsgConfigFs(tree);
  const ep = new VhostRpmsgBus({ configFs: rcfs, ...options.vhost });
  await vhostBus.registerDriver(ep);
  const vhost = openVhost(link, { configFs: vcfs, name: 'ep0' });
  await tree.link('/vhost/vhost-transport/ep0', '/vhost/vhost-client/vhost_rpmsg/ffffffff:00000007');
  const virtioBus = new VirtioBus();
  const rc = new VirtioRpmsgBus(options.virtio);
  await virtioBus.registerDriver(rc);
  let virtio: Awaited<ReturnType<typeof attachVirtio>> | undefined;
  return {
    link,
    tree,
    ep,
    rc,
    vhost,
    epDevice: vhost.device,
    /** Attaches the RC: the §3.1.1 handshake runs over the registers and the link comes up. */
    async connect() {
      virtio = await attachVirtio(link, virtioBus);
      return virtio.device!;
    },
    /** Detaches the RC (its driver is removed and the device reset). */
    async disconnect() {
      await virtio?.close();
      virtio = undefined;
    },
    async close() {
      await virtio?.close();
      await vhost.close();
    },
  };
}
