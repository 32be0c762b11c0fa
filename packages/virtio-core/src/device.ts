import type { Virtqueue } from '@x/vring';
import { VIRTIO_BUFFER_ALIGN, VIRTIO_CONFIG_S, VIRTIO_F, isFeatureWord, isTransportBit } from './constants.js';
import type { MaybePromise, VirtioBuffer, VirtioConfigOps, VirtqueueSpec } from './config-ops.js';
import { checkDeviceId, type VirtioDeviceId, type VirtioDriver } from './driver.js';
import { VirtioError } from './errors.js';
import type { VirtioBusEvent } from './events.js';
import { GenPool } from './gen-pool.js';
import { awaitWithTimeout, isThenable, wrapError } from './internal/call.js';
import { checkStatusTransition } from './status.js';
import type { VirtioBus } from './bus.js';

const S = VIRTIO_CONFIG_S;
const VIRTQUEUE_MAX_SIZE = 32768;

/** Options of {@link VirtioDevice}. @public */
export interface VirtioDeviceOptions {
  /** The device's identity, as the transport discovered it. */
  readonly id: VirtioDeviceId;
  /** The transport's ops for this one device. */
  readonly ops: VirtioConfigOps;
  /** Name in errors and events. Default: `virtio<index>` once registered. */
  readonly name?: string;
}

/** @internal What a device needs from the bus it is registered on. */
export interface BusLink {
  readonly bus: VirtioBus;
  readonly opTimeoutMs: number;
  readonly configReadRetries: number;
  report(event: VirtioBusEvent): void;
  configChanged(core: DeviceCore): Promise<void>;
}

function hex(v: number): string {
  return `0x${v.toString(16)}`;
}

/**
 * @internal The state and the transport-facing logic of one device. The bus drives the
 * lifecycle through it; {@link VirtioDevice} is its public face.
 */
export class DeviceCore {
  readonly dev: VirtioDevice;
  readonly ops: VirtioConfigOps;
  readonly id: VirtioDeviceId;
  readonly fixedName: string | undefined;
  link: BusLink | undefined;
  index = -1;
  /** The status the driver side last wrote (never NEEDS_RESET, which is device-owned). */
  status = 0;
  /** finalizeFeatures ran since the last reset. */
  featuresFinalized = false;
  /** driver.validate is running: features may still change. */
  featuresOpen = false;
  offered = 0n;
  features = 0n;
  featLo = 0;
  featHi = 0;
  /** Transport bits that may be accepted (core set after the transport's filter). */
  allowedTransport = 0n;
  driver: VirtioDriver | undefined;
  vqs: Virtqueue[] | undefined;
  pool: GenPool | undefined;
  /** Live buffers by bus address (both allocBuffer paths), freed at unbind. */
  readonly buffers = new Map<number, VirtioBuffer>();
  chain: Promise<void> = Promise.resolve();
  lastError: VirtioError | undefined;
  needsResetRecoveries = 0;

  constructor(dev: VirtioDevice, options: VirtioDeviceOptions) {
    this.dev = dev;
    this.ops = options.ops;
    this.id = Object.freeze({ device: options.id.device, vendor: options.id.vendor });
    this.fixedName = options.name;
  }

  get name(): string {
    return this.fixedName ?? (this.index >= 0 ? `virtio${this.index}` : 'virtio?');
  }

  /** Runs `task` after every lifecycle task queued before it (a per-device lock). */
  enqueue<T>(task: () => Promise<T>): Promise<T> {
    const p = this.chain.then(task);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  checkRegistered(): BusLink {
    const link = this.link;
    if (link === undefined) throw new VirtioError('NOT_REGISTERED', `${this.name} is not registered on a bus`);
    return link;
  }

  /** Calls one transport op: awaited, bounded by opTimeoutMs, errors wrapped as TRANSPORT. */
  async call<T>(what: string, f: () => MaybePromise<T>): Promise<T> {
    const link = this.checkRegistered();
    let r: MaybePromise<T>;
    try {
      r = f();
    } catch (e) {
      throw wrapError('TRANSPORT', `${this.name}: ${what}`, e);
    }
    if (!isThenable(r)) return r;
    return awaitWithTimeout(r, link.opTimeoutMs, `${this.name}: ${what}`, 'TRANSPORT');
  }

  report(event: VirtioBusEvent): void {
    this.link?.report(event);
  }

  reportError(e: unknown, what: string): VirtioError {
    const err = wrapError('TRANSPORT', `${this.name}: ${what}`, e);
    this.report({ type: 'error', device: this.dev, error: err });
    return err;
  }

  setFeatures(f: bigint): void {
    this.features = f;
    this.featLo = Number(f & 0xffffffffn);
    this.featHi = Number((f >> 32n) & 0xffffffffn);
  }

  async readStatus(): Promise<number> {
    const s = await this.call('getStatus', () => this.ops.getStatus());
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > 0xff) {
      throw new VirtioError('TRANSPORT', `${this.name}: getStatus answered ${String(s)}, not a status byte`);
    }
    return s;
  }

  async readDeviceFeatures(): Promise<bigint> {
    const f = await this.call('getFeatures', () => this.ops.getFeatures());
    if (!isFeatureWord(f)) {
      throw new VirtioError('TRANSPORT', `${this.name}: getFeatures answered ${String(f)}, not a bigint in [0, 2^64)`);
    }
    this.offered = f;
    return f;
  }

  async addStatus(bit: number): Promise<void> {
    this.checkRegistered();
    const from = this.status;
    const to = from | bit;
    checkStatusTransition(from, to);
    if (to === from) return;
    if (bit === S.FEATURES_OK && !this.featuresFinalized) {
      throw new VirtioError(
        'BAD_STATUS_TRANSITION',
        `${this.name}: status ${hex(from)} -> ${hex(to)}: FEATURES_OK before the driver wrote its features (§3.1.1 step 4)`,
      );
    }
    await this.call(`setStatus(${hex(to)})`, () => this.ops.setStatus(to));
    this.status = to;
  }

  async reset(): Promise<void> {
    await this.call('reset', () => this.ops.reset());
    this.status = 0;
    this.featuresFinalized = false;
    this.featuresOpen = false;
    // The RFC's endpoint never cleared its status (review of RFC §2.2); check it did.
    const s = await this.readStatus();
    if (s !== 0) throw new VirtioError('TRANSPORT', `${this.name}: status reads ${hex(s)} after reset, not 0 (§2.1)`);
  }

  async finalizeFeatures(): Promise<void> {
    const extra = this.features & ~this.offered;
    if (extra !== 0n) {
      throw new VirtioError('FEATURES_NOT_OFFERED', `${this.name}: features 0x${extra.toString(16)} were not offered by the device (§2.2.1)`);
    }
    const f = this.features;
    await this.call('finalizeFeatures', () => this.ops.finalizeFeatures(f));
    this.featuresFinalized = true;
  }

  checkFeatureBit(bit: number): bigint {
    if (typeof bit !== 'number') throw new TypeError(`bit must be a number, got ${typeof bit}`);
    if (!Number.isInteger(bit) || bit < 0 || bit > 63) throw new RangeError(`bit must be a feature bit in 0..63, got ${bit}`);
    if (!this.featuresOpen) {
      throw new VirtioError('BAD_STATE', `${this.name}: features can change only in driver.validate, before they are written (§3.1.1 step 4)`);
    }
    return 1n << BigInt(bit);
  }

  acceptFeature(bit: number): void {
    const m = this.checkFeatureBit(bit);
    if ((this.offered & m) === 0n) {
      throw new VirtioError('FEATURES_NOT_OFFERED', `${this.name}: feature ${bit} was not offered by the device (§2.2.1)`);
    }
    if (isTransportBit(bit) && (this.allowedTransport & m) === 0n) {
      throw new VirtioError('FEATURES_NOT_OFFERED', `${this.name}: transport feature ${bit} is not negotiable over this transport`);
    }
    this.setFeatures(this.features | m);
  }

  dropFeature(bit: number): void {
    const m = this.checkFeatureBit(bit);
    this.setFeatures(this.features & ~m);
  }

  hasBit(bit: number): boolean {
    return bit < 32 ? ((this.featLo >>> bit) & 1) === 1 : ((this.featHi >>> (bit - 32)) & 1) === 1;
  }

  async findVqs(specs: readonly VirtqueueSpec[]): Promise<Virtqueue[]> {
    this.checkRegistered();
    if (!Array.isArray(specs)) throw new TypeError('specs must be an array');
    if (specs.length === 0) throw new RangeError('specs must name at least one queue');
    const wrapped: VirtqueueSpec[] = specs.map((s, i) => {
      if (typeof s !== 'object' || s === null) throw new TypeError(`specs[${i}] must be an object`);
      if (typeof s.name !== 'string') throw new TypeError(`specs[${i}].name must be a string`);
      if (s.callback !== undefined && typeof s.callback !== 'function') throw new TypeError(`specs[${i}].callback must be a function`);
      if (s.size !== undefined) {
        if (typeof s.size !== 'number') throw new TypeError(`specs[${i}].size must be a number`);
        if (!Number.isInteger(s.size) || s.size < 1 || s.size > VIRTQUEUE_MAX_SIZE || (s.size & (s.size - 1)) !== 0) {
          throw new RangeError(`specs[${i}].size must be a power of two in 1..${VIRTQUEUE_MAX_SIZE}, got ${s.size}`);
        }
      }
      const cb = s.callback;
      // A throwing queue callback would unwind into the transport's interrupt handler;
      // report it instead.
      const callback =
        cb === undefined
          ? undefined
          : (vq: Virtqueue): void => {
              try {
                cb(vq);
              } catch (e) {
                this.report({ type: 'error', device: this.dev, error: wrapError('DRIVER_ERROR', `${this.name}: callback of queue ${s.name}`, e) });
              }
            };
      return Object.freeze({ name: s.name, ...(callback ? { callback } : {}), ...(s.size !== undefined ? { size: s.size } : {}) });
    });
    if ((this.status & S.FAILED) !== 0) throw new VirtioError('DEVICE_FAILED', `${this.name}: findVqs on a FAILED device; reset it first`);
    if ((this.status & S.FEATURES_OK) === 0) throw new VirtioError('BAD_STATE', `${this.name}: findVqs before FEATURES_OK (§3.1.1 step 7 follows step 5)`);
    if ((this.status & S.DRIVER_OK) !== 0) throw new VirtioError('BAD_STATE', `${this.name}: findVqs after DRIVER_OK (§3.1.1 step 7 precedes step 8)`);
    if (this.vqs !== undefined) throw new VirtioError('BAD_STATE', `${this.name}: queues exist; delVqs first`);
    const ring = Object.freeze({ eventIdx: this.hasBit(VIRTIO_F.EVENT_IDX), indirect: this.hasBit(VIRTIO_F.INDIRECT_DESC) });
    const vqs = await this.call('findVqs', () => this.ops.findVqs(wrapped, ring));
    const bad = checkVqs(vqs, wrapped, ring);
    if (bad !== undefined) {
      try {
        await this.call('delVqs', () => this.ops.delVqs());
      } catch {
        // The findVqs answer is the error worth reporting.
      }
      throw new VirtioError('TRANSPORT', `${this.name}: findVqs answered ${bad}`);
    }
    this.vqs = vqs;
    return vqs;
  }

  async delVqs(): Promise<void> {
    this.checkRegistered();
    if (this.vqs === undefined) return;
    if ((this.status & S.DRIVER_OK) !== 0 && (this.status & S.FAILED) === 0) {
      throw new VirtioError('BAD_STATE', `${this.name}: delVqs on a live device; reset it first`);
    }
    await this.call('delVqs', () => this.ops.delVqs());
    this.vqs = undefined;
  }

  async readConfigInto(offset: number, dst: Uint8Array): Promise<void> {
    const link = this.checkRegistered();
    checkConfigRange(offset, dst, 'dst');
    const gen = this.ops.generation;
    if (gen === undefined) {
      await this.call('getConfig', () => this.ops.getConfig(offset, dst));
      return;
    }
    // Linux virtio_cread_bytes: read the generation around the copy, retry until it held
    // still (§2.5.1) — but bounded, since the device is not trusted.
    const tries = link.configReadRetries;
    for (let i = 0; i < tries; i++) {
      const before = await this.readGeneration();
      await this.call('getConfig', () => this.ops.getConfig(offset, dst));
      const after = await this.readGeneration();
      if (before === after) return;
    }
    throw new VirtioError('CONFIG_UNSTABLE', `${this.name}: configuration generation changed during each of ${tries} reads (§2.5.1)`);
  }

  private async readGeneration(): Promise<number> {
    const g = await this.call('generation', () => this.ops.generation!());
    if (typeof g !== 'number' || !Number.isFinite(g)) throw new VirtioError('TRANSPORT', `${this.name}: generation answered ${String(g)}`);
    return g;
  }

  async writeConfig(offset: number, src: Uint8Array): Promise<void> {
    this.checkRegistered();
    checkConfigRange(offset, src, 'src');
    if ((this.status & S.FAILED) !== 0) throw new VirtioError('DEVICE_FAILED', `${this.name}: config write on a FAILED device`);
    if ((this.status & S.FEATURES_OK) === 0) {
      throw new VirtioError('BAD_STATE', `${this.name}: config write before FEATURES_OK (§3.1.1 step 4: the driver MUST NOT write it yet)`);
    }
    await this.call('setConfig', () => this.ops.setConfig(offset, src));
  }

  async allocBuffer(size: number): Promise<VirtioBuffer> {
    this.checkRegistered();
    if (typeof size !== 'number') throw new TypeError(`size must be a number, got ${typeof size}`);
    if (!Number.isInteger(size) || size < 1 || size > 0xffffffff) throw new RangeError(`size must be an integer in 1..2^32-1, got ${size}`);
    const alloc = this.ops.allocBuffer;
    if (alloc !== undefined) {
      const buf = await this.call(`allocBuffer(${size})`, () => this.ops.allocBuffer!(size));
      const bad = checkBuffer(buf, size);
      if (bad !== undefined || this.buffers.has(buf.addr)) {
        throw new VirtioError('TRANSPORT', `${this.name}: allocBuffer(${size}) answered ${bad ?? `0x${buf.addr.toString(16)}, which is already live`}`);
      }
      this.buffers.set(buf.addr, buf);
      return buf;
    }
    const pool = this.pool!;
    const region = this.ops.dmaRegion!;
    const addr = pool.alloc(size);
    if (addr < 0) {
      throw new VirtioError('NO_BUFFER_SPACE', `${this.name}: no ${size}-byte block in the DMA region (${pool.avail} of ${pool.size} bytes free)`);
    }
    const view = region.memory.view!(addr, size);
    if (!(view instanceof Uint8Array) || view.length !== size) {
      pool.free(addr);
      throw new VirtioError('TRANSPORT', `${this.name}: dmaRegion.memory gave no view of 0x${addr.toString(16)}+${size}`);
    }
    const buf: VirtioBuffer = Object.freeze({ addr, size, view });
    this.buffers.set(addr, buf);
    return buf;
  }

  async freeBuffer(buf: VirtioBuffer): Promise<void> {
    this.checkRegistered();
    if (typeof buf !== 'object' || buf === null) throw new TypeError('buf must be a VirtioBuffer');
    const live = this.buffers.get(buf.addr);
    if (live === undefined || live.size !== buf.size) {
      throw new VirtioError('BAD_BUFFER', `${this.name}: buffer 0x${Number(buf.addr).toString(16)} was not allocated by this device or was already freed`);
    }
    this.buffers.delete(live.addr);
    if (this.ops.allocBuffer !== undefined) await this.call('freeBuffer', () => this.ops.freeBuffer!(live));
    else this.pool!.free(live.addr);
  }

  /** Frees every buffer still live (device-managed, like Linux devres). */
  async freeAllBuffers(): Promise<void> {
    const live = [...this.buffers.values()];
    this.buffers.clear();
    if (this.ops.allocBuffer === undefined) {
      this.pool?.reset();
      return;
    }
    for (const b of live) {
      try {
        await this.call('freeBuffer', () => this.ops.freeBuffer!(b));
      } catch (e) {
        this.reportError(e, 'freeBuffer during teardown');
      }
    }
  }
}

function checkConfigRange(offset: number, buf: Uint8Array, name: string): void {
  if (typeof offset !== 'number') throw new TypeError(`offset must be a number, got ${typeof offset}`);
  if (!(buf instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  if (!Number.isInteger(offset) || offset < 0 || offset + buf.length > 0xffffffff) {
    throw new RangeError(`offset must be an integer with offset + ${name}.length <= 2^32-1, got ${offset}`);
  }
}

function checkVqs(vqs: unknown, specs: readonly VirtqueueSpec[], ring: { eventIdx: boolean }): string | undefined {
  if (!Array.isArray(vqs)) return `${typeof vqs}, not an array`;
  if (vqs.length !== specs.length) return `${vqs.length} queues for ${specs.length} specs`;
  for (let i = 0; i < vqs.length; i++) {
    const vq = vqs[i] as Partial<Virtqueue> | null;
    if (typeof vq !== 'object' || vq === null || typeof vq.interrupt !== 'function' || typeof vq.num !== 'number') return `queue ${i} that is not a Virtqueue`;
    const size = specs[i]!.size;
    if (size !== undefined && vq.num > size) return `queue ${i} of size ${vq.num} for a request of ${size}`;
    if (vq.index !== i) return `queue ${i} with index ${String(vq.index)}`;
    if (vq.eventIdx !== ring.eventIdx) return `queue ${i} with eventIdx ${String(vq.eventIdx)} where ${ring.eventIdx} was negotiated`;
  }
  return undefined;
}

function checkBuffer(buf: unknown, size: number): string | undefined {
  if (typeof buf !== 'object' || buf === null) return String(buf);
  const b = buf as Partial<VirtioBuffer>;
  if (typeof b.addr !== 'number' || !Number.isSafeInteger(b.addr) || b.addr < 0) return `addr ${String(b.addr)}`;
  if (b.addr % VIRTIO_BUFFER_ALIGN !== 0) return `addr 0x${b.addr.toString(16)}, not ${VIRTIO_BUFFER_ALIGN}-byte aligned`;
  if (b.size !== size) return `size ${String(b.size)}`;
  if (!(b.view instanceof Uint8Array) || b.view.length !== size) return 'a view that is not a Uint8Array of the size asked';
  return undefined;
}

const cores = new WeakMap<VirtioDevice, DeviceCore>();

/** @internal */
export function coreOf(dev: VirtioDevice): DeviceCore | undefined {
  return cores.get(dev);
}

/**
 * A virtio device (Linux `struct virtio_device`): what a transport creates for each
 * device it finds and registers on a {@link VirtioBus}, and what a driver gets in probe.
 *
 * The bus runs the VIRTIO §3.1 initialisation and tracks the status; the methods here
 * are the driver's view (Linux `virtio_*` helpers and `vdev->config->*` calls), each
 * checked against the status machine. Every method that talks to the transport is
 * async; {@link VirtioDevice.hasFeature} is not, and allocates nothing.
 *
 * @public
 */
export class VirtioDevice {
  readonly #core: DeviceCore;

  constructor(options: VirtioDeviceOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    checkDeviceId(options.id, 'options.id');
    if (typeof options.ops !== 'object' || options.ops === null) throw new TypeError('options.ops must be a VirtioConfigOps object');
    if (options.name !== undefined && typeof options.name !== 'string') throw new TypeError('options.name must be a string');
    this.#core = new DeviceCore(this, options);
    cores.set(this, this.#core);
  }

  /** The device's identity (Linux `vdev->id`). */
  get id(): VirtioDeviceId {
    return this.#core.id;
  }

  /** `virtio<index>` once registered, unless a name was given. */
  get name(): string {
    return this.#core.name;
  }

  /** Index on its bus (Linux `vdev->index`), -1 when not registered. */
  get index(): number {
    return this.#core.index;
  }

  /** The bus it is registered on. */
  get bus(): VirtioBus | undefined {
    return this.#core.link?.bus;
  }

  /** The driver bound to it. */
  get driver(): VirtioDriver | undefined {
    return this.#core.driver;
  }

  /** The status the driver side last wrote ({@link VIRTIO_CONFIG_S} bits). */
  get status(): number {
    return this.#core.status;
  }

  /** The features the device offered when last read. */
  get deviceFeatures(): bigint {
    return this.#core.offered;
  }

  /** The negotiated features (Linux `vdev->features`): always ⊆ {@link VirtioDevice.deviceFeatures}. */
  get features(): bigint {
    return this.#core.features;
  }

  /** The queues made by {@link VirtioDevice.findVqs}, until {@link VirtioDevice.delVqs}. */
  get vqs(): readonly Virtqueue[] | undefined {
    return this.#core.vqs;
  }

  /** Why the last probe failed, or why the device was given up on. */
  get lastError(): VirtioError | undefined {
    return this.#core.lastError;
  }

  /**
   * True when feature `bit` (0–63) was negotiated (Linux `virtio_has_feature`). Reads
   * two cached 32-bit words: no BigInt, no allocation.
   */
  hasFeature(bit: number): boolean {
    if ((bit | 0) !== bit || bit < 0 || bit > 63) throw new RangeError(`bit must be a feature bit in 0..63, got ${bit}`);
    return this.#core.hasBit(bit);
  }

  /**
   * In {@link VirtioDriver.validate} only: accept a feature bit the driver did not list.
   * Throws `FEATURES_NOT_OFFERED` when the device did not offer it (a driver can never
   * accept such a bit, §2.2.1), `BAD_STATE` outside validate.
   */
  acceptFeature(bit: number): void {
    this.#core.acceptFeature(bit);
  }

  /** In {@link VirtioDriver.validate} only: do not accept a feature bit (Linux `__virtio_clear_bit`). */
  dropFeature(bit: number): void {
    this.#core.dropFeature(bit);
  }

  /**
   * Sets one status bit (Linux `virtio_add_status`), checked by
   * {@link checkStatusTransition} and refused with a typed error when illegal. The bus
   * sets every bit of the §3.1 sequence itself; drivers need only
   * {@link VirtioDevice.ready}.
   */
  async addStatus(bit: number): Promise<void> {
    if (typeof bit !== 'number') throw new TypeError(`bit must be a number, got ${typeof bit}`);
    const ok = bit === S.ACKNOWLEDGE || bit === S.DRIVER || bit === S.FEATURES_OK || bit === S.DRIVER_OK || bit === S.FAILED;
    if (!ok) {
      if (bit === S.NEEDS_RESET) throw new VirtioError('BAD_STATUS_TRANSITION', `${this.name}: DEVICE_NEEDS_RESET is set by the device only (§2.1.2)`);
      throw new RangeError(`bit must be one VIRTIO_CONFIG_S bit the driver sets (1, 2, 4, 8 or 128), got ${bit}`);
    }
    await this.#core.addStatus(bit);
  }

  /** Sets DRIVER_OK (Linux `virtio_device_ready`): call it in probe before kicking a queue. */
  async ready(): Promise<void> {
    await this.#core.addStatus(S.DRIVER_OK);
  }

  /**
   * Resets the device (Linux `virtio_reset_device`) and checks it reads status 0. The
   * queues stay until {@link VirtioDevice.delVqs}; reclaim their buffers with
   * `detachUnusedBuf` first.
   */
  async reset(): Promise<void> {
    this.#core.checkRegistered();
    await this.#core.reset();
  }

  /** Reads the device status byte from the device, including DEVICE_NEEDS_RESET. */
  async readStatus(): Promise<number> {
    return this.#core.readStatus();
  }

  /**
   * Creates the device's virtqueues (Linux `virtio_find_vqs`), after FEATURES_OK and
   * before DRIVER_OK, with the negotiated EVENT_IDX and INDIRECT_DESC.
   */
  async findVqs<T = unknown>(specs: readonly VirtqueueSpec[]): Promise<Array<Virtqueue<T>>> {
    return (await this.#core.findVqs(specs)) as Array<Virtqueue<T>>;
  }

  /** Deletes the queues (Linux `vdev->config->del_vqs`) after a reset or FAILED. */
  async delVqs(): Promise<void> {
    await this.#core.delVqs();
  }

  /**
   * Reads `dst.length` bytes of configuration space at `offset` (Linux
   * `virtio_cread_bytes`), retried until the generation counter is stable; throws
   * `CONFIG_UNSTABLE` after the bus's `configReadRetries` attempts.
   */
  async readConfigInto(offset: number, dst: Uint8Array): Promise<Uint8Array> {
    await this.#core.readConfigInto(offset, dst);
    return dst;
  }

  /** Reads `length` bytes of configuration space at `offset` into a new array. */
  async readConfig(offset: number, length: number): Promise<Uint8Array> {
    if (typeof length !== 'number') throw new TypeError(`length must be a number, got ${typeof length}`);
    if (!Number.isInteger(length) || length < 0 || length > 0xffffffff) throw new RangeError(`length must be an integer in 0..2^32-1, got ${length}`);
    return this.readConfigInto(offset, new Uint8Array(length));
  }

  /** Writes `src` into configuration space at `offset`; only after FEATURES_OK (§3.1.1 step 4). */
  async writeConfig(offset: number, src: Uint8Array): Promise<void> {
    await this.#core.writeConfig(offset, src);
  }

  /** Reads a u8 config field (Linux `virtio_cread8`). */
  async readConfig8(offset: number): Promise<number> {
    return (await this.readConfig(offset, 1))[0]!;
  }

  /** Reads a little-endian u16 config field (Linux `virtio_cread16`; LE per §2.5). */
  async readConfig16(offset: number): Promise<number> {
    const b = await this.readConfig(offset, 2);
    return b[0]! | (b[1]! << 8);
  }

  /** Reads a little-endian u32 config field (Linux `virtio_cread32`). */
  async readConfig32(offset: number): Promise<number> {
    const b = await this.readConfig(offset, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  /**
   * Reads a little-endian u64 config field as a bigint (Linux `virtio_cread64`): all 8
   * bytes under one stable generation.
   */
  async readConfig64(offset: number): Promise<bigint> {
    const b = await this.readConfig(offset, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  /** Writes a u8 config field (Linux `virtio_cwrite8`). */
  async writeConfig8(offset: number, value: number): Promise<void> {
    await this.writeConfig(offset, leBytes(value, 1));
  }

  /** Writes a little-endian u16 config field (Linux `virtio_cwrite16`). */
  async writeConfig16(offset: number, value: number): Promise<void> {
    await this.writeConfig(offset, leBytes(value, 2));
  }

  /** Writes a little-endian u32 config field (Linux `virtio_cwrite32`). */
  async writeConfig32(offset: number, value: number): Promise<void> {
    await this.writeConfig(offset, leBytes(value, 4));
  }

  /** Writes a little-endian u64 config field from a bigint (Linux `virtio_cwrite64`). */
  async writeConfig64(offset: number, value: bigint): Promise<void> {
    if (typeof value !== 'bigint') throw new TypeError(`value must be a bigint, got ${typeof value}`);
    if (value < 0n || value >= 1n << 64n) throw new RangeError('value must be in [0, 2^64)');
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value, true);
    await this.writeConfig(offset, b);
  }

  /**
   * A buffer the device can reach (RFC patch 12 `virtio_alloc_buffer`): from the
   * transport's {@link VirtioConfigOps.allocBuffer}, or else first fit from its
   * {@link VirtioConfigOps.dmaRegion}. 16-byte aligned. Throws `NO_BUFFER_SPACE` when
   * the region is exhausted. Buffers still live when the driver is removed are freed
   * by core.
   */
  async allocBuffer(size: number): Promise<VirtioBuffer> {
    return this.#core.allocBuffer(size);
  }

  /** Frees a buffer from {@link VirtioDevice.allocBuffer}; `BAD_BUFFER` on a double free. */
  async freeBuffer(buf: VirtioBuffer): Promise<void> {
    await this.#core.freeBuffer(buf);
  }

  /**
   * For transports: the device raised a configuration-change interrupt (Linux
   * `virtio_config_changed`). Core re-reads the status; on DEVICE_NEEDS_RESET it
   * removes the driver, resets the device and probes again, otherwise it calls the
   * driver's `configChanged`. Handled after any lifecycle step in progress (as Linux
   * defers it during probe). The promise never rejects: failures go to the bus's
   * `onEvent`.
   */
  notifyConfigChanged(): Promise<void> {
    const link = this.#core.link;
    if (link === undefined) return Promise.resolve();
    return link.configChanged(this.#core);
  }
}

function leBytes(value: number, n: 1 | 2 | 4): Uint8Array {
  if (typeof value !== 'number') throw new TypeError(`value must be a number, got ${typeof value}`);
  const max = n === 4 ? 0xffffffff : n === 2 ? 0xffff : 0xff;
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`value must be an integer in 0..${max}, got ${value}`);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (value >>> (8 * i)) & 0xff;
  return b;
}
