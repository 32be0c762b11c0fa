/**
 * Register offsets of the loopback register block: the virtio-mmio layout of VIRTIO 1.2
 * §4.2.2 (Linux `include/uapi/linux/virtio_mmio.h`), every register 32 bits wide and
 * little-endian. Names follow the spec; the README maps each to its Linux
 * `VIRTIO_MMIO_*` name.
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
  /** `QueueNotify` (WO): a queue index; here also accepted, but kicks normally use the doorbell page. */
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

/**
 * The doorbell page of the loopback register block: what virtio-mmio does with bus
 * cycles (a register write that the device handles at once, an interrupt line), done
 * with 32-bit words, `Atomics.notify` and `Atomics.waitAsync`. Values are indices of
 * host-order `Int32` words from byte offset {@link LOOPBACK_DOORBELL}.PAGE; they never
 * leave the host, and Atomics needs host order.
 *
 * - A register write is a transaction: the driver stores the register, stores its
 *   offset in `REG_OFFSET`, increments `REG_SEQ` and rings `DEVICE`; the device handles
 *   it and stores the sequence number in `REG_ACK`. The driver awaits the ack with a
 *   timeout. This stands in for the synchronous MMIO write the device answers at once.
 * - A kick increments `KICK + q` and rings `DEVICE` (a counter, so no kick is lost);
 *   the device stores what it consumed in `KICK_SEEN + q`.
 * - An interrupt sets bits in `InterruptStatus` and increments `IRQ`.
 * - `DRIVER_ATTACHED` / `DEVICE_ATTACHED` are 1 while a side is attached; `PRESENCE`
 *   counts the device's appearances and changes of `DeviceID`.
 *
 * @public
 */
export const LOOPBACK_DOORBELL = {
  /** Byte offset of the doorbell page in the register block. */
  PAGE: 0x1000,
  /** Driver → device doorbell: a counter, incremented for every register write and kick. */
  DEVICE: 0,
  /** Driver: the sequence number of the last register write posted. */
  REG_SEQ: 1,
  /** Driver: the offset of that register. */
  REG_OFFSET: 2,
  /** Device: the sequence number of the last register write handled (the acknowledgement). */
  REG_ACK: 3,
  /** Device → driver doorbell: incremented with every interrupt raised. */
  IRQ: 4,
  /** 1 while a driver side is attached. */
  DRIVER_ATTACHED: 5,
  /** 1 while a device side is attached. */
  DEVICE_ATTACHED: 6,
  /** Device: incremented whenever `DEVICE_ATTACHED`, `MagicValue` or `DeviceID` changes, so a driver can wait for a device. */
  PRESENCE: 7,
  /** `KICK + q`: the driver's kick counter of queue q. */
  KICK: 16,
  /** `KICK_SEEN + q`: the kick counter value of queue q the device has handled. */
  KICK_SEEN: 48,
} as const;

/** Most queues a loopback link carries (one kick word each in the doorbell page). @public */
export const LOOPBACK_MAX_QUEUES = 32;

/** Bytes of a loopback register block: page 0 is virtio-mmio, page 1 the doorbell page. @public */
export const LOOPBACK_REGS_SIZE = 0x2000;

/** Largest device configuration space: from 0x100 to the end of page 0. @public */
export const LOOPBACK_CONFIG_MAX = 0x1000 - VIRTIO_MMIO.CONFIG;
