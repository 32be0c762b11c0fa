import { VirtioBus } from '@x/virtio-core';
import { ConfigTree, VhostBus, VhostConfigFs } from '@x/vhost-core';
import { attachVirtio, createLoopbackLink, openVhost, type LoopbackVhostTransport, type LoopbackVirtioTransport } from '@x/transport-loopback';

/**
 * The link between the two systems: `@x/transport-loopback`. The RC's memory (rings and
 * buffers) is one SharedArrayBuffer the EP reaches through a window; the two sides talk
 * through a virtio-mmio register block and a doorbell page, nothing else.
 */
export interface Link {
  /** The EP's configuration tree (vhost and rpmsg subtrees). */
  readonly tree: ConfigTree;
  /** The EP's vhost bus. */
  readonly vhostBus: VhostBus;
  /** The EP's vhost configuration subtree. */
  readonly vhostCfs: VhostConfigFs;
  /** The RC's virtio bus. */
  readonly virtioBus: VirtioBus;
  /** Adds the EP's transport item and returns its path (linking it registers the EP's device). */
  addTransport(): string;
  /** Attaches the RC: its device is probed (§3.1.1) over the registers. */
  attachRc(): Promise<LoopbackVirtioTransport>;
  /** Tears both sides down. */
  dispose(): Promise<void>;
}

/** Builds the link; both sides run in this thread but share only the link's bytes. */
export function createLink(): Link {
  const link = createLoopbackLink({ deviceId: 7, vendorId: 0x104c, memorySize: 2 << 20 });
  const tree = new ConfigTree();
  const vhostBus = new VhostBus();
  const vhostCfs = new VhostConfigFs(tree, vhostBus);
  const virtioBus = new VirtioBus();
  let ep: LoopbackVhostTransport | undefined;
  let rc: LoopbackVirtioTransport | undefined;
  return {
    tree,
    vhostBus,
    vhostCfs,
    virtioBus,
    addTransport() {
      ep ??= openVhost(link, { configFs: vhostCfs, name: 'ep0' });
      return `/vhost/vhost-transport/${ep.name}`;
    },
    async attachRc() {
      rc = await attachVirtio(link, virtioBus);
      return rc;
    },
    async dispose() {
      await rc?.close();
      await ep?.close();
    },
  };
}
