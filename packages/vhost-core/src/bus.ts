import { validateVhostConfigOps } from './config-ops.js';
import { VhostDevice, deviceBind, deviceSetBus, deviceUnbind } from './device.js';
import { checkDeviceId, checkDriver, vhostIdMatch, type VhostDriver } from './driver.js';
import { VhostError } from './errors.js';
import { Mutex } from './internal/mutex.js';

/**
 * Told about registrations on a {@link VhostBus}, after each completes (the
 * configuration tree uses it to add and remove `vhost-client/<driver>` groups, as the
 * RFC's `vhost_register_driver` calls `vhost_cfs_add_driver_group`). A listener may
 * return a promise; the registration call resolves after it, and rejects with its error.
 *
 * @public
 */
export interface VhostBusListener {
  /** A driver was registered (and bound to the devices it matched). */
  driverRegistered?(driver: VhostDriver): void | Promise<void>;
  /** A driver was unregistered (and removed from its devices). */
  driverUnregistered?(driver: VhostDriver): void | Promise<void>;
  /** A device was registered (and probed, if a driver matched). */
  deviceRegistered?(device: VhostDevice): void | Promise<void>;
  /** A device was unregistered. */
  deviceUnregistered?(device: VhostDevice): void | Promise<void>;
}

/**
 * The vhost bus (RFC patch 2, `bus_type vhost_bus_type`): drivers and devices register
 * in any order; a device is probed by the first registered driver whose id table
 * matches it ({@link vhostIdMatch}) when both exist, and removed when either side is
 * unregistered. Devices are named `vhost<N>` with the lowest free N.
 *
 * Registrations are serialized. A driver's probe or remove must not register or
 * unregister on the same bus (it would wait for itself).
 *
 * @public
 */
export class VhostBus {
  #drivers: VhostDriver[] = [];
  #devices: VhostDevice[] = [];
  readonly #indices = new Set<number>();
  readonly #listeners: VhostBusListener[] = [];
  readonly #lock = new Mutex();

  /** Registered drivers, in registration order. */
  get drivers(): readonly VhostDriver[] {
    return this.#drivers;
  }

  /** Registered devices, in registration order. */
  get devices(): readonly VhostDevice[] {
    return this.#devices;
  }

  /** True when one of the driver's id table entries matches the device's id (RFC `vhost_dev_match`). */
  static match(device: VhostDevice, driver: VhostDriver): boolean {
    const id = device.id;
    return id !== undefined && driver.idTable.some((entry) => vhostIdMatch(id, entry));
  }

  /**
   * Registers a driver (RFC `vhost_register_driver`) and probes every unbound device it
   * matches. Refused with `BUSY` when a driver of that name is registered.
   */
  async registerDriver(driver: VhostDriver): Promise<void> {
    checkDriver(driver);
    await this.#lock.run(async () => {
      if (this.#drivers.some((d) => d === driver || d.name === driver.name)) {
        throw new VhostError('BUSY', `a driver named ${driver.name} is already registered`);
      }
      this.#drivers = [...this.#drivers, driver];
      for (const dev of this.#devices) {
        if (dev.driver === undefined && VhostBus.match(dev, driver)) await deviceBind(dev, driver);
      }
    });
    for (const l of [...this.#listeners]) await l.driverRegistered?.(driver);
  }

  /** Unregisters a driver (RFC `vhost_unregister_driver`), removing it from its devices first. */
  async unregisterDriver(driver: VhostDriver): Promise<void> {
    await this.#lock.run(async () => {
      if (!this.#drivers.includes(driver)) throw new VhostError('NOT_REGISTERED', `driver ${String(driver?.name)} is not registered on this bus`);
      this.#drivers = this.#drivers.filter((d) => d !== driver);
      for (const dev of this.#devices) if (dev.driver === driver) await deviceUnbind(dev);
    });
    for (const l of [...this.#listeners]) await l.driverUnregistered?.(driver);
  }

  /**
   * Registers a device (RFC `vhost_register_device`): validates its ops
   * (`INVALID_OPS`) and id, names it `vhost<N>`, and probes it with the first matching
   * driver whose probe succeeds. A failed probe leaves the device registered and
   * unbound, with {@link VhostDevice.probeError} set, as Linux's driver core does.
   */
  async registerDevice(device: VhostDevice): Promise<void> {
    if (!(device instanceof VhostDevice)) throw new TypeError('device must be a VhostDevice');
    validateVhostConfigOps(device.ops);
    if (device.id === undefined) throw new TypeError(`${device.name}: device.id must be set before registration`);
    checkDeviceId('device.id', device.id, false);
    await this.#lock.run(async () => {
      if (device.bus !== undefined) throw new VhostError('BUSY', `${device.name} is already registered`);
      let index = 0;
      while (this.#indices.has(index)) index++;
      this.#indices.add(index);
      deviceSetBus(device, this, index);
      this.#devices = [...this.#devices, device];
      for (const driver of this.#drivers) {
        if (VhostBus.match(device, driver) && (await deviceBind(device, driver))) break;
      }
    });
    for (const l of [...this.#listeners]) await l.deviceRegistered?.(device);
  }

  /** Unregisters a device (RFC `vhost_unregister_device`), removing its driver first. */
  async unregisterDevice(device: VhostDevice): Promise<void> {
    await this.#lock.run(async () => {
      if (!(device instanceof VhostDevice) || device.bus !== this) {
        throw new VhostError('NOT_REGISTERED', `${device instanceof VhostDevice ? device.name : 'device'} is not registered on this bus`);
      }
      if (device.driver !== undefined) await deviceUnbind(device);
      this.#devices = this.#devices.filter((d) => d !== device);
      this.#indices.delete(device.index);
      deviceSetBus(device, undefined, -1);
    });
    for (const l of [...this.#listeners]) await l.deviceUnregistered?.(device);
  }

  /** Adds a listener; returns a function that removes it. */
  addListener(listener: VhostBusListener): () => void {
    if (typeof listener !== 'object' || listener === null) throw new TypeError('listener must be an object');
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }
}
