import { CORE_TRANSPORT_FEATURES, VIRTIO_BUFFER_ALIGN, VIRTIO_CONFIG_S, isFeatureWord } from './constants.js';
import { checkVirtioConfigOps } from './config-ops.js';
import { VirtioDevice, coreOf, type BusLink, type DeviceCore } from './device.js';
import { checkDriver, virtioIdMatch, type VirtioDriver } from './driver.js';
import { VirtioError, isVirtioError } from './errors.js';
import type { VirtioBusEvent } from './events.js';
import { GenPool } from './gen-pool.js';
import { wrapError } from './internal/call.js';

const S = VIRTIO_CONFIG_S;

/** Options of {@link VirtioBus}. @public */
export interface VirtioBusOptions {
  /**
   * How long core waits for one transport op before a `TIMEOUT` error, in ms. Default
   * 5000 (the RFC's command timeouts range from 1 s to 5 s, RFC §2.2). 0 waits forever.
   */
  opTimeoutMs?: number;
  /** Attempts of a config read whose generation keeps changing before `CONFIG_UNSTABLE`. Default 10. */
  configReadRetries?: number;
  /**
   * How many DEVICE_NEEDS_RESET recoveries one registration of a device gets before core
   * gives up on it (a device that always needs a reset would otherwise loop). Default 16.
   */
  maxNeedsResetRecoveries?: number;
  /** Receives probe / remove / needs-reset / error reports. Exceptions it throws are ignored. */
  onEvent?: (event: VirtioBusEvent) => void;
}

function checkCount(name: string, v: number, min: number): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!(Number.isInteger(v) || v === Infinity) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * The virtio bus (Linux `drivers/virtio/virtio.c`, `virtio_bus`): devices and drivers
 * register in any order; when a device and a driver match, the bus runs the VIRTIO §3.1
 * initialisation once, here, for every driver and transport:
 *
 * reset → ACKNOWLEDGE (at registration, as Linux `register_virtio_device`) → DRIVER →
 * read device features → accepted = device ∩ (driver featureTable ∪ core transport bits
 * filtered by the transport) → driver.validate → finalizeFeatures → FEATURES_OK →
 * re-read status (FEATURES_OK cleared → `FEATURES_NOT_ACCEPTED`) → driver.probe →
 * DRIVER_OK unless the driver set it. Any failure sets FAILED and leaves the device
 * unbound. Unregistering either side removes the driver: driver.remove, then core
 * resets the device, deletes leftover queues and frees leftover buffers.
 *
 * Lifecycle steps of one device run one at a time (a per-device queue, like Linux's
 * device lock); different devices proceed independently.
 *
 * @public
 */
export class VirtioBus {
  /** Transport op timeout in ms (0: none). */
  readonly opTimeoutMs: number;
  /** Config read attempts before CONFIG_UNSTABLE. */
  readonly configReadRetries: number;
  /** DEVICE_NEEDS_RESET recoveries per device registration. */
  readonly maxNeedsResetRecoveries: number;
  readonly #devices: DeviceCore[] = [];
  readonly #drivers: VirtioDriver[] = [];
  readonly #driverMasks = new Map<VirtioDriver, bigint>();
  readonly #onEvent: ((event: VirtioBusEvent) => void) | undefined;
  readonly #link: BusLink;

  constructor(options: VirtioBusOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const opTimeoutMs = options.opTimeoutMs ?? 5000;
    const configReadRetries = options.configReadRetries ?? 10;
    const maxNeedsResetRecoveries = options.maxNeedsResetRecoveries ?? 16;
    checkCount('options.opTimeoutMs', opTimeoutMs, 0);
    checkCount('options.configReadRetries', configReadRetries, 1);
    checkCount('options.maxNeedsResetRecoveries', maxNeedsResetRecoveries, 0);
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new TypeError('options.onEvent must be a function');
    this.opTimeoutMs = opTimeoutMs;
    this.configReadRetries = configReadRetries;
    this.maxNeedsResetRecoveries = maxNeedsResetRecoveries;
    this.#onEvent = options.onEvent;
    this.#link = {
      bus: this,
      opTimeoutMs,
      configReadRetries,
      report: (event) => this.#report(event),
      // Never rejects: the transport calls this from an interrupt handler and may not await.
      configChanged: (core) =>
        core.enqueue(() => this.#configChanged(core)).catch((e: unknown) => void core.reportError(e, 'config change')),
    };
  }

  /** Registered devices, in registration order. */
  get devices(): readonly VirtioDevice[] {
    return this.#devices.map((c) => c.dev);
  }

  /** Registered drivers, in registration order (the order they are tried in). */
  get drivers(): readonly VirtioDriver[] {
    return [...this.#drivers];
  }

  #report(event: VirtioBusEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // A faulty listener must not break the lifecycle.
    }
  }

  #matches(drv: VirtioDriver, c: DeviceCore): boolean {
    return drv.idTable.some((e) => virtioIdMatch(e, c.id));
  }

  /**
   * Registers a device (Linux `register_virtio_device`): validates its ops (throws
   * `INVALID_OPS`), resets it, sets ACKNOWLEDGE, then binds the first registered
   * driver that matches. Resolves with the device once that probe finished; a failed
   * probe does not reject (see {@link VirtioDevice.lastError} and `onEvent`).
   */
  async registerDevice(dev: VirtioDevice): Promise<VirtioDevice> {
    if (!(dev instanceof VirtioDevice)) throw new TypeError('dev must be a VirtioDevice');
    const c = coreOf(dev)!;
    if (c.link !== undefined) throw new VirtioError('ALREADY_REGISTERED', `${c.name} is already registered on a bus`);
    checkVirtioConfigOps(c.ops);
    const used = new Set(this.#devices.map((d) => d.index));
    let index = 0;
    while (used.has(index)) index++;
    c.index = index;
    c.link = this.#link;
    c.needsResetRecoveries = 0;
    c.lastError = undefined;
    if (c.ops.allocBuffer === undefined) {
      const r = c.ops.dmaRegion!;
      c.pool = new GenPool({ base: r.addr, size: r.size, align: VIRTIO_BUFFER_ALIGN });
    }
    this.#devices.push(c);
    try {
      await c.enqueue(async () => {
        // Linux register_virtio_device: "We always start by resetting the device, in
        // case a previous driver messed it up", then acknowledge it (§3.1.1 steps 1-2).
        await c.reset();
        await c.addStatus(S.ACKNOWLEDGE);
      });
    } catch (e) {
      this.#forget(c);
      throw e;
    }
    await c.enqueue(() => this.#attach(c));
    return dev;
  }

  #forget(c: DeviceCore): void {
    const i = this.#devices.indexOf(c);
    if (i >= 0) this.#devices.splice(i, 1);
    c.link = undefined;
    c.index = -1;
    c.pool = undefined;
    c.buffers.clear();
    c.vqs = undefined;
    c.status = 0;
  }

  /**
   * Unregisters a device (Linux `unregister_virtio_device`): removes its driver, resets
   * it, deletes leftover queues and frees leftover buffers.
   */
  async unregisterDevice(dev: VirtioDevice): Promise<void> {
    if (!(dev instanceof VirtioDevice)) throw new TypeError('dev must be a VirtioDevice');
    const c = coreOf(dev)!;
    if (c.link !== this.#link || !this.#devices.includes(c)) throw new VirtioError('NOT_REGISTERED', `${c.name} is not registered on this bus`);
    // Out of the list first, so no driver registered meanwhile binds to it.
    this.#devices.splice(this.#devices.indexOf(c), 1);
    await c.enqueue(async () => {
      if (c.driver !== undefined) await this.#unbind(c, false);
      else await this.#cleanup(c);
      this.#forget(c);
    });
  }

  /**
   * Registers a driver (Linux `register_virtio_driver`) after checking its fields
   * (TypeError / RangeError naming the field), and binds it to every unbound device it
   * matches. Resolves once those probes finished.
   */
  async registerDriver(drv: VirtioDriver): Promise<void> {
    const mask = checkDriver(drv);
    if (this.#drivers.includes(drv)) throw new VirtioError('ALREADY_REGISTERED', `driver ${drv.name} is already registered`);
    if (this.#drivers.some((d) => d.name === drv.name)) throw new VirtioError('ALREADY_REGISTERED', `a driver named ${drv.name} is already registered`);
    this.#drivers.push(drv);
    this.#driverMasks.set(drv, mask);
    await Promise.all(
      this.#devices.map((c) =>
        c.enqueue(async () => {
          if (c.driver === undefined && c.link === this.#link && this.#drivers.includes(drv) && this.#matches(drv, c)) await this.#probe(c, drv);
        }),
      ),
    );
  }

  /** Unregisters a driver (Linux `unregister_virtio_driver`), removing it from every device. */
  async unregisterDriver(drv: VirtioDriver): Promise<void> {
    const i = this.#drivers.indexOf(drv);
    if (i < 0) throw new VirtioError('NOT_REGISTERED', `driver ${String((drv as { name?: unknown } | null)?.name)} is not registered on this bus`);
    this.#drivers.splice(i, 1);
    this.#driverMasks.delete(drv);
    await Promise.all(
      this.#devices.map((c) =>
        c.enqueue(async () => {
          if (c.driver === drv) await this.#unbind(c, true);
        }),
      ),
    );
  }

  /** Resolves when no lifecycle step (probe, remove, config change) is queued on any device. */
  async settled(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const chains = this.#devices.map((c) => c.chain);
      await Promise.all(chains);
      if (this.#devices.every((c, k) => c.chain === chains[k])) return;
    }
  }

  /** Binds the first matching driver to an unbound device. Runs in the device's queue. */
  async #attach(c: DeviceCore): Promise<void> {
    if (c.driver !== undefined || c.link !== this.#link) return;
    const drv = this.#drivers.find((d) => this.#matches(d, c));
    if (drv !== undefined) await this.#probe(c, drv);
  }

  /** Linux `virtio_dev_probe`: the §3.1.1 sequence around driver.probe. Never rejects. */
  async #probe(c: DeviceCore, drv: VirtioDriver): Promise<boolean> {
    const dev = c.dev;
    try {
      if (c.status !== S.ACKNOWLEDGE) {
        await c.reset();
        await c.addStatus(S.ACKNOWLEDGE);
      }
      await c.addStatus(S.DRIVER);
      const offered = await c.readDeviceFeatures();
      let transport = CORE_TRANSPORT_FEATURES;
      const filter = c.ops.transportFeatures;
      if (filter !== undefined) {
        const t = await c.call('transportFeatures', () => c.ops.transportFeatures!(CORE_TRANSPORT_FEATURES));
        if (!isFeatureWord(t)) throw new VirtioError('TRANSPORT', `${c.name}: transportFeatures answered ${String(t)}`);
        transport = t & CORE_TRANSPORT_FEATURES;
      }
      c.allowedTransport = transport;
      c.setFeatures(offered & (this.#driverMasks.get(drv)! | transport));
      c.driver = drv;
      if (drv.validate !== undefined) {
        c.featuresOpen = true;
        try {
          await driverCall(c, 'validate', () => drv.validate!(dev));
        } finally {
          c.featuresOpen = false;
        }
      }
      await c.finalizeFeatures();
      await c.addStatus(S.FEATURES_OK);
      // §3.1.1 step 6: re-read and make sure the device kept FEATURES_OK.
      const s = await c.readStatus();
      if ((s & S.NEEDS_RESET) !== 0) throw new VirtioError('NEEDS_RESET', `${c.name}: the device set DEVICE_NEEDS_RESET during initialisation`);
      if ((s & S.FEATURES_OK) === 0) {
        c.status &= ~S.FEATURES_OK;
        throw new VirtioError(
          'FEATURES_NOT_ACCEPTED',
          `${c.name}: the device cleared FEATURES_OK; it does not accept features 0x${c.features.toString(16)} (§3.1.1 step 6)`,
        );
      }
      await driverCall(c, 'probe', () => drv.probe(dev));
      if ((c.status & S.DRIVER_OK) === 0) await c.addStatus(S.DRIVER_OK);
      c.lastError = undefined;
      this.#report({ type: 'probe', device: dev, driver: drv });
      return true;
    } catch (e) {
      const error = wrapError('TRANSPORT', `${c.name}: probe`, e);
      c.lastError = error;
      // Linux virtio_dev_probe error path: tell the device the driver gave up.
      if (c.link !== undefined && (c.status & S.FAILED) === 0) {
        try {
          await c.addStatus(S.FAILED);
        } catch (e2) {
          c.reportError(e2, 'setting FAILED after a failed probe');
        }
      }
      await this.#releaseResources(c);
      c.driver = undefined;
      this.#report({ type: 'probe-failed', device: dev, driver: drv, error });
      return false;
    }
  }

  /** Deletes leftover queues and frees leftover buffers; reports failures. */
  async #releaseResources(c: DeviceCore): Promise<void> {
    if (c.link === undefined) return;
    if (c.vqs !== undefined) {
      try {
        await c.delVqs();
      } catch (e) {
        c.vqs = undefined;
        c.reportError(e, 'delVqs during teardown');
      }
    }
    await c.freeAllBuffers();
  }

  /** Reset (if the driver did not), then release queues and buffers. */
  async #cleanup(c: DeviceCore): Promise<void> {
    if (c.link === undefined) return;
    if (c.status !== 0) {
      try {
        await c.reset();
      } catch (e) {
        c.reportError(e, 'reset during teardown');
      }
    }
    await this.#releaseResources(c);
  }

  /** Linux `virtio_dev_remove`. Runs in the device's queue; never rejects. */
  async #unbind(c: DeviceCore, reacknowledge: boolean): Promise<void> {
    const drv = c.driver!;
    try {
      await driverCall(c, 'remove', () => drv.remove(c.dev));
    } catch (e) {
      c.report({ type: 'error', device: c.dev, error: wrapError('DRIVER_ERROR', `${c.name}: remove`, e) });
    }
    await this.#cleanup(c);
    c.driver = undefined;
    this.#report({ type: 'remove', device: c.dev, driver: drv });
    // Linux re-acknowledges the device so a later driver can bind.
    if (reacknowledge && c.link !== undefined) {
      try {
        await c.addStatus(S.ACKNOWLEDGE);
      } catch (e) {
        c.reportError(e, 'ACKNOWLEDGE after remove');
      }
    }
  }

  /** A configuration-change interrupt (Linux `virtio_config_changed`). Runs in the device's queue. */
  async #configChanged(c: DeviceCore): Promise<void> {
    const drv = c.driver;
    if (c.link !== this.#link || drv === undefined || (c.status & S.DRIVER_OK) === 0) return;
    let s: number;
    try {
      s = await c.readStatus();
    } catch (e) {
      c.reportError(e, 'reading status after a config change');
      return;
    }
    if ((s & S.NEEDS_RESET) === 0) {
      if (drv.configChanged !== undefined) {
        try {
          await driverCall(c, 'configChanged', () => drv.configChanged!(c.dev));
        } catch (e) {
          c.report({ type: 'error', device: c.dev, error: wrapError('DRIVER_ERROR', `${c.name}: configChanged`, e) });
        }
      }
      return;
    }
    // §2.1.2: DEVICE_NEEDS_RESET. Recover by removing the driver, resetting the device
    // and probing again — a bounded number of times.
    if (c.needsResetRecoveries >= this.maxNeedsResetRecoveries) {
      const error = new VirtioError('NEEDS_RESET', `${c.name}: the device needs a reset again after ${c.needsResetRecoveries} recoveries; giving up`);
      await this.#unbind(c, true);
      c.lastError = error;
      try {
        await c.addStatus(S.FAILED);
      } catch (e) {
        c.reportError(e, 'setting FAILED');
      }
      this.#report({ type: 'error', device: c.dev, error });
      return;
    }
    c.needsResetRecoveries++;
    this.#report({ type: 'needs-reset', device: c.dev, driver: drv });
    await this.#unbind(c, true);
    if (c.link === this.#link && this.#drivers.includes(drv)) await this.#probe(c, drv);
  }
}

/** Runs a driver callback; anything but a VirtioError becomes DRIVER_ERROR. */
async function driverCall(c: DeviceCore, what: string, f: () => unknown): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (isVirtioError(e)) throw e;
    throw wrapError('DRIVER_ERROR', `${c.name}: driver ${what}`, e);
  }
}
