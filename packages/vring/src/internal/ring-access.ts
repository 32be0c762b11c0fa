import { busError, type GuestMemory } from '../memory.js';
import {
  VIRTQ_AVAIL,
  VIRTQ_DESC,
  VIRTQ_USED,
  availEventOffset,
  availRingSize,
  descTableSize,
  usedEventOffset,
  usedRingSize,
  type SplitRingLayout,
} from '../layout.js';

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Accessors for the fields of one split ring. One algorithm (Virtqueue, Vringh) runs
 * over this; it takes a typed-array fast path when the memory can give a zero-copy view
 * of each ring part on a little-endian host, and falls back to the `GuestMemory`
 * accessors otherwise. Index, flags and event words always go through Atomics (or the
 * memory's acquire/release accessors), so entries are visible before the index that
 * publishes them.
 *
 * Descriptor addresses above 2^53 − 1 read as -1 so the caller can raise its own error.
 */
export class RingAccess {
  readonly num: number;
  readonly mask: number;
  private readonly mem: GuestMemory;
  private readonly layout: SplitRingLayout;
  // Fast path (null when unavailable).
  private readonly d32: Uint32Array | null = null;
  private readonly a16: Uint16Array | null = null;
  private readonly u16: Uint16Array | null = null;
  private readonly u32: Uint32Array | null = null;
  readonly fast: boolean;

  constructor(mem: GuestMemory, layout: SplitRingLayout) {
    this.mem = mem;
    this.layout = layout;
    this.num = layout.num;
    this.mask = layout.num - 1;
    const num = layout.num;
    // Fail early with BUS_ERROR when a part is not mapped at all.
    for (const [addr, len] of [
      [layout.desc, descTableSize(num)],
      [layout.avail, availRingSize(num)],
      [layout.used, usedRingSize(num)],
    ] as const) {
      if (!mem.contains(addr, len)) throw busError(addr, len, 'the memory the ring was given');
    }
    let fast = false;
    if (HOST_LE && mem.view !== undefined) {
      const d = mem.view(layout.desc, descTableSize(num));
      const a = mem.view(layout.avail, availRingSize(num));
      const u = mem.view(layout.used, usedRingSize(num));
      if (d !== undefined && a !== undefined && u !== undefined && d.byteOffset % 4 === 0 && a.byteOffset % 2 === 0 && u.byteOffset % 4 === 0) {
        this.d32 = new Uint32Array(d.buffer, d.byteOffset, 4 * num);
        this.a16 = new Uint16Array(a.buffer, a.byteOffset, 3 + num);
        this.u16 = new Uint16Array(u.buffer, u.byteOffset, 3 + 4 * num);
        this.u32 = new Uint32Array(u.buffer, u.byteOffset, 1 + 2 * num);
        fast = true;
      }
    }
    this.fast = fast;
  }

  // ---- descriptor table -------------------------------------------------------------
  descAddr(i: number): number {
    const d = this.d32;
    if (d !== null) {
      const hi = d[4 * i + 1]!;
      if (hi > 0x1fffff) return -1;
      return hi * 0x1_0000_0000 + d[4 * i]!;
    }
    return readAddr(this.mem, this.layout.desc + i * VIRTQ_DESC.SIZE);
  }
  descLen(i: number): number {
    const d = this.d32;
    if (d !== null) return d[4 * i + 2]!;
    return this.mem.read32(this.layout.desc + i * VIRTQ_DESC.SIZE + VIRTQ_DESC.LEN);
  }
  /** flags in the low 16 bits, next in the high 16 bits (one LE u32 at offset 12). */
  descFlagsNext(i: number): number {
    const d = this.d32;
    if (d !== null) return d[4 * i + 3]!;
    return this.mem.read32(this.layout.desc + i * VIRTQ_DESC.SIZE + VIRTQ_DESC.FLAGS);
  }
  setDesc(i: number, addr: number, len: number, flags: number, next: number): void {
    const d = this.d32;
    if (d !== null) {
      // Store only the words that change: a descriptor refilled with the same buffer
      // (a steady stream, a fixed receive pool) then never leaves the device's cache,
      // and the next index update has no pending store to wait for.
      const o = 4 * i;
      const lo = addr >>> 0;
      const hi = (addr / 0x1_0000_0000) >>> 0;
      const fn = ((flags & 0xffff) | (next << 16)) >>> 0;
      if (d[o] !== lo) d[o] = lo;
      if (d[o + 1] !== hi) d[o + 1] = hi;
      if (d[o + 2] !== len) d[o + 2] = len;
      if (d[o + 3] !== fn) d[o + 3] = fn;
      return;
    }
    const a = this.layout.desc + i * VIRTQ_DESC.SIZE;
    this.mem.write64(a, addr);
    this.mem.write32(a + VIRTQ_DESC.LEN, len);
    this.mem.write32(a + VIRTQ_DESC.FLAGS, ((flags & 0xffff) | (next << 16)) >>> 0);
  }

  // ---- available ring ---------------------------------------------------------------
  availFlags(): number {
    const a = this.a16;
    if (a !== null) return Atomics.load(a, 0);
    return this.mem.load16Acquire(this.layout.avail + VIRTQ_AVAIL.FLAGS);
  }
  setAvailFlags(v: number): void {
    const a = this.a16;
    if (a !== null) Atomics.store(a, 0, v);
    else this.mem.store16Release(this.layout.avail + VIRTQ_AVAIL.FLAGS, v);
  }
  availIdx(): number {
    const a = this.a16;
    if (a !== null) return Atomics.load(a, 1);
    return this.mem.load16Acquire(this.layout.avail + VIRTQ_AVAIL.IDX);
  }
  setAvailIdx(v: number): void {
    const a = this.a16;
    if (a !== null) Atomics.store(a, 1, v);
    else this.mem.store16Release(this.layout.avail + VIRTQ_AVAIL.IDX, v & 0xffff);
  }
  availRing(slot: number): number {
    const a = this.a16;
    if (a !== null) return a[2 + slot]!;
    return this.mem.read16(this.layout.avail + VIRTQ_AVAIL.RING + slot * VIRTQ_AVAIL.ENTRY);
  }
  setAvailRing(slot: number, head: number): void {
    const a = this.a16;
    if (a !== null) {
      // Unchanged entries are not rewritten (see setDesc).
      if (a[2 + slot] !== head) a[2 + slot] = head;
    } else this.mem.write16(this.layout.avail + VIRTQ_AVAIL.RING + slot * VIRTQ_AVAIL.ENTRY, head);
  }
  usedEvent(): number {
    const a = this.a16;
    if (a !== null) return Atomics.load(a, 2 + this.num);
    return this.mem.load16Acquire(this.layout.avail + usedEventOffset(this.num));
  }
  setUsedEvent(v: number): void {
    const a = this.a16;
    if (a !== null) Atomics.store(a, 2 + this.num, v);
    else this.mem.store16Release(this.layout.avail + usedEventOffset(this.num), v & 0xffff);
  }

  // ---- used ring --------------------------------------------------------------------
  usedFlags(): number {
    const u = this.u16;
    if (u !== null) return Atomics.load(u, 0);
    return this.mem.load16Acquire(this.layout.used + VIRTQ_USED.FLAGS);
  }
  setUsedFlags(v: number): void {
    const u = this.u16;
    if (u !== null) Atomics.store(u, 0, v);
    else this.mem.store16Release(this.layout.used + VIRTQ_USED.FLAGS, v);
  }
  usedIdx(): number {
    const u = this.u16;
    if (u !== null) return Atomics.load(u, 1);
    return this.mem.load16Acquire(this.layout.used + VIRTQ_USED.IDX);
  }
  setUsedIdx(v: number): void {
    const u = this.u16;
    if (u !== null) Atomics.store(u, 1, v);
    else this.mem.store16Release(this.layout.used + VIRTQ_USED.IDX, v & 0xffff);
  }
  usedId(slot: number): number {
    const u = this.u32;
    if (u !== null) return u[1 + 2 * slot]!;
    return this.mem.read32(this.layout.used + VIRTQ_USED.RING + slot * VIRTQ_USED.ENTRY + VIRTQ_USED.ELEM_ID);
  }
  usedLen(slot: number): number {
    const u = this.u32;
    if (u !== null) return u[2 + 2 * slot]!;
    return this.mem.read32(this.layout.used + VIRTQ_USED.RING + slot * VIRTQ_USED.ENTRY + VIRTQ_USED.ELEM_LEN);
  }
  setUsedElem(slot: number, id: number, len: number): void {
    const u = this.u32;
    if (u !== null) {
      // Unchanged words are not rewritten (see setDesc).
      const o = 1 + 2 * slot;
      if (u[o] !== id) u[o] = id;
      if (u[o + 1] !== len) u[o + 1] = len;
      return;
    }
    const a = this.layout.used + VIRTQ_USED.RING + slot * VIRTQ_USED.ENTRY;
    this.mem.write32(a + VIRTQ_USED.ELEM_ID, id);
    this.mem.write32(a + VIRTQ_USED.ELEM_LEN, len);
  }
  availEvent(): number {
    const u = this.u16;
    if (u !== null) return Atomics.load(u, 2 + 4 * this.num);
    return this.mem.load16Acquire(this.layout.used + availEventOffset(this.num));
  }
  setAvailEvent(v: number): void {
    const u = this.u16;
    if (u !== null) Atomics.store(u, 2 + 4 * this.num, v);
    else this.mem.store16Release(this.layout.used + availEventOffset(this.num), v & 0xffff);
  }
}

/** Reads a descriptor-style le64 address; -1 when above 2^53 − 1. */
export function readAddr(mem: GuestMemory, at: number): number {
  const hi = mem.read32(at + 4);
  if (hi > 0x1fffff) return -1;
  return hi * 0x1_0000_0000 + mem.read32(at);
}
