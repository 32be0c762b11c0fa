/**
 * Events a transport reports to its vhost device: the RFC's `enum vhost_notify_event`
 * (patch 3, `include/linux/vhost.h`), with the kernel's values. The RFC delivers them
 * on a blocking notifier chain (`vhost_register_notifier`); here the transport calls
 * {@link VhostDevice.handleEvent} and core runs the chain.
 *
 * @public
 */
export const VHOST_NOTIFY = {
  /** The peer wrote the device status (`NOTIFY_SET_STATUS`); core reads it with `getStatus`. */
  SET_STATUS: 0,
  /** The peer wrote its driver features (`NOTIFY_FINALIZE_FEATURES`). */
  FINALIZE_FEATURES: 1,
  /** The peer reset the device (`NOTIFY_RESET`). */
  RESET: 2,
} as const;

/** One of the {@link VHOST_NOTIFY} values. @public */
export type VhostNotifyEvent = (typeof VHOST_NOTIFY)[keyof typeof VHOST_NOTIFY];

/**
 * Device status bits (VIRTIO 1.2 §2.1, Linux `VIRTIO_CONFIG_S_*` in
 * `include/uapi/linux/virtio_config.h`). The same values as `@x/virtio-core`'s; they
 * are defined here too so the two device models do not depend on each other.
 *
 * @public
 */
export const VIRTIO_CONFIG_S = {
  /** The driver found the device (§3.1.1 step 2). */
  ACKNOWLEDGE: 1,
  /** The driver knows how to drive the device (§3.1.1 step 3). */
  DRIVER: 2,
  /** The driver is set up and ready to drive the device (§3.1.1 step 8). */
  DRIVER_OK: 4,
  /** The driver acknowledged the features it understood; negotiation is over (§3.1.1 step 5). */
  FEATURES_OK: 8,
  /** The device hit an error it cannot recover from and needs a reset (`DEVICE_NEEDS_RESET`). */
  NEEDS_RESET: 64,
  /** The driver gave up on the device (§3.1.1). */
  FAILED: 128,
} as const;

/**
 * The wildcard of an id table entry (the RFC's `VIRTIO_DEV_ANY_ID`, patch 2): a driver
 * entry with this device or vendor matches any.
 *
 * @public
 */
export const VHOST_DEV_ANY_ID = 0xffffffff;

/** All 64 feature bits the RFC's registers carry (`u64 host_features`). @public */
export const VHOST_FEATURES_MASK = 0xffff_ffff_ffff_ffffn;
