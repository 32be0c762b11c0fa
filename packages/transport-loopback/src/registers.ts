import { VIRTIO_MMIO } from '@x/virtio-core';
// The virtio-mmio register map is a spec fact kept once, in @x/virtio-core.
export { VIRTIO_MMIO, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION, VIRTIO_MMIO_INT } from '@x/virtio-core';

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
