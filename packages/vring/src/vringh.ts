import { VringError } from './errors.js';
import type { GuestMemory } from './memory.js';
import { RingAccess, readAddr } from './internal/ring-access.js';
import {
  VIRTQ_DESC,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_USED_F_NO_NOTIFY,
  validateLayout,
  vringNeedEvent,
  type SplitRingLayout,
} from './layout.js';

const TWO_POW_32 = 0x1_0000_0000;

/**
 * A list of segments of one descriptor chain, device-readable or device-writable
 * (Linux `struct vringh_kiov`), with a cursor for {@link Vringh.pull} /
 * {@link Vringh.push}. Allocate once and reuse: getDesc refills it in place.
 *
 * @public
 */
export class VringIov {
  /** Most segments this iov holds. */
  readonly capacity: number;
  /** Bus address of each segment. */
  readonly addr: Float64Array;
  /** Length of each segment. */
  readonly len: Uint32Array;
  /** Number of segments. */
  count = 0;
  /** Sum of all segment lengths. */
  totalLen = 0;
  /** Cursor: current segment. */
  index = 0;
  /** Cursor: bytes consumed in the current segment. */
  offset = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536) {
      throw new RangeError(`capacity must be an integer in 1..65536, got ${capacity}`);
    }
    this.capacity = capacity;
    this.addr = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
  }

  /** Empties the list. */
  reset(): void {
    this.count = 0;
    this.totalLen = 0;
    this.index = 0;
    this.offset = 0;
  }

  /** Bytes not yet consumed by pull / push. */
  get remaining(): number {
    let r = 0;
    for (let i = this.index; i < this.count; i++) r += this.len[i]!;
    return r - this.offset;
  }

  /** Moves the cursor forward by up to `n` bytes; returns how far it moved. */
  skip(n: number): number {
    let moved = 0;
    while (moved < n && this.index < this.count) {
      const avail = this.len[this.index]! - this.offset;
      const step = Math.min(avail, n - moved);
      moved += step;
      this.offset += step;
      if (this.offset === this.len[this.index]!) {
        this.index++;
        this.offset = 0;
      }
    }
    return moved;
  }
}

/** Options of {@link Vringh}. @public */
export interface VringhOptions {
  /** The memory as the device sees it (often a window onto the driver's memory). */
  memory: GuestMemory;
  /** Where the ring lives, in the device's bus addresses. */
  layout: SplitRingLayout;
  /** VIRTIO_RING_F_EVENT_IDX was negotiated. Default false. */
  eventIdx?: boolean;
  /** VIRTIO_RING_F_INDIRECT_DESC was negotiated. Default false. */
  indirect?: boolean;
  /** Resume from this avail index (vhost-user SET_VRING_BASE). Default 0. */
  lastAvailIdx?: number;
  /** Resume from this used index. Default: `lastAvailIdx`. */
  lastUsedIdx?: number;
}

/** Counters of one {@link Vringh}. @public */
export interface VringhStats {
  /** Chains taken with getDesc. */
  chains: number;
  /** Chains completed. */
  completed: number;
  /** needNotify calls that answered true. */
  notifies: number;
  /** needNotify calls that answered false. */
  notifiesSuppressed: number;
  /** Malformed chains found. */
  errors: number;
}

/**
 * The device half of a split virtqueue (Linux `vringh.c`): one implementation over
 * {@link GuestMemory}, whatever memory that is — local, shared with another thread, or
 * a PCIe / NTB window.
 *
 * The ring is hostile. {@link Vringh.getDesc} checks every rule of §2.7 that a chain
 * can break and throws a {@link VringError} without consuming the chain; its work is
 * bounded by the queue size (and the indirect table size). It reads only the ring and
 * the chain's descriptors and writes nothing.
 *
 * @public
 */
export class Vringh {
  /** Queue size. */
  readonly num: number;
  /** The ring layout in device bus addresses. */
  readonly layout: SplitRingLayout;
  /** The memory as the device sees it. */
  readonly memory: GuestMemory;
  /** EVENT_IDX in use. */
  readonly eventIdx: boolean;
  /** INDIRECT_DESC in use. */
  readonly indirect: boolean;
  /** Counters. */
  readonly stats: VringhStats = { chains: 0, completed: 0, notifies: 0, notifiesSuppressed: 0, errors: 0 };

  private readonly ring: RingAccess;
  private readonly mask: number;
  private lastAvail: number;
  /** avail.idx as last read; chains in [lastAvail, availShadow) are known published. */
  private availShadow: number;
  private lastUsed: number;
  private completedSinceNotify = 0;
  private pendingUsed = 0;

  constructor(options: VringhOptions) {
    const layout = validateLayout(options.layout);
    this.layout = layout;
    this.memory = options.memory;
    this.num = layout.num;
    this.mask = layout.num - 1;
    this.eventIdx = options.eventIdx ?? false;
    this.indirect = options.indirect ?? false;
    this.ring = new RingAccess(options.memory, layout);
    this.lastAvail = (options.lastAvailIdx ?? 0) & 0xffff;
    this.availShadow = this.lastAvail;
    this.lastUsed = (options.lastUsedIdx ?? this.lastAvail) & 0xffff;
  }

  /** The next avail index the device will read. */
  get lastAvailIdx(): number {
    return this.lastAvail;
  }

  /** The used index the device has published (plus unflushed completions). */
  get lastUsedIdx(): number {
    return this.lastUsed;
  }

  /** True when the driver has published chains the device has not taken. */
  hasAvail(): boolean {
    return this.availShadow !== this.lastAvail || this.ring.availIdx() !== this.lastAvail;
  }

  /**
   * Re-reads avail.idx (an acquire load: the entries it publishes are visible after it).
   * Between refreshes getDesc works from the cached value, so the index's cache line,
   * which the driver keeps writing, is read once per batch instead of once per chain.
   */
  private refreshAvail(): boolean {
    const availIdx = this.ring.availIdx();
    if (availIdx === this.lastAvail) return false;
    const pending = (availIdx - this.lastAvail) & 0xffff;
    if (pending > this.num) throw this.err('AVAIL_IDX_JUMP', `avail.idx moved by ${pending} on a queue of ${this.num}`);
    this.availShadow = availIdx;
    return true;
  }

  /** Number of chains published and not yet taken (checked against the queue size). */
  availCount(): number {
    const n = (this.ring.availIdx() - this.lastAvail) & 0xffff;
    if (n > this.num) throw this.err('AVAIL_IDX_JUMP', `avail.idx moved by ${n} on a queue of ${this.num}`);
    return n;
  }

  private err(code: VringError['code'], message: string, cause?: unknown): VringError {
    this.stats.errors++;
    return new VringError(code, message, cause === undefined ? undefined : { cause });
  }

  /**
   * Takes the next available chain (Linux `vringh_getdesc_*`), filling `riov` with its
   * device-readable segments and `wiov` with its device-writable ones. Returns the head
   * index, or -1 when the ring is empty. Throws a {@link VringError} for a malformed
   * chain and leaves it in the ring.
   */
  getDesc(riov: VringIov, wiov: VringIov): number {
    if (this.availShadow === this.lastAvail && !this.refreshAvail()) return -1;
    const head = this.ring.availRing(this.lastAvail & this.mask);
    if (head >= this.num) throw this.err('HEAD_OUT_OF_RANGE', `avail ring gives head ${head} on a queue of ${this.num}`);
    riov.reset();
    wiov.reset();
    this.walk(head, riov, wiov);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    this.stats.chains++;
    return head;
  }

  private walk(head: number, riov: VringIov, wiov: VringIov): void {
    const ring = this.ring;
    const mem = this.memory;
    const num = this.num;
    let i = head;
    let visited = 0;
    // Indirect state: table address and length in entries (-1 = direct table).
    let table = -1;
    let tableLen = 0;
    let total = 0;
    let sawWritable = false;
    for (;;) {
      let addr: number;
      let len: number;
      let flagsNext: number;
      if (table < 0) {
        if (++visited > num) throw this.err('DESC_LOOP', `chain from head ${head} visits more than ${num} descriptors`);
        addr = ring.descAddr(i);
        len = ring.descLen(i);
        flagsNext = ring.descFlagsNext(i);
      } else {
        if (++visited > tableLen) throw this.err('DESC_LOOP', `indirect table of head ${head} loops`);
        const at = table + i * VIRTQ_DESC.SIZE;
        addr = readAddr(mem, at);
        len = mem.read32(at + VIRTQ_DESC.LEN);
        flagsNext = mem.read32(at + VIRTQ_DESC.FLAGS);
      }
      const flags = flagsNext & 0xffff;
      if ((flags & VRING_DESC_F.INDIRECT) !== 0) {
        if (table >= 0) throw this.err('NESTED_INDIRECT', `indirect table of head ${head} holds an indirect descriptor`);
        if (!this.indirect) throw this.err('INDIRECT_NOT_NEGOTIATED', `head ${head} uses INDIRECT without VIRTIO_RING_F_INDIRECT_DESC`);
        if ((flags & VRING_DESC_F.NEXT) !== 0) throw this.err('INDIRECT_WITH_NEXT', `descriptor ${i} of head ${head} has INDIRECT and NEXT`);
        if (len === 0 || len % VIRTQ_DESC.SIZE !== 0) throw this.err('INDIRECT_BAD_LEN', `indirect table length ${len} is not a positive multiple of 16`);
        if (addr < 0 || !mem.contains(addr, len)) {
          throw this.err('ADDRESS_OUT_OF_RANGE', `indirect table at 0x${addr.toString(16)}+${len} is outside memory`);
        }
        table = addr;
        tableLen = len / VIRTQ_DESC.SIZE;
        visited = 0;
        i = 0;
        continue;
      }
      const writable = (flags & VRING_DESC_F.WRITE) !== 0;
      if (writable) sawWritable = true;
      else if (sawWritable) throw this.err('READABLE_AFTER_WRITABLE', `chain from head ${head} has a readable descriptor after a writable one`);
      if (addr < 0 || !mem.contains(addr, len)) {
        throw this.err('ADDRESS_OUT_OF_RANGE', `buffer 0x${addr < 0 ? 'ffffffffffffffff' : addr.toString(16)}+${len} of head ${head} is outside memory`);
      }
      total += len;
      if (total > TWO_POW_32) throw this.err('LEN_OVERFLOW', `chain from head ${head} is longer than 2^32 bytes`);
      const iov = writable ? wiov : riov;
      const n = iov.count;
      if (n >= iov.capacity) throw this.err('CHAIN_TOO_LONG', `chain from head ${head} has more than ${iov.capacity} ${writable ? 'writable' : 'readable'} segments`);
      iov.addr[n] = addr;
      iov.len[n] = len;
      iov.count = n + 1;
      iov.totalLen += len;
      if ((flags & VRING_DESC_F.NEXT) === 0) return;
      i = flagsNext >>> 16;
      if (table < 0 ? i >= num : i >= tableLen) {
        throw this.err('NEXT_OUT_OF_RANGE', `descriptor next ${i} of head ${head} is outside the ${table < 0 ? 'table' : 'indirect table'}`);
      }
    }
  }

  /** Gives back the last `n` chains taken, so getDesc returns them again (Linux `vringh_abandon`). */
  abandon(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.num) throw new RangeError(`n must be an integer in 0..${this.num}, got ${n}`);
    this.lastAvail = (this.lastAvail - n) & 0xffff;
  }

  /**
   * Copies from the readable segments at the iov's cursor into `dst` (Linux
   * `vringh_iov_pull_*`). Returns the bytes copied; less than asked when the iov ends.
   */
  pull(riov: VringIov, dst: Uint8Array, dstOffset = 0, length = dst.length - dstOffset): number {
    const mem = this.memory;
    let done = 0;
    while (done < length && riov.index < riov.count) {
      const segLen = riov.len[riov.index]!;
      const step = Math.min(segLen - riov.offset, length - done);
      mem.read(riov.addr[riov.index]! + riov.offset, dst, dstOffset + done, step);
      done += step;
      riov.offset += step;
      if (riov.offset === segLen) {
        riov.index++;
        riov.offset = 0;
      }
    }
    return done;
  }

  /**
   * Copies `src` into the writable segments at the iov's cursor (Linux
   * `vringh_iov_push_*`). Returns the bytes copied; less than asked when the iov ends.
   */
  push(wiov: VringIov, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): number {
    const mem = this.memory;
    let done = 0;
    while (done < length && wiov.index < wiov.count) {
      const segLen = wiov.len[wiov.index]!;
      const step = Math.min(segLen - wiov.offset, length - done);
      mem.write(wiov.addr[wiov.index]! + wiov.offset, src, srcOffset + done, step);
      done += step;
      wiov.offset += step;
      if (wiov.offset === segLen) {
        wiov.index++;
        wiov.offset = 0;
      }
    }
    return done;
  }

  /**
   * A zero-copy view of segment `i` of an iov, or undefined when the memory cannot give
   * one (use pull / push then).
   */
  segmentView(iov: VringIov, i: number): Uint8Array | undefined {
    if (!(i >= 0 && i < iov.count)) throw new RangeError(`segment ${i} of ${iov.count}`);
    return this.memory.view?.(iov.addr[i]!, iov.len[i]!);
  }

  /**
   * Writes a used element without publishing it; {@link Vringh.flushUsed} publishes all
   * pending elements with one used.idx update.
   */
  addUsed(head: number, len: number): void {
    // `x >>> 0 === x` holds only for an integer in [0, 2^32 − 1].
    if (!(head >>> 0 === head && head < this.num)) throw new RangeError(`head ${head} out of range`);
    if (len >>> 0 !== len) throw new RangeError(`len ${len} is not an integer in [0, 2^32-1]`);
    this.ring.setUsedElem((this.lastUsed + this.pendingUsed) & this.mask, head, len);
    this.pendingUsed++;
  }

  /** Publishes used elements written by addUsed. */
  flushUsed(): void {
    if (this.pendingUsed === 0) return;
    this.lastUsed = (this.lastUsed + this.pendingUsed) & 0xffff;
    this.completedSinceNotify += this.pendingUsed;
    this.stats.completed += this.pendingUsed;
    this.pendingUsed = 0;
    this.ring.setUsedIdx(this.lastUsed);
  }

  /** Returns one chain with `len` bytes written (Linux `vringh_complete_*`). */
  complete(head: number, len: number): void {
    this.addUsed(head, len);
    this.flushUsed();
  }

  /** Returns `count` chains with one used.idx update (Linux `vringh_complete_multi_*`). */
  completeMany(heads: ArrayLike<number>, lens: ArrayLike<number>, count = heads.length): void {
    if (!(Number.isInteger(count) && count >= 0 && count <= heads.length && count <= lens.length)) {
      throw new RangeError(`count ${count} exceeds heads (${heads.length}) or lens (${lens.length})`);
    }
    for (let k = 0; k < count; k++) this.addUsed(heads[k]!, lens[k]!);
    this.flushUsed();
  }

  /**
   * Whether the driver wants a used-buffer notification for what was completed since
   * the last call (Linux `vringh_need_notify_*`).
   */
  needNotify(): boolean {
    let notify: boolean;
    if (!this.eventIdx) {
      notify = (this.ring.availFlags() & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    } else if (this.completedSinceNotify > 0xffff) {
      notify = true;
    } else {
      notify = vringNeedEvent(this.ring.usedEvent(), this.lastUsed, (this.lastUsed - this.completedSinceNotify) & 0xffff);
    }
    this.completedSinceNotify = 0;
    if (notify) this.stats.notifies++;
    else this.stats.notifiesSuppressed++;
    return notify;
  }

  /**
   * Asks the driver for available-buffer notifications again. Returns true when the
   * ring is still empty (safe to sleep), false when chains arrived meanwhile (Linux
   * `vringh_notify_enable_*`).
   */
  notifyEnable(): boolean {
    if (this.eventIdx) this.ring.setAvailEvent(this.lastAvail);
    else this.ring.setUsedFlags(0);
    // The store above is seq-cst, ordering it before this re-read (virtio_mb).
    return this.ring.availIdx() === this.lastAvail;
  }

  /** Asks the driver not to notify (Linux `vringh_notify_disable_*`). */
  notifyDisable(): void {
    if (!this.eventIdx) this.ring.setUsedFlags(VRING_USED_F_NO_NOTIFY);
  }
}
