/**
 * Register offsets of the virtio-mmio transport (VIRTIO 1.2 §4.2.2, Linux
 * `include/uapi/linux/virtio_mmio.h`): every register 32 bits wide and little-endian.
 * Names follow Linux's `VIRTIO_MMIO_*`. Register-block transports (the loopback, the
 * testing fake) use this layout.
 *
 * @public
 */
export const VIRTIO_MMIO = {
  /** `MagicValue` (RO): 0x74726976, "virt" as a little-endian u32. */
  MAGIC_VALUE: 0x000,
  /** `Version` (RO): 2 for the non-legacy interface. */
  VERSION: 0x004,
  /** `DeviceID` (RO): the virtio device type; 0 means "no device here" (§4.2.3.1.1). */
  DEVICE_ID: 0x008,
  /** `VendorID` (RO). */
  VENDOR_ID: 0x00c,
  /** `DeviceFeatures` (RO): the 32 feature bits selected by DeviceFeaturesSel. */
  DEVICE_FEATURES: 0x010,
  /** `DeviceFeaturesSel` (WO): 0 selects bits 0–31, 1 bits 32–63. */
  DEVICE_FEATURES_SEL: 0x014,
  /** `DriverFeatures` (WO): 32 accepted bits, selected by DriverFeaturesSel. */
  DRIVER_FEATURES: 0x020,
  /** `DriverFeaturesSel` (WO). */
  DRIVER_FEATURES_SEL: 0x024,
  /** `QueueSel` (WO): selects the queue the Queue* registers below refer to. */
  QUEUE_SEL: 0x030,
  /** `QueueNumMax` (RO): the largest size of the selected queue; 0 if it does not exist. */
  QUEUE_NUM_MAX: 0x034,
  /** `QueueNum` (WO): the size the driver chose. */
  QUEUE_NUM: 0x038,
  /** `QueueReady` (RW): 1 makes the selected queue live; reads back what the device accepted. */
  QUEUE_READY: 0x044,
  /** `QueueNotify` (WO): the doorbell; write the queue index. */
  QUEUE_NOTIFY: 0x050,
  /** `InterruptStatus` (RO): bit 0 used buffer, bit 1 configuration change. */
  INTERRUPT_STATUS: 0x060,
  /** `InterruptACK` (WO): clears InterruptStatus bits. */
  INTERRUPT_ACK: 0x064,
  /** `Status` (RW): the device status byte (§2.1); writing 0 resets. */
  STATUS: 0x070,
  /** `QueueDescLow`. */
  QUEUE_DESC_LOW: 0x080,
  /** `QueueDescHigh`. */
  QUEUE_DESC_HIGH: 0x084,
  /** `QueueDriverLow` (the available ring). */
  QUEUE_DRIVER_LOW: 0x090,
  /** `QueueDriverHigh`. */
  QUEUE_DRIVER_HIGH: 0x094,
  /** `QueueDeviceLow` (the used ring). */
  QUEUE_DEVICE_LOW: 0x0a0,
  /** `QueueDeviceHigh`. */
  QUEUE_DEVICE_HIGH: 0x0a4,
  /** `ConfigGeneration` (RO). */
  CONFIG_GENERATION: 0x0fc,
  /** Device-specific configuration space starts here. */
  CONFIG: 0x100,
} as const;

/** `MagicValue`: the bytes "v" 0x76, "i" 0x69, "r" 0x72, "t" 0x74 read as a little-endian u32 (§4.2.2). @public */
export const VIRTIO_MMIO_MAGIC = 0x74726976;

/** `Version` of the non-legacy virtio-mmio interface (§4.2.2; legacy devices read 1, §4.2.4). @public */
export const VIRTIO_MMIO_VERSION = 2;

/**
 * `InterruptStatus` / `InterruptACK` bits (VIRTIO 1.2 §4.2.2; Linux
 * `VIRTIO_MMIO_INT_VRING`, `VIRTIO_MMIO_INT_CONFIG`).
 *
 * @public
 */
export const VIRTIO_MMIO_INT = {
  /** A used buffer was published (Used Buffer Notification). */
  VRING: 1,
  /** The configuration changed, or the device needs a reset (Configuration Change Notification). */
  CONFIG: 2,
} as const;
