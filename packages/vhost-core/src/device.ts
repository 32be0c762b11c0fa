import { MAX_BUS_ADDR, VIRTQUEUE_MAX_SIZE, isVringError } from '@x/vring';
import type { VhostBus } from './bus.js';
import { validateVhostConfigOps, type VhostConfigOps, type VhostVqSpec } from './config-ops.js';
import { VHOST_FEATURES_MASK, VHOST_NOTIFY, VIRTIO_CONFIG_S, type VhostNotifyEvent } from './constants.js';
import { checkDeviceId, checkFeatures, type VhostDeviceId, type VhostDriver } from './driver.js';
import { VhostError, isVhostError } from './errors.js';
import { Mutex } from './internal/mutex.js';
import { VhostVirtqueue, isQueueSize, vqStart, vqStop } from './virtqueue.js';

/**
 * What the configuration tree (or code) sets on a device before it is registered:
 * the attributes the RFC left as constants.
 *
 * @public
 */
export interface VhostDeviceConfig {
  /** Default queue size for createVqs: a power of two ≤ 32768 (VIRTIO 1.2 §2.7). */
  readonly queueSize: number;
  /** Buffers per queue a client should use; 0 means one per descriptor (= queue size). */
  readonly bufferCount: number;
  /** Bytes per buffer a client should use (rpmsg: 512). */
  readonly bufferSize: number;
  /** The features the device may offer: setFeatures offers `features & this`. */
  readonly features: bigint;
}

/** The defaults of {@link VhostDeviceConfig}: 256 descriptors (the RFC's rpmsg queues), 512-byte buffers, all features. @public */
export const VHOST_DEFAULT_CONFIG: VhostDeviceConfig = Object.freeze({
  queueSize: 256,
  bufferCount: 0,
  bufferSize: 512,
  features: VHOST_FEATURES_MASK,
});

/**
 * What a driver hook or notifier learns about an event core accepted.
 *
 * @public
 */
export interface VhostEventInfo {
  /** Which event ({@link VHOST_NOTIFY}). */
  readonly event: VhostNotifyEvent;
  /** The device status after the event. */
  readonly status: number;
  /** The negotiated features after the event (0 until FINALIZE_FEATURES, and after RESET). */
  readonly features: bigint;
}

/**
 * A notifier on a device's chain (the RFC's `notifier_block` given to
 * `vhost_register_notifier`). Throwing while handling FINALIZE_FEATURES refuses the
 * features.
 *
 * @public
 */
export type VhostNotifier = (device: VhostDevice, info: VhostEventInfo) => void | Promise<void>;

/** Options of {@link VhostDevice}. @public */
export interface VhostDeviceOptions {
  /** The ids to register with; the configuration tree sets them when a client item is linked. */
  id?: VhostDeviceId;
  /** Attributes; defaults from {@link VHOST_DEFAULT_CONFIG}. */
  config?: Partial<VhostDeviceConfig>;
  /** The transport's name for the device (the RFC names items after `dev->parent`). */
  parent?: string;
}

const S = VIRTIO_CONFIG_S;

let setBusOf: (dev: VhostDevice, bus: VhostBus | undefined, index: number) => void;
let bindTo: (dev: VhostDevice, driver: VhostDriver) => Promise<boolean>;
let unbindFrom: (dev: VhostDevice) => Promise<void>;

function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

function checkConfig(c: Partial<VhostDeviceConfig>): VhostDeviceConfig {
  if (typeof c !== 'object' || c === null) throw new TypeError('config must be an object');
  const merged = { ...VHOST_DEFAULT_CONFIG, ...c };
  if (typeof merged.queueSize !== 'number' || !isQueueSize(merged.queueSize)) {
    throw new RangeError(`config.queueSize must be a power of two in 1..${VIRTQUEUE_MAX_SIZE}, got ${merged.queueSize}`);
  }
  if (!Number.isInteger(merged.bufferCount) || merged.bufferCount < 0 || merged.bufferCount > merged.queueSize) {
    throw new RangeError(`config.bufferCount must be an integer in 0..queueSize (${merged.queueSize}), got ${merged.bufferCount}`);
  }
  if (!Number.isInteger(merged.bufferSize) || merged.bufferSize < 1 || merged.bufferSize > 0xffffffff) {
    throw new RangeError(`config.bufferSize must be an integer in 1..2^32-1, got ${merged.bufferSize}`);
  }
  checkFeatures('config.features', merged.features);
  return Object.freeze(merged);
}

/**
 * A vhost (backend) device: the RFC's `struct vhost_dev` in the "standard Linux
 * driver model in VHOST" (patches 1–3). A transport creates it with its
 * {@link VhostConfigOps}; it is registered on a {@link VhostBus} (by code or by linking
 * items in the configuration tree) and bound to a matching {@link VhostDriver}.
 *
 * Features are a property of the device (patch 1): the driver offers them with
 * {@link VhostDevice.setFeatures}, and the features the peer's driver accepted arrive
 * with FINALIZE_FEATURES and are checked to be a subset of the offer.
 *
 * Core tracks the status the peer writes (VIRTIO 1.2 §2.1, §3.1.1) and refuses what
 * breaks it: FEATURES_OK is cleared again when the features were refused (so the
 * peer's re-read fails, §3.1.1 step 6), an out-of-order status raises NEEDS_RESET.
 * Rings go live at DRIVER_OK and quiet again on RESET or FAILED.
 *
 * @public
 */
export class VhostDevice {
  /** The transport's ops, validated at construction. */
  readonly ops: VhostConfigOps;
  /** The transport's name for the device. */
  readonly parent: string;

  #id: VhostDeviceId | undefined;
  #config: VhostDeviceConfig;
  #bus: VhostBus | undefined = undefined;
  #index = -1;
  #driver: VhostDriver | undefined = undefined;
  #probeError: VhostError | undefined = undefined;
  #lastError: VhostError | undefined = undefined;
  #status = 0;
  #ready = false;
  #offered = 0n;
  #features = 0n;
  #finalized = false;
  #featuresRefusal: VhostError | undefined = undefined;
  #vqs: VhostVirtqueue[] = [];
  readonly #notifiers: VhostNotifier[] = [];
  readonly #lock = new Mutex();

  static {
    setBusOf = (dev, bus, index) => {
      dev.#bus = bus;
      dev.#index = index;
    };
    bindTo = (dev, driver) => dev.#bind(driver);
    unbindFrom = (dev) => dev.#unbind();
  }

  constructor(ops: VhostConfigOps, options: VhostDeviceOptions = {}) {
    validateVhostConfigOps(ops);
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    if (options.id !== undefined) checkDeviceId('options.id', options.id, true);
    if (options.parent !== undefined && typeof options.parent !== 'string') throw new TypeError('options.parent must be a string');
    this.ops = ops;
    this.parent = options.parent ?? '';
    this.#id = options.id === undefined ? undefined : Object.freeze({ vendor: options.id.vendor, device: options.id.device });
    this.#config = checkConfig(options.config ?? {});
  }

  // ---- identity and binding ---------------------------------------------------------

  /** The ids the device registers with; undefined until set. Fixed while registered. */
  get id(): VhostDeviceId | undefined {
    return this.#id;
  }
  set id(id: VhostDeviceId | undefined) {
    if (this.#bus !== undefined) throw new VhostError('BUSY', `${this.name}: the id is fixed while the device is registered`);
    if (id !== undefined) checkDeviceId('id', id, true);
    this.#id = id === undefined ? undefined : Object.freeze({ vendor: id.vendor, device: id.device });
  }

  /** The device's attributes. Fixed while registered; set it to a partial to override defaults. */
  get config(): VhostDeviceConfig {
    return this.#config;
  }
  set config(config: Partial<VhostDeviceConfig>) {
    if (this.#bus !== undefined) throw new VhostError('BUSY', `${this.name}: the configuration is fixed while the device is registered`);
    this.#config = checkConfig(config);
  }

  /** `vhost<index>` while registered (the RFC's `dev_set_name(dev, "vhost%u")`), else the parent's name. */
  get name(): string {
    return this.#index >= 0 ? `vhost${this.#index}` : this.parent === '' ? 'vhost (unregistered)' : this.parent;
  }

  /** The index the bus gave the device, -1 when not registered. */
  get index(): number {
    return this.#index;
  }

  /** The bus the device is registered on. */
  get bus(): VhostBus | undefined {
    return this.#bus;
  }

  /** The bound driver. */
  get driver(): VhostDriver | undefined {
    return this.#driver;
  }

  /** Why the last probe failed (`DRIVER_ERROR`, cause: what probe threw), if it did. */
  get probeError(): VhostError | undefined {
    return this.#probeError;
  }

  /** The last refusal handleEvent returned, or the last error of a driver's remove. */
  get lastError(): VhostError | undefined {
    return this.#lastError;
  }

  // ---- state ------------------------------------------------------------------------

  /** The device status as core accepted it (VIRTIO 1.2 §2.1). */
  get status(): number {
    return this.#status;
  }

  /** True from DRIVER_OK until RESET, FAILED or NEEDS_RESET: the rings may be touched. */
  get isReady(): boolean {
    return this.#ready;
  }

  /** The features the device offers (patch 1: `vhost_set_features`), 0 until set. */
  get offeredFeatures(): bigint {
    return this.#offered;
  }

  /** The negotiated features (patch 1: `vdev->features`, set at FINALIZE_FEATURES), 0 until then. */
  get features(): bigint {
    return this.#features;
  }

  /** True when feature bit `bit` was negotiated (Linux `vhost_has_feature`). */
  hasFeature(bit: number): boolean {
    if (!Number.isInteger(bit) || bit < 0 || bit > 63) throw new RangeError(`bit must be an integer in 0..63, got ${bit}`);
    return ((this.#features >> BigInt(bit)) & 1n) === 1n;
  }

  /** The queues createVqs made. */
  get vqs(): readonly VhostVirtqueue[] {
    return this.#vqs;
  }

  // ---- driver-facing wrappers (RFC vhost_*) ----------------------------------------

  /**
   * Offers features to the peer (RFC `vhost_set_features`, patch 1): stores
   * `features & config.features` as {@link VhostDevice.offeredFeatures} and publishes it
   * through the transport. Refused with `BAD_STATUS` once the peer set FEATURES_OK.
   */
  async setFeatures(features: bigint): Promise<void> {
    checkFeatures('features', features);
    if ((this.#status & S.FEATURES_OK) !== 0) {
      throw new VhostError('BAD_STATUS', `${this.name}: device features are fixed once the peer set FEATURES_OK (VIRTIO 1.2 §3.1.1)`);
    }
    const offered = features & this.#config.features;
    await this.ops.setFeatures(offered);
    this.#offered = offered;
  }

  /** Reads the status the peer last wrote, through the transport (RFC `vhost_get_status`). */
  async getStatus(): Promise<number> {
    const s = await this.ops.getStatus();
    if (typeof s !== 'number' || !Number.isInteger(s)) throw new VhostError('INVALID_OPS', `${this.name}: ops.getStatus returned ${String(s)}`);
    return s & 0xff;
  }

  /**
   * Writes the status the peer reads back (RFC `vhost_set_status`). Setting NEEDS_RESET
   * marks the device broken: the rings go quiet until the peer resets it.
   */
  async setStatus(status: number): Promise<void> {
    if (typeof status !== 'number') throw new TypeError(`status must be a number, got ${typeof status}`);
    if (!Number.isInteger(status) || status < 0 || status > 0xff) throw new RangeError(`status must be a u8, got ${status}`);
    await this.ops.setStatus(status);
    if ((status & S.NEEDS_RESET) !== 0) {
      this.#status |= S.NEEDS_RESET;
      this.#updateReady();
    }
  }

  /**
   * Creates the device's queues through the transport (RFC `vhost_create_vqs`). A spec
   * without `size` gets `config.queueSize`. Refused with `BUSY` while queues exist.
   */
  async createVqs(specs: readonly VhostVqSpec[]): Promise<VhostVirtqueue[]> {
    if (!Array.isArray(specs)) throw new TypeError('specs must be an array');
    if (specs.length === 0) throw new RangeError('specs must name at least one queue');
    const resolved = specs.map((s, i) => {
      if (typeof s !== 'object' || s === null) throw new TypeError(`specs[${i}] must be an object`);
      if (typeof s.name !== 'string') throw new TypeError(`specs[${i}].name must be a string`);
      if (s.callback !== undefined && typeof s.callback !== 'function') throw new TypeError(`specs[${i}].callback must be a function`);
      const size = s.size ?? this.#config.queueSize;
      if (typeof size !== 'number') throw new TypeError(`specs[${i}].size must be a number`);
      if (!isQueueSize(size)) throw new RangeError(`specs[${i}].size must be a power of two in 1..${VIRTQUEUE_MAX_SIZE}, got ${size}`);
      return Object.freeze({ name: s.name, ...(s.callback === undefined ? {} : { callback: s.callback }), size });
    });
    if (this.#vqs.length > 0) throw new VhostError('BUSY', `${this.name}: queues exist; delVqs first`);
    const vqs = await this.ops.createVqs(resolved);
    if (!Array.isArray(vqs) || vqs.length !== resolved.length) {
      throw new VhostError('INVALID_OPS', `${this.name}: ops.createVqs returned ${Array.isArray(vqs) ? vqs.length : typeof vqs} queues for ${resolved.length} specs`);
    }
    vqs.forEach((vq, i) => {
      if (!(vq instanceof VhostVirtqueue) || vq.device !== this || vq.index !== i || vq.num !== resolved[i]!.size) {
        throw new VhostError('INVALID_OPS', `${this.name}: ops.createVqs returned a bad queue at ${i} (need a VhostVirtqueue of this device, index ${i}, num ${resolved[i]!.size})`);
      }
    });
    this.#vqs = [...vqs];
    if (this.#ready) for (const vq of this.#vqs) vqStart(vq);
    return [...vqs];
  }

  /** Deletes the queues (RFC `vhost_del_vqs`): detaches their rings, then asks the transport. */
  async delVqs(): Promise<void> {
    if (this.#vqs.length === 0) return;
    for (const vq of this.#vqs) vqStop(vq, true);
    this.#vqs = [];
    await this.ops.delVqs();
  }

  /**
   * Copies `dst.length` bytes of the peer's memory at its bus address `peerAddr` into
   * `dst` (RFC `vhost_read`). Fails with `BUS_ERROR` outside what the device can reach.
   * Answers synchronously when the transport does.
   */
  read(dst: Uint8Array, peerAddr: number): void | Promise<void> {
    if (!(dst instanceof Uint8Array)) throw new TypeError('dst must be a Uint8Array');
    checkPeerRange('peerAddr', peerAddr, dst.length);
    return this.#memOp(() => this.ops.read(dst, peerAddr));
  }

  /**
   * Copies `src` into the peer's memory at its bus address `peerAddr` (RFC
   * `vhost_write`). Fails with `BUS_ERROR` outside what the device can reach.
   */
  write(peerAddr: number, src: Uint8Array): void | Promise<void> {
    if (!(src instanceof Uint8Array)) throw new TypeError('src must be a Uint8Array');
    checkPeerRange('peerAddr', peerAddr, src.length);
    return this.#memOp(() => this.ops.write(peerAddr, src));
  }

  /**
   * Reads the device-specific configuration space (VIRTIO 1.2 §2.5) through the
   * transport's optional `readConfig`; `NOT_SUPPORTED` without it.
   */
  async readConfig(offset: number, dst: Uint8Array): Promise<void> {
    if (!(dst instanceof Uint8Array)) throw new TypeError('dst must be a Uint8Array');
    checkPeerRange('offset', offset, dst.length);
    if (this.ops.readConfig === undefined) throw new VhostError('NOT_SUPPORTED', `${this.name}: the transport has no configuration space`);
    await this.ops.readConfig(offset, dst);
  }

  /** Writes the device-specific configuration space through the transport's optional `writeConfig`; `NOT_SUPPORTED` without it. */
  async writeConfig(offset: number, src: Uint8Array): Promise<void> {
    if (!(src instanceof Uint8Array)) throw new TypeError('src must be a Uint8Array');
    checkPeerRange('offset', offset, src.length);
    if (this.ops.writeConfig === undefined) throw new VhostError('NOT_SUPPORTED', `${this.name}: the transport has no configuration space`);
    await this.ops.writeConfig(offset, src);
  }

  #memOp(op: () => void | Promise<void>): void | Promise<void> {
    let r: void | Promise<void>;
    try {
      r = op();
    } catch (e) {
      throw busError(this, e);
    }
    if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
      return (r as Promise<void>).then(undefined, (e: unknown) => {
        throw busError(this, e);
      });
    }
    return undefined;
  }

  /**
   * Adds a notifier to the device's chain (RFC `vhost_register_notifier`); it runs for
   * every event core accepts, after the bound driver's `event` hook. Returns a function
   * that removes it.
   */
  registerNotifier(notifier: VhostNotifier): () => void {
    if (typeof notifier !== 'function') throw new TypeError('notifier must be a function');
    this.#notifiers.push(notifier);
    return () => {
      const i = this.#notifiers.indexOf(notifier);
      if (i >= 0) this.#notifiers.splice(i, 1);
    };
  }

  // ---- transport-facing entry point -------------------------------------------------

  /**
   * The transport reports what the peer did (the RFC's `blocking_notifier_call_chain`
   * on `vdev->notifier`): {@link VHOST_NOTIFY}.SET_STATUS after the peer wrote the status
   * (core reads it with `ops.getStatus`), FINALIZE_FEATURES with the peer's driver
   * features, RESET. Events are handled one at a time, in order, and never while the
   * driver's probe or remove runs.
   *
   * Resolves `undefined` when core accepted the event, or with the {@link VhostError}
   * explaining a refusal (`FEATURES_NOT_OFFERED`, `BAD_STATUS`, `DRIVER_ERROR`), which
   * the transport reports to the peer (e.g. as a command ERROR). Never rejects.
   */
  handleEvent(event: VhostNotifyEvent, driverFeatures?: bigint): Promise<VhostError | undefined> {
    if (event !== VHOST_NOTIFY.SET_STATUS && event !== VHOST_NOTIFY.FINALIZE_FEATURES && event !== VHOST_NOTIFY.RESET) {
      throw new RangeError(`event must be one of VHOST_NOTIFY, got ${String(event)}`);
    }
    if (event === VHOST_NOTIFY.FINALIZE_FEATURES) checkFeatures('driverFeatures', driverFeatures);
    return this.#lock.run(async () => {
      let err: VhostError | undefined;
      try {
        if (event === VHOST_NOTIFY.SET_STATUS) err = await this.#onSetStatus();
        else if (event === VHOST_NOTIFY.FINALIZE_FEATURES) err = await this.#onFinalize(driverFeatures!);
        else err = await this.#onReset();
      } catch (e) {
        err = isVhostError(e) ? e : new VhostError('DRIVER_ERROR', `${this.name}: handling event ${event} failed`, { cause: e });
      }
      if (err !== undefined) this.#lastError = err;
      return err;
    });
  }

  async #onSetStatus(): Promise<VhostError | undefined> {
    const s = await this.getStatus();
    if (s === 0) return this.#onReset();
    // NEEDS_RESET belongs to the device; the peer's write may or may not echo it.
    const needsReset = this.#status & S.NEEDS_RESET;
    const prev = this.#status & ~S.NEEDS_RESET;
    const peer = s & ~S.NEEDS_RESET;
    let rule: string | undefined;
    if ((peer & S.FAILED) !== 0 && (prev & S.FAILED) === 0) {
      // The driver gave up (§3.1.1): accepted whatever else the write says; the rings go quiet.
      rule = undefined;
    } else if ((prev & ~peer) !== 0) {
      rule = `status ${hex(s)} clears ${hex(prev & ~peer)}: the driver MUST NOT clear a device status bit (VIRTIO 1.2 §2.1.1)`;
    } else if ((peer & S.DRIVER) !== 0 && (peer & S.ACKNOWLEDGE) === 0) {
      rule = `status ${hex(s)} sets DRIVER without ACKNOWLEDGE (VIRTIO 1.2 §3.1.1 steps 2-3)`;
    } else if ((peer & S.FEATURES_OK) !== 0 && (peer & S.DRIVER) === 0) {
      rule = `status ${hex(s)} sets FEATURES_OK without DRIVER (VIRTIO 1.2 §3.1.1 steps 3-5)`;
    } else if ((peer & S.DRIVER_OK) !== 0 && (peer & S.FEATURES_OK) === 0) {
      rule = `status ${hex(s)} sets DRIVER_OK without FEATURES_OK (VIRTIO 1.2 §3.1.1 steps 5-8)`;
    } else if ((peer & S.FEATURES_OK) !== 0 && (prev & S.FEATURES_OK) === 0 && !this.#finalized) {
      const refusal =
        this.#featuresRefusal ??
        new VhostError('BAD_STATUS', `${this.name}: FEATURES_OK before FINALIZE_FEATURES: the device has not seen the driver's features (VIRTIO 1.2 §3.1.1 steps 4-5)`);
      if ((peer & S.DRIVER_OK) === 0) {
        // Refuse FEATURES_OK by not letting it stick: the peer's re-read fails (§3.1.1 step 6).
        const corrected = (s & ~S.FEATURES_OK) | needsReset;
        await this.ops.setStatus(corrected);
        this.#status = corrected;
        this.#updateReady();
        return refusal;
      }
      rule = `status ${hex(s)} sets DRIVER_OK with refused features (${refusal.message})`;
    }
    if (rule !== undefined) {
      // §2.1: a device that cannot go on sets DEVICE_NEEDS_RESET; the rings stay quiet.
      const broken = s | S.NEEDS_RESET;
      this.#status = broken;
      this.#updateReady();
      await this.ops.setStatus(broken);
      return new VhostError('BAD_STATUS', `${this.name}: ${rule}`);
    }
    this.#status = peer | needsReset;
    this.#updateReady();
    return this.#deliver(VHOST_NOTIFY.SET_STATUS);
  }

  async #onFinalize(driverFeatures: bigint): Promise<VhostError | undefined> {
    const st = this.#status;
    if ((st & S.DRIVER) === 0 || (st & S.FEATURES_OK) !== 0) {
      const err = new VhostError(
        'BAD_STATUS',
        `${this.name}: FINALIZE_FEATURES with status ${hex(st)}: features are negotiated after DRIVER and before FEATURES_OK (VIRTIO 1.2 §3.1.1 steps 3-5)`,
      );
      if ((st & S.FEATURES_OK) === 0) this.#refuseFeatures(err);
      return err;
    }
    const extra = driverFeatures & ~this.#offered;
    if (extra !== 0n) {
      const err = new VhostError(
        'FEATURES_NOT_OFFERED',
        `${this.name}: driver features ${hex(driverFeatures)} include ${hex(extra)}, which the device did not offer (offered ${hex(this.#offered)}; VIRTIO 1.2 §2.2.1)`,
      );
      this.#refuseFeatures(err);
      return err;
    }
    this.#features = driverFeatures;
    this.#finalized = true;
    this.#featuresRefusal = undefined;
    const err = await this.#deliver(VHOST_NOTIFY.FINALIZE_FEATURES);
    if (err !== undefined) this.#refuseFeatures(err);
    return err;
  }

  #refuseFeatures(err: VhostError): void {
    this.#features = 0n;
    this.#finalized = false;
    this.#featuresRefusal = err;
  }

  async #onReset(): Promise<VhostError | undefined> {
    for (const vq of this.#vqs) vqStop(vq, true);
    this.#ready = false;
    this.#status = 0;
    this.#features = 0n;
    this.#finalized = false;
    this.#featuresRefusal = undefined;
    // The RFC's endpoint never cleared the status on reset (review finding); core does.
    await this.ops.setStatus(0);
    return this.#deliver(VHOST_NOTIFY.RESET);
  }

  #updateReady(): void {
    const st = this.#status;
    const ready = (st & S.DRIVER_OK) !== 0 && (st & (S.FAILED | S.NEEDS_RESET)) === 0;
    if (ready === this.#ready) return;
    this.#ready = ready;
    for (const vq of this.#vqs) {
      if (ready) vqStart(vq);
      else vqStop(vq, false);
    }
  }

  /** Runs the bound driver's hook, then the notifier chain; the first error stops it. */
  async #deliver(event: VhostNotifyEvent): Promise<VhostError | undefined> {
    const info: VhostEventInfo = Object.freeze({ event, status: this.#status, features: this.#features });
    const driver = this.#driver;
    try {
      if (driver?.event !== undefined) await driver.event(this, info);
      for (const n of [...this.#notifiers]) await n(this, info);
    } catch (e) {
      if (isVhostError(e)) return e;
      return new VhostError('DRIVER_ERROR', `${this.name}: ${driver?.name ?? 'a notifier'} failed on event ${event}`, { cause: e });
    }
    return undefined;
  }

  // ---- bus-facing (internal) --------------------------------------------------------

  #bind(driver: VhostDriver): Promise<boolean> {
    return this.#lock.run(async () => {
      this.#driver = driver;
      this.#probeError = undefined;
      try {
        await driver.probe(this);
        return true;
      } catch (e) {
        this.#probeError = new VhostError('DRIVER_ERROR', `${this.name}: probe of ${driver.name} failed`, { cause: e });
        this.#driver = undefined;
        await this.#dropVqs();
        return false;
      }
    });
  }

  #unbind(): Promise<void> {
    return this.#lock.run(async () => {
      const driver = this.#driver;
      if (driver === undefined) return;
      try {
        await driver.remove(this);
      } catch (e) {
        this.#lastError = new VhostError('DRIVER_ERROR', `${this.name}: remove of ${driver.name} failed`, { cause: e });
      }
      this.#driver = undefined;
      await this.#dropVqs();
    });
  }

  /** Deletes queues a driver left behind; the transport's failure is recorded, not thrown. */
  async #dropVqs(): Promise<void> {
    try {
      await this.delVqs();
    } catch (e) {
      this.#lastError = isVhostError(e) ? e : new VhostError('DRIVER_ERROR', `${this.name}: delVqs failed`, { cause: e });
    }
  }
}

function checkPeerRange(name: string, addr: number, len: number): void {
  if (typeof addr !== 'number') throw new TypeError(`${name} must be a number, got ${typeof addr}`);
  if (!Number.isInteger(addr) || addr < 0 || addr + len > MAX_BUS_ADDR) {
    throw new RangeError(`${name} must be an integer with ${name} + length in [0, 2^53-1], got ${addr}`);
  }
}

function busError(dev: VhostDevice, e: unknown): unknown {
  if (isVringError(e, 'BUS_ERROR')) return new VhostError('BUS_ERROR', `${dev.name}: ${e.message}`, { cause: e });
  return e;
}

/** Records the bus and index of a registered device. @internal */
export function deviceSetBus(dev: VhostDevice, bus: VhostBus | undefined, index: number): void {
  setBusOf(dev, bus, index);
}

/** Binds a device to a driver (runs probe under the device lock); false when probe failed. @internal */
export function deviceBind(dev: VhostDevice, driver: VhostDriver): Promise<boolean> {
  return bindTo(dev, driver);
}

/** Unbinds a device (runs remove under the device lock, then drops leftover queues). @internal */
export function deviceUnbind(dev: VhostDevice): Promise<void> {
  return unbindFrom(dev);
}
