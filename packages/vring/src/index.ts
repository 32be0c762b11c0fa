/**
 * `@x/vring`: VIRTIO split virtqueues (VIRTIO 1.2 §2.7), the driver half (Linux
 * `virtio_ring.c`) and the device half (Linux `vringh.c`), over any {@link GuestMemory}.
 *
 * @packageDocumentation
 */
export { VringError, isVringError, type VringErrorCode } from './errors.js';
export {
  ArrayBufferMemory,
  MAX_BUS_ADDR,
  RegionMemory,
  type ArrayBufferMemoryOptions,
  type GuestMemory,
  type MemoryRegion,
  type RegionMemoryOptions,
} from './memory.js';
export {
  VIRTIO_RING_F,
  VIRTQUEUE_MAX_SIZE,
  VIRTQ_AVAIL,
  VIRTQ_DESC,
  VIRTQ_USED,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_LEGACY_ALIGN,
  VRING_USED_F_NO_NOTIFY,
  availEventOffset,
  availRingSize,
  descTableSize,
  layoutSpan,
  usedEventOffset,
  usedRingSize,
  validateLayout,
  vringLegacyLayout,
  vringModernLayout,
  vringNeedEvent,
  vringSize,
  type SplitRingLayout,
} from './layout.js';
export { Virtqueue, type VirtqueueOptions, type VirtqueueStats, type VringSg } from './virtqueue.js';
export { Vringh, VringIov, type VringhOptions, type VringhStats } from './vringh.js';
