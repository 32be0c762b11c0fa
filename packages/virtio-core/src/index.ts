/**
 * `@x/virtio-core`: the virtio device model, the frontend (Linux `drivers/virtio`): a
 * bus that matches devices and drivers, the transport contract
 * ({@link VirtioConfigOps}), and the VIRTIO 1.2 §3.1 initialisation sequence and status
 * machine, done once here for every driver and transport.
 *
 * @packageDocumentation
 */
export {
  CORE_TRANSPORT_FEATURES,
  VIRTIO_BUFFER_ALIGN,
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_F,
  VIRTIO_ID,
  VIRTIO_TRANSPORT_F,
  bitsFromFeatures,
  featuresFromBits,
} from './constants.js';
export { VirtioError, isVirtioError, type VirtioErrorCode } from './errors.js';
export { checkStatusTransition } from './status.js';
export {
  checkVirtioConfigOps,
  type MaybePromise,
  type VirtioBuffer,
  type VirtioConfigOps,
  type VirtioDmaRegion,
  type VirtioRingOptions,
  type VirtqueueSpec,
} from './config-ops.js';
export { GenPool, type GenPoolOptions } from './gen-pool.js';
export { virtioIdMatch, type VirtioDeviceId, type VirtioDriver } from './driver.js';
export { VirtioDevice, type VirtioDeviceOptions } from './device.js';
export { VirtioBus, type VirtioBusOptions } from './bus.js';
export type {
  VirtioBusEvent,
  VirtioErrorEvent,
  VirtioNeedsResetEvent,
  VirtioProbeEvent,
  VirtioProbeFailedEvent,
  VirtioRemoveEvent,
} from './events.js';
export { VIRTIO_MMIO, VIRTIO_MMIO_INT, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION } from './mmio.js';
