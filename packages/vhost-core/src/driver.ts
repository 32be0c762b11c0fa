import { VHOST_DEV_ANY_ID, VHOST_FEATURES_MASK } from './constants.js';
import type { VhostDevice, VhostEventInfo } from './device.js';

/**
 * A device identity, or an id table entry (the RFC's `struct vhost_device_id`,
 * patch 2): a vendor and a device, both u32. In a driver's table either may be
 * {@link VHOST_DEV_ANY_ID}.
 *
 * @public
 */
export interface VhostDeviceId {
  /** Vendor id (u32); ANY in a table entry matches every vendor. */
  readonly vendor: number;
  /** Device id (u32, a VIRTIO device id such as 7 for rpmsg); ANY in a table entry matches every device. */
  readonly device: number;
}

/**
 * A vhost (backend) client driver: the RFC's `struct vhost_driver` (patch 2), e.g. the
 * vhost rpmsg bus. It is bound to every device on the {@link VhostBus} that one of its
 * id table entries matches ({@link vhostIdMatch}).
 *
 * @public
 */
export interface VhostDriver {
  /** Unique on its bus; also the name of its `vhost-client/<name>` configuration group. */
  readonly name: string;
  /** The ids it drives. Device id 0 is refused: it ends the kernel's table. */
  readonly idTable: readonly VhostDeviceId[];
  /**
   * The feature bits this driver supports (its feature table, like vhost_rpmsg's
   * `{F_NS, F_AS}` = 0x3). It bounds the configuration tree's `features` attribute.
   * Default: all 64 bits.
   */
  readonly features?: bigint;
  /**
   * Binds to a device (RFC `probe`): typically offers features with
   * {@link VhostDevice.setFeatures}, creates queues with {@link VhostDevice.createVqs}.
   * Must not wait for the peer: events for this device wait until probe returns.
   */
  probe(device: VhostDevice): void | Promise<void>;
  /** Unbinds from a device (RFC `remove`): deletes its queues, drops its state. */
  remove(device: VhostDevice): void | Promise<void>;
  /**
   * Optional: an event the transport reported, after core accepted it (the same
   * {@link VhostEventInfo} the notifier chain gets, delivered first). Throwing while
   * handling FINALIZE_FEATURES refuses the features.
   */
  event?(device: VhostDevice, info: VhostEventInfo): void | Promise<void>;
}

/**
 * The RFC's `vhost_id_match` (patch 2): a table entry matches a device when the
 * device ids are equal or the entry's is ANY, and the entry's vendor is ANY or equal.
 *
 * @public
 */
export function vhostIdMatch(device: VhostDeviceId, entry: VhostDeviceId): boolean {
  if (entry.device !== device.device && entry.device !== VHOST_DEV_ANY_ID) return false;
  return entry.vendor === VHOST_DEV_ANY_ID || entry.vendor === device.vendor;
}

/** Throws TypeError / RangeError naming the argument unless `id` is a valid {@link VhostDeviceId}. @internal */
export function checkDeviceId(name: string, id: unknown, allowZeroDevice: boolean): asserts id is VhostDeviceId {
  if (typeof id !== 'object' || id === null) throw new TypeError(`${name} must be an object {vendor, device}`);
  const { vendor, device } = id as { vendor?: unknown; device?: unknown };
  for (const [field, v] of [
    ['vendor', vendor],
    ['device', device],
  ] as const) {
    if (typeof v !== 'number') throw new TypeError(`${name}.${field} must be a number, got ${typeof v}`);
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name}.${field} must be a u32, got ${v}`);
  }
  if (!allowZeroDevice && device === 0) {
    throw new RangeError(`${name}.device must not be 0 (device 0 ends the kernel's id table and matches nothing)`);
  }
}

/** Throws TypeError / RangeError unless `f` is a 64-bit feature set. @internal */
export function checkFeatures(name: string, f: unknown): asserts f is bigint {
  if (typeof f !== 'bigint') throw new TypeError(`${name} must be a bigint, got ${typeof f}`);
  if (f < 0n || f > VHOST_FEATURES_MASK) throw new RangeError(`${name} must fit in 64 bits, got 0x${f.toString(16)}`);
}

/** Checks the shape of a driver at registration. @internal */
export function checkDriver(driver: unknown): asserts driver is VhostDriver {
  if (typeof driver !== 'object' || driver === null) throw new TypeError('driver must be an object');
  const d = driver as Partial<VhostDriver>;
  if (typeof d.name !== 'string' || d.name.length === 0) throw new TypeError('driver.name must be a non-empty string');
  if (!Array.isArray(d.idTable)) throw new TypeError('driver.idTable must be an array');
  d.idTable.forEach((id, i) => checkDeviceId(`driver.idTable[${i}]`, id, false));
  if (typeof d.probe !== 'function') throw new TypeError('driver.probe must be a function');
  if (typeof d.remove !== 'function') throw new TypeError('driver.remove must be a function');
  if (d.event !== undefined && typeof d.event !== 'function') throw new TypeError('driver.event must be a function');
  if (d.features !== undefined) checkFeatures('driver.features', d.features);
}
