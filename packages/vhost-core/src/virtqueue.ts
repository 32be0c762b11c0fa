import {
  VIRTIO_RING_F,
  VIRTQUEUE_MAX_SIZE,
  VringIov,
  Vringh,
  availRingSize,
  descTableSize,
  isVringError,
  usedRingSize,
  validateLayout,
  type GuestMemory,
  type SplitRingLayout,
} from '@x/vring';
import type { VhostVqCallback } from './config-ops.js';
import type { VhostDevice } from './device.js';
import { VhostError } from './errors.js';
import { isThenable } from './internal/mutex.js';

/** Options of {@link VhostVirtqueue}; a transport fills them in its `createVqs`. @public */
export interface VhostVirtqueueOptions {
  /** The device the queue belongs to. */
  device: VhostDevice;
  /** Queue index on the device (its position in createVqs). */
  index: number;
  /** Queue size the device publishes: a power of two ≤ 32768. */
  num: number;
  /** Queue name. Default `vq<index>`. */
  name?: string;
  /** Run when the peer kicks (RFC `vq->callback`). */
  callback?: VhostVqCallback;
  /**
   * Raises the used-buffer interrupt to the peer (RFC `vq->notify`: an MSI, an NTB
   * doorbell, …). Core calls it only when the ring says the peer wants one. Return
   * false when it could not be delivered.
   */
  notify: (vq: VhostVirtqueue) => boolean | void;
}

/** Counters of one {@link VhostVirtqueue}. @public */
export interface VhostVirtqueueStats {
  /** Kicks (available-buffer notifications) the transport reported. */
  kicks: number;
  /** Kicks that arrived before DRIVER_OK, after a reset or with no ring, and were ignored. */
  kicksIgnored: number;
  /** Callback runs. */
  callbacks: number;
  /** Callback runs that threw or rejected (the error is in {@link VhostVirtqueue.lastError}). */
  callbackErrors: number;
  /** Chains taken by getBuf / getInbuf / getOutbuf. */
  buffers: number;
  /** Chains returned by putBuf / putBufs. */
  completed: number;
  /** Used-buffer interrupts raised to the peer. */
  interrupts: number;
  /** notify() calls the ring said the peer did not want (§2.7.7 suppression). */
  interruptsSuppressed: number;
}

/** How many times kicked() re-runs a callback for kicks that arrived while it ran. */
const MAX_CALLBACK_RERUNS = 64;

let startVq: (vq: VhostVirtqueue) => void;
let stopVq: (vq: VhostVirtqueue, detach: boolean) => void;

/**
 * One queue of a vhost device (the RFC's `struct vhost_virtqueue` with its vringh,
 * patch 5): the device half of a split ring the peer owns, reached through whatever
 * memory the transport provides.
 *
 * A transport constructs it in `createVqs`, attaches the ring when the peer activates
 * the queue ({@link VhostVirtqueue.attach}), detaches it on deactivation, and reports
 * doorbells with {@link VhostVirtqueue.kicked}. Core enforces the RFC's rule that a
 * vhost device touches no ring before the peer sets DRIVER_OK: until then, and again
 * after a reset or FAILED, every ring access is refused — getters answer "empty"
 * (-1 / false), completions throw `NOT_READY` — and nothing is read from or written
 * to the ring. The ring's feature bits (EVENT_IDX, INDIRECT_DESC) are taken from the
 * features negotiated at FINALIZE_FEATURES when the ring goes live.
 *
 * The data path (get / pull / push / put / notify / kicked) allocates nothing per
 * buffer.
 *
 * @public
 */
export class VhostVirtqueue {
  /** The device the queue belongs to. */
  readonly device: VhostDevice;
  /** Queue index on the device. */
  readonly index: number;
  /** Queue name. */
  readonly name: string;
  /** Queue size the device publishes; the peer's ring may be smaller. */
  readonly num: number;
  /** Counters. */
  readonly stats: VhostVirtqueueStats = {
    kicks: 0,
    kicksIgnored: 0,
    callbacks: 0,
    callbackErrors: 0,
    buffers: 0,
    completed: 0,
    interrupts: 0,
    interruptsSuppressed: 0,
  };
  /** The last error a callback threw (or a rejected callback promise). */
  lastError: unknown = undefined;

  #callback: VhostVqCallback | undefined;
  readonly #notify: (vq: VhostVirtqueue) => boolean | void;
  /** Set only while the device is ready and a ring is attached: the one hot-path check. */
  #vrh: Vringh | undefined = undefined;
  #memory: GuestMemory | undefined = undefined;
  #layout: SplitRingLayout | undefined = undefined;
  #lostBy: unknown = undefined;
  #cbEnabled = true;
  #inCallback = false;
  #rerun = false;
  /** Receives the segments getInbuf / getOutbuf do not expect, so they can be refused. */
  readonly #scratch: VringIov;

  static {
    startVq = (vq) => vq.#start();
    stopVq = (vq, detach) => vq.#stop(detach);
  }

  constructor(options: VhostVirtqueueOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { device, index, num, name, callback, notify } = options;
    if (typeof device !== 'object' || device === null) throw new TypeError('options.device must be a VhostDevice');
    if (typeof index !== 'number') throw new TypeError(`options.index must be a number, got ${typeof index}`);
    if (!Number.isInteger(index) || index < 0 || index > 0xffff) throw new RangeError(`options.index must be an integer in 0..65535, got ${index}`);
    if (typeof num !== 'number') throw new TypeError(`options.num must be a number, got ${typeof num}`);
    if (!isQueueSize(num)) throw new RangeError(`options.num must be a power of two in 1..${VIRTQUEUE_MAX_SIZE}, got ${num}`);
    if (typeof notify !== 'function') throw new TypeError('options.notify must be a function');
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('options.callback must be a function');
    if (name !== undefined && typeof name !== 'string') throw new TypeError('options.name must be a string');
    this.device = device;
    this.index = index;
    this.num = num;
    this.name = name ?? `vq${index}`;
    this.#callback = callback;
    this.#notify = notify;
    this.#scratch = new VringIov(num);
  }

  /** True when the transport attached a ring (the peer activated the queue). */
  get isAttached(): boolean {
    return this.#layout !== undefined;
  }

  /** True when ring access is allowed: the device is ready (DRIVER_OK) and a ring is attached. */
  get isReady(): boolean {
    return this.#vrh !== undefined;
  }

  /** The live device half of the ring, or undefined when not ready. */
  get vringh(): Vringh | undefined {
    return this.#vrh;
  }

  /** The attached ring's layout in the device's bus addresses, or undefined. */
  get layout(): SplitRingLayout | undefined {
    return this.#layout;
  }

  /** Replaces the callback (RFC `vq->callback`). */
  setCallback(callback: VhostVqCallback | undefined): void {
    if (callback !== undefined && typeof callback !== 'function') throw new TypeError('callback must be a function');
    this.#callback = callback;
  }

  // ---- transport side ---------------------------------------------------------------

  /**
   * Attaches the ring the peer activated (the RFC's ACTIVATE: `vringh_init_mmio` over the
   * mapped window). `memory` is the device's view of the peer's memory and `layout` the
   * ring in those addresses; `layout.num` may be smaller than {@link VhostVirtqueue.num}.
   * Nothing in the ring is read or written here; the ring goes live at DRIVER_OK (or now,
   * if the device is already ready). Throws `BUSY` when a ring is attached,
   * `RING_ERROR` for a layout that breaks §2.7, `BUS_ERROR` when the memory does not
   * hold the whole ring.
   */
  attach(memory: GuestMemory, layout: SplitRingLayout): void {
    if (typeof memory !== 'object' || memory === null || typeof memory.contains !== 'function') {
      throw new TypeError('memory must be a GuestMemory');
    }
    if (this.#layout !== undefined) throw new VhostError('BUSY', `${this.name}: a ring is already attached; detach it first`);
    let l: SplitRingLayout;
    try {
      l = validateLayout(layout);
    } catch (e) {
      throw new VhostError('RING_ERROR', `${this.name}: ${(e as Error).message}`, { cause: e });
    }
    if (l.num > this.num) {
      throw new VhostError('RING_ERROR', `${this.name}: the peer's ring has ${l.num} entries, more than the ${this.num} the device published`);
    }
    const parts: Array<[string, number, number]> = [
      ['descriptor table', l.desc, descTableSize(l.num)],
      ['available ring', l.avail, availRingSize(l.num)],
      ['used ring', l.used, usedRingSize(l.num)],
    ];
    for (const [what, addr, len] of parts) {
      if (!memory.contains(addr, len)) {
        throw new VhostError('BUS_ERROR', `${this.name}: the ${what} at 0x${addr.toString(16)}+${len} is outside the memory the device can reach`);
      }
    }
    this.#memory = memory;
    this.#layout = l;
    this.#lostBy = undefined;
    if (this.device.isReady) this.#start();
  }

  /**
   * Detaches the ring (the peer deactivated the queue); the queue goes quiet. A
   * transport that loses its link gives the `reason` (its link-down error): drivers
   * read it as {@link VhostVirtqueue.lostBy} to fail pending work with it.
   */
  detach(reason?: unknown): void {
    if (reason !== undefined) this.#lostBy = reason;
    this.#stop(true);
  }

  /**
   * Why the ring was taken away, when its transport lost the link (the `reason` given
   * to {@link VhostVirtqueue.detach}); undefined after an orderly detach, and cleared
   * when a ring is attached again.
   */
  get lostBy(): unknown {
    return this.#lostBy;
  }

  /**
   * The peer rang this queue's doorbell (RFC `vhost_virtqueue_callback`): runs the
   * callback when the device is ready and callbacks are enabled. Kicks before DRIVER_OK
   * or with no ring are counted and ignored (VIRTIO 1.2 §3.1.1: no notifications before
   * DRIVER_OK). A kick that arrives while the callback runs makes it run once more.
   */
  kicked(): void {
    this.stats.kicks++;
    if (this.#vrh === undefined) {
      this.stats.kicksIgnored++;
      return;
    }
    const cb = this.#callback;
    if (!this.#cbEnabled || cb === undefined) return;
    if (this.#inCallback) {
      this.#rerun = true;
      return;
    }
    this.#inCallback = true;
    try {
      let rounds = 0;
      do {
        this.#rerun = false;
        this.stats.callbacks++;
        try {
          const r: unknown = cb(this);
          if (isThenable(r)) r.then(undefined, (e: unknown) => this.#callbackFailed(e));
        } catch (e) {
          this.#callbackFailed(e);
        }
      } while (this.#rerun && ++rounds < MAX_CALLBACK_RERUNS && this.#vrh !== undefined && this.#cbEnabled);
    } finally {
      this.#inCallback = false;
      this.#rerun = false;
    }
  }

  #callbackFailed(e: unknown): void {
    this.stats.callbackErrors++;
    this.lastError = e;
  }

  // ---- driver side ------------------------------------------------------------------

  /**
   * Takes the next chain, readable segments into `riov` and writable ones into `wiov`
   * (Linux `vringh_getdesc`). Returns its head, or -1 when the ring is empty or not
   * ready. A malformed chain throws `RING_ERROR` (cause: the `VringError`) and stays in
   * the ring.
   */
  getBuf(riov: VringIov, wiov: VringIov): number {
    const v = this.#vrh;
    if (v === undefined) return -1;
    let head: number;
    try {
      head = v.getDesc(riov, wiov);
    } catch (e) {
      throw this.#ringError(e);
    }
    if (head >= 0) this.stats.buffers++;
    return head;
  }

  /**
   * Takes the next chain of data from the peer, device-readable only (RFC
   * `vhost_virtqueue_get_inbuf`), into `riov`. Returns its head, or -1 when empty or not
   * ready. A chain with writable segments throws `WRONG_DIRECTION` and stays in the ring.
   */
  getInbuf(riov: VringIov): number {
    return this.#getOneWay(riov, this.#scratch, 'device-writable');
  }

  /**
   * Takes the next buffer for data to the peer, device-writable only (RFC
   * `vhost_virtqueue_get_outbuf`), into `wiov`. Returns its head, or -1 when empty or
   * not ready. A chain with readable segments throws `WRONG_DIRECTION` and stays in the
   * ring.
   */
  getOutbuf(wiov: VringIov): number {
    return this.#getOneWay(this.#scratch, wiov, 'device-readable');
  }

  #getOneWay(riov: VringIov, wiov: VringIov, unexpected: string): number {
    const v = this.#vrh;
    if (v === undefined) return -1;
    let head: number;
    try {
      head = v.getDesc(riov, wiov);
    } catch (e) {
      throw this.#ringError(e);
    }
    if (head < 0) return -1;
    if (this.#scratch.count !== 0) {
      v.abandon(1);
      throw new VhostError('WRONG_DIRECTION', `${this.name}: chain ${head} has ${this.#scratch.count} ${unexpected} segment(s)`);
    }
    this.stats.buffers++;
    return head;
  }

  #ringError(e: unknown): VhostError {
    if (isVringError(e, 'BUS_ERROR')) return new VhostError('BUS_ERROR', `${this.name}: ${e.message}`, { cause: e });
    if (isVringError(e)) return new VhostError('RING_ERROR', `${this.name}: ${e.message}`, { cause: e });
    return e as VhostError;
  }

  #notReady(what: string): VhostError {
    return new VhostError('NOT_READY', `${this.name}: ${what} before DRIVER_OK, after a reset, or with no ring attached`);
  }

  /** Copies from `riov`'s readable segments at its cursor into `dst`; returns the bytes copied. Throws `NOT_READY`. */
  pull(riov: VringIov, dst: Uint8Array, dstOffset?: number, length?: number): number {
    const v = this.#vrh;
    if (v === undefined) throw this.#notReady('pull');
    try {
      return v.pull(riov, dst, dstOffset, length);
    } catch (e) {
      throw this.#ringError(e);
    }
  }

  /** Copies `src` into `wiov`'s writable segments at its cursor; returns the bytes copied. Throws `NOT_READY`. */
  push(wiov: VringIov, src: Uint8Array, srcOffset?: number, length?: number): number {
    const v = this.#vrh;
    if (v === undefined) throw this.#notReady('push');
    try {
      return v.push(wiov, src, srcOffset, length);
    } catch (e) {
      throw this.#ringError(e);
    }
  }

  /**
   * Returns a chain to the peer with `len` bytes written (RFC `vhost_virtqueue_put_buf`,
   * `vringh_complete`). Throws `NOT_READY` when the ring is not live — in particular for
   * a head taken before a reset.
   */
  putBuf(head: number, len: number): void {
    const v = this.#vrh;
    if (v === undefined) throw this.#notReady('putBuf');
    if (!Number.isInteger(head) || head < 0 || head >= v.num) throw new RangeError(`head must be an integer in 0..${v.num - 1}, got ${head}`);
    if (!Number.isInteger(len) || len < 0 || len > 0xffffffff) throw new RangeError(`len must be a u32, got ${len}`);
    v.complete(head, len);
    this.stats.completed++;
  }

  /** Returns `count` chains with one used-index update (Linux `vringh_complete_multi`). Throws `NOT_READY`. */
  putBufs(heads: ArrayLike<number>, lens: ArrayLike<number>, count: number = heads.length): void {
    const v = this.#vrh;
    if (v === undefined) throw this.#notReady('putBufs');
    // Check everything before writing anything: a half-written batch must never be published.
    if (!Number.isInteger(count) || count < 0 || count > heads.length || count > lens.length) {
      throw new RangeError(`count must be an integer in 0..min(heads.length, lens.length), got ${count}`);
    }
    for (let k = 0; k < count; k++) {
      const head = heads[k]!;
      const len = lens[k]!;
      if (!Number.isInteger(head) || head < 0 || head >= v.num) throw new RangeError(`heads[${k}] must be an integer in 0..${v.num - 1}, got ${head}`);
      if (!Number.isInteger(len) || len < 0 || len > 0xffffffff) throw new RangeError(`lens[${k}] must be a u32, got ${len}`);
    }
    v.completeMany(heads, lens, count);
    this.stats.completed += count;
  }

  /** True when the peer published chains not yet taken; false when empty or not ready. */
  hasAvail(): boolean {
    const v = this.#vrh;
    return v !== undefined && v.hasAvail();
  }

  /**
   * Enables the callback and asks the peer for kicks again (RFC
   * `vhost_virtqueue_enable_cb`, `vringh_notify_enable`). Returns true when the ring is
   * still empty, so it is safe to wait for a kick; false when chains arrived meanwhile
   * and must be processed now. Not ready: enables the callback, writes nothing, true.
   */
  enableCb(): boolean {
    this.#cbEnabled = true;
    const v = this.#vrh;
    if (v === undefined) return true;
    return v.notifyEnable();
  }

  /**
   * Disables the callback and asks the peer not to kick (RFC
   * `vhost_virtqueue_disable_cb`, `vringh_notify_disable`). Not ready: writes nothing.
   */
  disableCb(): void {
    this.#cbEnabled = false;
    this.#vrh?.notifyDisable();
  }

  /**
   * Raises the used-buffer interrupt if the peer wants one for what was completed since
   * the last call (RFC `vhost_virtqueue_kick`: `vringh_need_notify`, then
   * `vhost_virtqueue_notify`). Returns true when an interrupt was raised.
   */
  notify(): boolean {
    const v = this.#vrh;
    if (v === undefined) return false;
    if (!v.needNotify()) {
      this.stats.interruptsSuppressed++;
      return false;
    }
    this.stats.interrupts++;
    return this.#notify(this) !== false;
  }

  #start(): void {
    if (this.#layout === undefined || this.#vrh !== undefined) return;
    this.#vrh = new Vringh({
      memory: this.#memory!,
      layout: this.#layout,
      eventIdx: this.device.hasFeature(VIRTIO_RING_F.EVENT_IDX),
      indirect: this.device.hasFeature(VIRTIO_RING_F.INDIRECT_DESC),
    });
    this.#cbEnabled = true;
  }

  #stop(detach: boolean): void {
    this.#vrh = undefined;
    if (detach) {
      this.#memory = undefined;
      this.#layout = undefined;
    }
  }
}

function isQueueSize(num: number): boolean {
  return Number.isInteger(num) && num >= 1 && num <= VIRTQUEUE_MAX_SIZE && (num & (num - 1)) === 0;
}

/** Lets the device start a queue's ring at DRIVER_OK. @internal */
export function vqStart(vq: VhostVirtqueue): void {
  startVq(vq);
}

/** Lets the device stop a queue's ring (and drop its attachment on reset). @internal */
export function vqStop(vq: VhostVirtqueue, detach: boolean): void {
  stopVq(vq, detach);
}

/** True for a power of two in 1..32768. @internal */
export { isQueueSize };
