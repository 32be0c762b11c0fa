import { CORE_TRANSPORT_FEATURES, VIRTIO_DEV_ANY_ID, isTransportBit } from './constants.js';
import type { MaybePromise } from './config-ops.js';
import type { VirtioDevice } from './device.js';

/**
 * A device identity, or an id-table entry when it holds {@link VIRTIO_DEV_ANY_ID}
 * wildcards (Linux `struct virtio_device_id`).
 *
 * @public
 */
export interface VirtioDeviceId {
  /** Device ID ({@link VIRTIO_ID}), or VIRTIO_DEV_ANY_ID in an id table. */
  readonly device: number;
  /** Vendor ID, or VIRTIO_DEV_ANY_ID in an id table. */
  readonly vendor: number;
}

/**
 * A virtio driver (Linux `struct virtio_driver`): what it binds to, which device
 * features it understands, and its callbacks. The bus calls the callbacks one at a
 * time per device; each may be async.
 *
 * A callback must not await the registration or unregistration of its own device or
 * driver (the bus serialises those behind the callback, as Linux's device lock does).
 *
 * @public
 */
export interface VirtioDriver {
  /** Driver name, unique on a bus. */
  readonly name: string;
  /** Devices this driver binds to; {@link VIRTIO_DEV_ANY_ID} matches anything. */
  readonly idTable: readonly VirtioDeviceId[];
  /**
   * Device feature bits (0–63) the driver understands (Linux `feature_table`). Bits of
   * the transport range 24–41 are negotiated by core ({@link CORE_TRANSPORT_FEATURES})
   * and may not be listed, except the ones core negotiates anyway.
   */
  readonly featureTable: readonly number[];
  /**
   * Optional (Linux `validate`): runs after the device's features are read and before
   * they are written, so the driver can adjust them with
   * {@link VirtioDevice.dropFeature} / {@link VirtioDevice.acceptFeature} or refuse the
   * device by throwing.
   */
  validate?(dev: VirtioDevice): MaybePromise<void>;
  /**
   * Sets the device up after FEATURES_OK (Linux `probe`): find queues, read config, post
   * buffers. Core sets DRIVER_OK afterwards unless the driver called
   * {@link VirtioDevice.ready} itself (as it must before kicking a queue). A throw
   * sets FAILED.
   */
  probe(dev: VirtioDevice): MaybePromise<void>;
  /**
   * Unbinds (Linux `remove`): should reset the device, reclaim buffers with
   * `detachUnusedBuf` and delete the queues. Core does whatever of that is left.
   */
  remove(dev: VirtioDevice): MaybePromise<void>;
  /** Optional (Linux `config_changed`): the device changed its configuration space. */
  configChanged?(dev: VirtioDevice): MaybePromise<void>;
}

/**
 * True when an id-table `entry` matches a device `id` (Linux `virtio_id_match`): the
 * device fields are equal or the entry's is ANY, and likewise the vendor fields.
 *
 * @public
 */
export function virtioIdMatch(entry: VirtioDeviceId, id: VirtioDeviceId): boolean {
  if (entry.device !== id.device && entry.device !== VIRTIO_DEV_ANY_ID) return false;
  return entry.vendor === VIRTIO_DEV_ANY_ID || entry.vendor === id.vendor;
}

function checkU32(name: string, v: unknown): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be an integer in 0..0xffffffff, got ${v}`);
}

/** @internal Checks a device's own id (no wildcards, device 0 is "no device"). */
export function checkDeviceId(id: VirtioDeviceId, name = 'id'): void {
  if (typeof id !== 'object' || id === null) throw new TypeError(`${name} must be an object {device, vendor}`);
  checkU32(`${name}.device`, id.device);
  checkU32(`${name}.vendor`, id.vendor);
  // virtio-mmio treats DeviceID 0 as "no device here" (§4.2.2); ANY is not an identity.
  if (id.device === 0 || id.device === VIRTIO_DEV_ANY_ID) {
    throw new RangeError(`${name}.device must be in 1..0xfffffffe, got ${id.device}`);
  }
}

/**
 * @internal Validates a driver at registration and returns the mask of device feature
 * bits it understands.
 */
export function checkDriver(drv: VirtioDriver): bigint {
  if (typeof drv !== 'object' || drv === null) throw new TypeError('driver must be an object');
  if (typeof drv.name !== 'string' || drv.name.length === 0) throw new TypeError('driver.name must be a non-empty string');
  if (!Array.isArray(drv.idTable)) throw new TypeError('driver.idTable must be an array');
  drv.idTable.forEach((e, i) => {
    if (typeof e !== 'object' || e === null) throw new TypeError(`driver.idTable[${i}] must be an object {device, vendor}`);
    checkU32(`driver.idTable[${i}].device`, e.device);
    checkU32(`driver.idTable[${i}].vendor`, e.vendor);
  });
  if (!Array.isArray(drv.featureTable)) throw new TypeError('driver.featureTable must be an array');
  let mask = 0n;
  drv.featureTable.forEach((b, i) => {
    if (typeof b !== 'number') throw new TypeError(`driver.featureTable[${i}] must be a number, got ${typeof b}`);
    if (!Number.isInteger(b) || b < 0 || b > 63) throw new RangeError(`driver.featureTable[${i}] must be a feature bit in 0..63, got ${b}`);
    const m = 1n << BigInt(b);
    if (isTransportBit(b) && (CORE_TRANSPORT_FEATURES & m) === 0n) {
      throw new RangeError(`driver.featureTable[${i}] = ${b} is a transport feature bit (24..41) that core does not negotiate`);
    }
    // Core-negotiated transport bits listed by the driver are redundant; leaving them
    // out of the mask keeps the transport's filter authoritative for them.
    if (!isTransportBit(b)) mask |= m;
  });
  for (const cb of ['probe', 'remove'] as const) {
    if (typeof drv[cb] !== 'function') throw new TypeError(`driver.${cb} must be a function`);
  }
  for (const cb of ['validate', 'configChanged'] as const) {
    if (drv[cb] !== undefined && typeof drv[cb] !== 'function') throw new TypeError(`driver.${cb} must be a function when given`);
  }
  return mask;
}
