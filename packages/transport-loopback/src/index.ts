/**
 * `@x/transport-loopback`: the plainest complete transport. A virtio driver side
 * (`VirtioConfigOps`, a `VirtioDevice` on a `VirtioBus`) and a vhost device side
 * (`VhostConfigOps`, a `VhostDevice` on a `VhostBus`), in one thread or two worker
 * threads, joined only by bytes: one SharedArrayBuffer memory region and one
 * virtio-mmio register block (VIRTIO 1.2 §4.2.2) with a doorbell page.
 *
 * @packageDocumentation
 */
export { LoopbackError, isLoopbackError, type LoopbackErrorCode } from './errors.js';
export {
  LOOPBACK_CONFIG_MAX,
  LOOPBACK_DOORBELL,
  LOOPBACK_MAX_QUEUES,
  LOOPBACK_REGS_SIZE,
  VIRTIO_MMIO,
  VIRTIO_MMIO_INT,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION,
} from './registers.js';
export { createLoopbackLink, type LoopbackLink, type LoopbackLinkOptions } from './link.js';
export {
  LoopbackVirtioTransport,
  attachVirtio,
  openVirtio,
  type LoopbackVirtioOptions,
  type LoopbackVirtioStats,
} from './virtio-side.js';
export {
  LoopbackVhostTransport,
  attachVhost,
  openVhost,
  type LoopbackVhostOptions,
  type LoopbackVhostStats,
} from './vhost-side.js';
