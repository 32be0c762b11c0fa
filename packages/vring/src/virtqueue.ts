import { VringError } from './errors.js';
import { checkBusAddr, type GuestMemory } from './memory.js';
import { RingAccess } from './internal/ring-access.js';
import {
  VIRTQ_DESC,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_USED_F_NO_NOTIFY,
  layoutSpan,
  validateLayout,
  vringNeedEvent,
  type SplitRingLayout,
} from './layout.js';

/** Argument check of one segment: TypeError for a non-number, RangeError for a bad value. */
function checkSegment(addr: number, len: number, what: string): void {
  // One branch on the hot path: `len >>> 0 === len` holds only for an integer in [0, 2^32 − 1].
  if (typeof addr === 'number' && addr >= 0 && addr <= Number.MAX_SAFE_INTEGER && Math.floor(addr) === addr && len >>> 0 === len) return;
  if (typeof addr !== 'number' || typeof len !== 'number') throw new TypeError(`${what}: addr and len must be numbers`);
  throw new RangeError(`${what}: ${addr}+${len} is not an integer address ≤ 2^53-1 with an integer length ≤ 2^32-1`);
}

/** One scatter-gather segment: a bus address and a length. @public */
export interface VringSg {
  /** Bus address of the segment (as the device will see it). */
  readonly addr: number;
  /** Length in bytes (≤ 2^32 − 1). */
  readonly len: number;
}

/** Options of {@link Virtqueue}. @public */
export interface VirtqueueOptions {
  /** The memory holding the ring, as the driver sees it. */
  memory: GuestMemory;
  /** Where the ring lives. */
  layout: SplitRingLayout;
  /** Queue index on its device (used in names and by transports). Default 0. */
  index?: number;
  /** Queue name, for traces and errors. */
  name?: string;
  /** VIRTIO_RING_F_EVENT_IDX was negotiated. Default false. */
  eventIdx?: boolean;
  /**
   * VIRTIO_RING_F_INDIRECT_DESC was negotiated and buffers of more than one segment
   * should use indirect tables. The driver needs memory for the tables: one table of
   * `maxSegments` descriptors per queue entry, at `area` (16-byte aligned, size
   * `num · maxSegments · 16`), which must be reachable by the device at the same
   * addresses.
   */
  indirect?: { area: number; maxSegments: number };
  /**
   * Sends an available-buffer notification to the device (the transport's doorbell).
   * Return false if the notification could not be delivered; the queue is then broken.
   */
  notify?: (vq: Virtqueue) => boolean | void;
  /** Called from {@link Virtqueue.interrupt} when used buffers are pending. */
  callback?: (vq: Virtqueue) => void;
}

/** Counters of one {@link Virtqueue}. @public */
export interface VirtqueueStats {
  /** Buffers added. */
  added: number;
  /** Buffers returned by getBuf. */
  used: number;
  /** kickPrepare calls that asked for a notification. */
  kicks: number;
  /** kickPrepare calls that found the device did not want one. */
  kicksSuppressed: number;
  /** interrupt() calls. */
  interrupts: number;
  /** interrupt() calls that found nothing to do. */
  spuriousInterrupts: number;
}

const NO_TOKEN: undefined = undefined;

/**
 * The driver half of a split virtqueue (Linux `virtio_ring.c`, VIRTIO 1.2 §2.7.13):
 * the side that owns the ring, adds buffers and collects them when used.
 *
 * Buffers become visible to the device when {@link Virtqueue.kickPrepare},
 * {@link Virtqueue.kick} or {@link Virtqueue.publish} runs, so many buffers can be
 * added and published with one index update. The used ring is treated as hostile: an
 * id that is not a buffer in flight, a used index that jumps, or a length larger than
 * the buffer raises a {@link VringError}.
 *
 * Freed descriptors are reused in the order they come back (Linux reuses the last one
 * freed first): with in-order completion each avail slot keeps the same head, so a
 * steady stream rewrites no ring entry and the other side's cached copy stays valid.
 *
 * @public
 */
export class Virtqueue<T = unknown> {
  /** Queue index on its device. */
  readonly index: number;
  /** Queue name. */
  readonly name: string;
  /** Queue size. */
  readonly num: number;
  /** The ring layout. */
  readonly layout: SplitRingLayout;
  /** The memory the ring lives in. */
  readonly memory: GuestMemory;
  /** EVENT_IDX in use. */
  readonly eventIdx: boolean;
  /** Counters. */
  readonly stats: VirtqueueStats = { added: 0, used: 0, kicks: 0, kicksSuppressed: 0, interrupts: 0, spuriousInterrupts: 0 };
  /** Length the device reported for the buffer last returned by {@link Virtqueue.getBuf}. */
  lastLen = 0;
  /** Set when the queue hit an error; every later operation fails with BROKEN. */
  brokenBy: VringError | undefined;

  private readonly ring: RingAccess;
  private readonly mask: number;
  private readonly notifyFn: ((vq: Virtqueue) => boolean | void) | undefined;
  private callbackFn: ((vq: Virtqueue) => void) | undefined;
  private readonly indirectArea: number;
  private readonly indirectMax: number;
  /** Shadow of each descriptor's next (the device may scribble on the table). */
  private readonly nextShadow: Uint16Array;
  /** Descriptors used by each head (1 for indirect). 0 = head not in flight. */
  private readonly chainDescs: Uint16Array;
  /** Writable bytes of each in-flight head, to check used lengths. */
  private readonly writableLen: Float64Array;
  private readonly tokens: Array<T | undefined>;
  private freeHead = 0;
  /** Last descriptor of the free list: freed chains are appended here (FIFO reuse). */
  private freeTail: number;
  private numFreeDescs: number;
  private inFlight = 0;
  private availShadow = 0;
  private numAdded = 0;
  private lastUsed = 0;
  /** used.idx as last read; buffers in [lastUsed, usedShadow) are known used. */
  private usedShadow = 0;
  private availFlagsShadow = 0;
  /** avail.idx before the last publish, for the EVENT_IDX test in kickPrepare. */
  private lastPublishedOld = 0;
  private pendingKickCheck = false;

  constructor(options: VirtqueueOptions) {
    const layout = validateLayout(options.layout);
    this.layout = layout;
    this.memory = options.memory;
    this.num = layout.num;
    this.mask = layout.num - 1;
    this.index = options.index ?? 0;
    this.name = options.name ?? `vq${this.index}`;
    this.eventIdx = options.eventIdx ?? false;
    this.notifyFn = options.notify;
    this.callbackFn = options.callback;
    this.ring = new RingAccess(options.memory, layout);
    if (options.indirect !== undefined) {
      const { area, maxSegments } = options.indirect;
      checkBusAddr('indirect.area', area);
      if (!Number.isInteger(maxSegments) || maxSegments < 2 || maxSegments > 65536) {
        throw new RangeError(`indirect.maxSegments must be an integer in 2..65536, got ${maxSegments}`);
      }
      if (area % VIRTQ_DESC.ALIGN !== 0) throw new RangeError('indirect.area must be 16-byte aligned');
      const bytes = layout.num * maxSegments * VIRTQ_DESC.SIZE;
      if (!options.memory.contains(area, bytes)) throw new RangeError(`indirect.area needs ${bytes} bytes inside the memory`);
      const span = layoutSpan(layout);
      if (area < span.end && span.start < area + bytes) throw new RangeError('indirect.area overlaps the ring');
      this.indirectArea = area;
      this.indirectMax = maxSegments;
    } else {
      this.indirectArea = -1;
      this.indirectMax = 0;
    }
    this.nextShadow = new Uint16Array(this.num);
    for (let i = 0; i < this.num - 1; i++) this.nextShadow[i] = i + 1;
    this.freeTail = this.num - 1;
    this.chainDescs = new Uint16Array(this.num);
    this.writableLen = new Float64Array(this.num);
    this.tokens = new Array<T | undefined>(this.num).fill(NO_TOKEN);
    this.numFreeDescs = this.num;
    this.initRing();
  }

  /** The driver allocates the ring, so it starts it zeroed (§2.7.10.1, Linux vring_init). */
  private initRing(): void {
    this.ring.setAvailFlags(0);
    this.ring.setAvailIdx(0);
    this.ring.setUsedFlags(0);
    this.ring.setUsedIdx(0);
    if (this.eventIdx) {
      this.ring.setUsedEvent(0);
      this.ring.setAvailEvent(0);
    }
  }

  /** Number of free descriptors. */
  get numFree(): number {
    return this.numFreeDescs;
  }

  /** Buffers added and not yet returned by getBuf. */
  get pending(): number {
    return this.inFlight;
  }

  /** True after an error; see {@link Virtqueue.brokenBy}. */
  get isBroken(): boolean {
    return this.brokenBy !== undefined;
  }

  /** Replaces the used-buffer callback. */
  setCallback(cb: ((vq: Virtqueue) => void) | undefined): void {
    this.callbackFn = cb;
  }

  private fail(e: VringError): never {
    if (this.brokenBy === undefined) this.brokenBy = e;
    throw e;
  }

  private checkUsable(token: T): void {
    if (this.brokenBy !== undefined) throw new VringError('BROKEN', `${this.name} is broken`, { cause: this.brokenBy });
    if (token === undefined) throw new TypeError('token must not be undefined');
  }

  /**
   * Adds a buffer of one segment (Linux `virtqueue_add_outbuf` / `virtqueue_add_inbuf`).
   * `writable` marks it device-writable. Returns false when the ring is full.
   */
  addBuf(addr: number, len: number, writable: boolean, token: T): boolean {
    this.checkUsable(token);
    checkSegment(addr, len, 'segment');
    if (this.numFreeDescs === 0) return false;
    const head = this.freeHead;
    this.ring.setDesc(head, addr, len, writable ? VRING_DESC_F.WRITE : 0, 0);
    this.freeHead = this.nextShadow[head]!;
    this.numFreeDescs--;
    this.chainDescs[head] = 1;
    this.writableLen[head] = writable ? len : 0;
    this.finishAdd(head, token);
    return true;
  }

  /** Adds a device-readable buffer of one segment. Returns false when full. */
  addOutbuf(addr: number, len: number, token: T): boolean {
    return this.addBuf(addr, len, false, token);
  }

  /** Adds a device-writable buffer of one segment. Returns false when full. */
  addInbuf(addr: number, len: number, token: T): boolean {
    return this.addBuf(addr, len, true, token);
  }

  /**
   * Adds a buffer of `outNum` device-readable segments followed by `inNum`
   * device-writable ones (Linux `virtqueue_add_sgs`), taken from `sgs` in that order.
   * Uses an indirect table when configured and the buffer has more than one segment.
   * Returns false when there is no room.
   */
  addSgs(sgs: ArrayLike<VringSg>, outNum: number, inNum: number, token: T): boolean {
    this.checkUsable(token);
    const total = outNum + inNum;
    if (!Number.isInteger(outNum) || !Number.isInteger(inNum) || outNum < 0 || inNum < 0 || total === 0) {
      throw new RangeError(`outNum (${outNum}) + inNum (${inNum}) must be a positive count`);
    }
    if (total > sgs.length) throw new RangeError(`sgs has ${sgs.length} segments, ${total} requested`);
    let writable = 0;
    for (let i = 0; i < total; i++) {
      const sg = sgs[i]!;
      checkSegment(sg.addr, sg.len, 'sgs[i]');
      if (i >= outNum) writable += sg.len;
    }
    const useIndirect = this.indirectMax > 0 && total > 1 && total <= this.indirectMax;
    if (useIndirect) {
      if (this.numFreeDescs === 0) return false;
      const head = this.freeHead;
      const table = this.indirectArea + head * this.indirectMax * VIRTQ_DESC.SIZE;
      const mem = this.memory;
      for (let i = 0; i < total; i++) {
        const sg = sgs[i]!;
        const a = table + i * VIRTQ_DESC.SIZE;
        const flags = (i < total - 1 ? VRING_DESC_F.NEXT : 0) | (i >= outNum ? VRING_DESC_F.WRITE : 0);
        mem.write64(a, sg.addr);
        mem.write32(a + VIRTQ_DESC.LEN, sg.len);
        mem.write16(a + VIRTQ_DESC.FLAGS, flags);
        mem.write16(a + VIRTQ_DESC.NEXT, i < total - 1 ? i + 1 : 0);
      }
      this.ring.setDesc(head, table, total * VIRTQ_DESC.SIZE, VRING_DESC_F.INDIRECT, 0);
      this.freeHead = this.nextShadow[head]!;
      this.numFreeDescs--;
      this.chainDescs[head] = 1;
      this.writableLen[head] = writable;
      this.finishAdd(head, token);
      return true;
    }
    if (total > this.numFreeDescs) {
      if (total > this.num) throw new RangeError(`a buffer of ${total} segments cannot fit a queue of ${this.num} without indirect descriptors`);
      return false;
    }
    const head = this.freeHead;
    let i = head;
    for (let n = 0; n < total; n++) {
      const sg = sgs[n]!;
      const next = this.nextShadow[i]!;
      const flags = (n < total - 1 ? VRING_DESC_F.NEXT : 0) | (n >= outNum ? VRING_DESC_F.WRITE : 0);
      this.ring.setDesc(i, sg.addr, sg.len, flags, n < total - 1 ? next : 0);
      i = next;
    }
    this.freeHead = i;
    this.numFreeDescs -= total;
    this.chainDescs[head] = total;
    this.writableLen[head] = writable;
    this.finishAdd(head, token);
    return true;
  }

  private finishAdd(head: number, token: T): void {
    this.tokens[head] = token;
    this.ring.setAvailRing(this.availShadow & this.mask, head);
    this.availShadow = (this.availShadow + 1) & 0xffff;
    this.numAdded++;
    this.inFlight++;
    this.stats.added++;
  }

  /** Makes every added buffer visible to the device (writes avail.idx once). */
  publish(): void {
    if (this.numAdded === 0) return;
    this.ring.setAvailIdx(this.availShadow);
    if (!this.pendingKickCheck) {
      this.lastPublishedOld = (this.availShadow - this.numAdded) & 0xffff;
      this.pendingKickCheck = true;
    }
    this.numAdded = 0;
  }
  /**
   * Publishes added buffers and decides whether the device wants a notification
   * (Linux `virtqueue_kick_prepare`): with EVENT_IDX, when the new avail index passes
   * `avail_event`; without, unless the device set VRING_USED_F_NO_NOTIFY.
   */
  kickPrepare(): boolean {
    if (this.brokenBy !== undefined) return false;
    this.publish();
    if (!this.pendingKickCheck) return false;
    this.pendingKickCheck = false;
    const old = this.lastPublishedOld;
    const neu = this.availShadow;
    // The avail.idx store above is seq-cst (Atomics), which is the full barrier
    // virtio_mb() gives Linux here.
    const need = this.eventIdx
      ? vringNeedEvent(this.ring.availEvent(), neu, old)
      : (this.ring.usedFlags() & VRING_USED_F_NO_NOTIFY) === 0;
    if (need) this.stats.kicks++;
    else this.stats.kicksSuppressed++;
    return need;
  }

  /** Sends the notification (Linux `virtqueue_notify`). False if it could not be sent. */
  notify(): boolean {
    if (this.brokenBy !== undefined) return false;
    if (this.notifyFn === undefined) return true;
    const ok = this.notifyFn(this as Virtqueue);
    if (ok === false) {
      this.brokenBy = new VringError('BROKEN', `${this.name}: notification failed`);
      return false;
    }
    return true;
  }

  /** kickPrepare() then notify() when needed (Linux `virtqueue_kick`). */
  kick(): boolean {
    if (this.kickPrepare()) return this.notify();
    return this.brokenBy === undefined;
  }

  /** True when the device has returned buffers getBuf has not collected. */
  moreUsed(): boolean {
    return this.usedShadow !== this.lastUsed || this.lastUsed !== this.ring.usedIdx();
  }

  /**
   * Returns the token of the next used buffer, or undefined when there is none
   * (Linux `virtqueue_get_buf`). The written length is in {@link Virtqueue.lastLen}.
   */
  getBuf(): T | undefined {
    if (this.brokenBy !== undefined) throw new VringError('BROKEN', `${this.name} is broken`, { cause: this.brokenBy });
    if (this.usedShadow === this.lastUsed) {
      // Re-read used.idx only when the cached value is used up (one acquire load per
      // batch rather than per buffer; the device keeps writing that cache line).
      const usedIdx = this.ring.usedIdx();
      if (usedIdx === this.lastUsed) return undefined;
      if (((usedIdx - this.lastUsed) & 0xffff) > this.inFlight) {
        this.fail(new VringError('USED_IDX_JUMP', `${this.name}: used.idx moved by ${(usedIdx - this.lastUsed) & 0xffff} with ${this.inFlight} buffers in flight`));
      }
      this.usedShadow = usedIdx;
    }
    const slot = this.lastUsed & this.mask;
    const id = this.ring.usedId(slot);
    const len = this.ring.usedLen(slot);
    if (id >= this.num || this.chainDescs[id] === 0) {
      this.fail(new VringError('BAD_USED_ID', `${this.name}: used id ${id} is not a buffer in flight`));
    }
    const token = this.detach(id);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    if (this.eventIdx && (this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT) === 0) {
      this.ring.setUsedEvent(this.lastUsed);
    }
    this.stats.used++;
    if (len > this.writableLen[id]!) {
      this.lastLen = this.writableLen[id]!;
      throw new VringError('USED_LEN_INVALID', `${this.name}: device wrote ${len} bytes into a buffer of ${this.writableLen[id]} writable bytes`, { token });
    }
    this.lastLen = len;
    return token;
  }

  private detach(head: number): T {
    const n = this.chainDescs[head]!;
    let last = head;
    for (let k = 1; k < n; k++) last = this.nextShadow[last]!;
    // Append to the tail: descriptors are reused in the order they come back, so a ring
    // completed in order hands out heads in avail-slot order and the avail and used
    // entries (and often the descriptors) are rewritten with the values they hold.
    if (this.numFreeDescs === 0) this.freeHead = head;
    else this.nextShadow[this.freeTail] = head;
    this.freeTail = last;
    this.numFreeDescs += n;
    this.chainDescs[head] = 0;
    this.inFlight--;
    const token = this.tokens[head] as T;
    this.tokens[head] = NO_TOKEN;
    return token;
  }

  /** Asks the device not to send used-buffer notifications (Linux `virtqueue_disable_cb`). */
  disableCb(): void {
    if ((this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT) !== 0) return;
    this.availFlagsShadow |= VRING_AVAIL_F_NO_INTERRUPT;
    if (this.eventIdx) {
      // Park used_event just behind the device so it does not fire for 2^16 buffers.
      this.ring.setUsedEvent((this.lastUsed - 1) & 0xffff);
    } else {
      this.ring.setAvailFlags(this.availFlagsShadow);
    }
  }

  /**
   * Re-enables used-buffer notifications and returns an opaque value for
   * {@link Virtqueue.poll} (Linux `virtqueue_enable_cb_prepare`).
   */
  enableCbPrepare(): number {
    if ((this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT) !== 0) {
      this.availFlagsShadow &= ~VRING_AVAIL_F_NO_INTERRUPT;
      if (!this.eventIdx) this.ring.setAvailFlags(this.availFlagsShadow);
    }
    if (this.eventIdx) this.ring.setUsedEvent(this.lastUsed);
    return this.lastUsed;
  }

  /** True when buffers were used since `lastUsedIdx` (Linux `virtqueue_poll`). */
  poll(lastUsedIdx: number): boolean {
    return lastUsedIdx !== this.ring.usedIdx();
  }

  /**
   * Re-enables notifications; returns false when used buffers are already pending, so
   * the caller must process them instead of waiting (Linux `virtqueue_enable_cb`).
   */
  enableCb(): boolean {
    return !this.poll(this.enableCbPrepare());
  }

  /**
   * Like enableCb but, with EVENT_IDX, asks for the notification only after about 3/4
   * of the buffers in flight are used (Linux `virtqueue_enable_cb_delayed`).
   */
  enableCbDelayed(): boolean {
    if ((this.availFlagsShadow & VRING_AVAIL_F_NO_INTERRUPT) !== 0) {
      this.availFlagsShadow &= ~VRING_AVAIL_F_NO_INTERRUPT;
      if (!this.eventIdx) this.ring.setAvailFlags(this.availFlagsShadow);
    }
    if (!this.eventIdx) return !this.moreUsed();
    const bufs = Math.floor((((this.availShadow - this.lastUsed) & 0xffff) * 3) / 4);
    this.ring.setUsedEvent((this.lastUsed + bufs) & 0xffff);
    return ((this.ring.usedIdx() - this.lastUsed) & 0xffff) <= bufs;
  }

  /**
   * The used-buffer interrupt handler (Linux `vring_interrupt`): runs the callback when
   * used buffers are pending. Returns false for a spurious interrupt.
   */
  interrupt(): boolean {
    this.stats.interrupts++;
    if (!this.moreUsed()) {
      this.stats.spuriousInterrupts++;
      return false;
    }
    if (this.brokenBy !== undefined) return true;
    this.callbackFn?.(this as Virtqueue);
    return true;
  }

  /**
   * Takes back one buffer the device never used, for teardown after the device was
   * reset (Linux `virtqueue_detach_unused_buf`). Returns undefined when none is left.
   */
  detachUnusedBuf(): T | undefined {
    for (let head = 0; head < this.num; head++) {
      if (this.chainDescs[head] === 0) continue;
      const token = this.detach(head);
      // Rewind the avail index for a buffer the device never saw published.
      this.availShadow = (this.availShadow - 1) & 0xffff;
      if (this.numAdded > 0) this.numAdded--;
      else this.ring.setAvailIdx(this.availShadow);
      return token;
    }
    return undefined;
  }

  /**
   * Forgets all state and re-initialises the ring memory, as after a device reset. Any
   * buffer in flight is dropped; call detachUnusedBuf first to reclaim tokens.
   */
  reset(): void {
    for (let i = 0; i < this.num - 1; i++) this.nextShadow[i] = i + 1;
    this.chainDescs.fill(0);
    this.tokens.fill(NO_TOKEN);
    this.freeHead = 0;
    this.freeTail = this.num - 1;
    this.numFreeDescs = this.num;
    this.inFlight = 0;
    this.availShadow = 0;
    this.numAdded = 0;
    this.lastUsed = 0;
    this.usedShadow = 0;
    this.availFlagsShadow = 0;
    this.pendingKickCheck = false;
    this.brokenBy = undefined;
    this.initRing();
  }
}
