import type { GuestMemory } from '@x/vring';
import { busError } from './util.js';

/** One range of a {@link BusMap}: a memory answering at its own bus addresses. */
export interface BusRange {
  readonly base: number;
  readonly size: number;
  readonly memory: GuestMemory;
}

/**
 * A host's physical address space: ranges (RAM, BAR apertures) each served by a memory
 * at the same bus addresses. Unlike `RegionMemory` it does not require a range's memory
 * to be accessible when it is added: an aperture decodes its addresses whether or not the
 * window behind it is translated, and an access then answers what the window answers.
 */
export class BusMap implements GuestMemory {
  readonly name: string;
  #ranges: BusRange[] = [];
  #last: BusRange | undefined;

  constructor(name: string, ranges: readonly BusRange[] = []) {
    this.name = name;
    for (const r of ranges) this.add(r);
  }

  get ranges(): readonly BusRange[] {
    return this.#ranges;
  }

  add(range: BusRange): void {
    for (const r of this.#ranges) {
      if (range.base < r.base + r.size && r.base < range.base + range.size) {
        throw new RangeError(`${this.name}: range 0x${range.base.toString(16)}+0x${range.size.toString(16)} overlaps 0x${r.base.toString(16)}`);
      }
    }
    this.#ranges = [...this.#ranges, Object.freeze({ ...range })].sort((a, b) => a.base - b.base);
    this.#last = undefined;
  }

  /** The memory serving all of `[addr, addr + len)`, or undefined: a client maps it directly (its `ioremap`), skipping this dispatch. */
  memoryAt(addr: number, len: number): GuestMemory | undefined {
    for (const r of this.#ranges) if (addr >= r.base && addr + len <= r.base + r.size) return r.memory;
    return undefined;
  }

  #find(addr: number, len: number): GuestMemory {
    const l = this.#last;
    if (l !== undefined && addr >= l.base && addr + len <= l.base + l.size) return l.memory;
    for (const r of this.#ranges) {
      if (addr >= r.base && addr + len <= r.base + r.size) {
        this.#last = r;
        return r.memory;
      }
    }
    throw busError(addr, len, this.name);
  }

  contains(addr: number, len: number): boolean {
    for (const r of this.#ranges) if (addr >= r.base && addr + len <= r.base + r.size) return r.memory.contains(addr, len);
    return false;
  }
  read8(addr: number): number {
    return this.#find(addr, 1).read8(addr);
  }
  read16(addr: number): number {
    return this.#find(addr, 2).read16(addr);
  }
  read32(addr: number): number {
    return this.#find(addr, 4).read32(addr);
  }
  read64(addr: number): number {
    return this.#find(addr, 8).read64(addr);
  }
  write8(addr: number, value: number): void {
    this.#find(addr, 1).write8(addr, value);
  }
  write16(addr: number, value: number): void {
    this.#find(addr, 2).write16(addr, value);
  }
  write32(addr: number, value: number): void {
    this.#find(addr, 4).write32(addr, value);
  }
  write64(addr: number, value: number): void {
    this.#find(addr, 8).write64(addr, value);
  }
  read(addr: number, dst: Uint8Array, dstOffset = 0, length = dst.length - dstOffset): void {
    this.#find(addr, length).read(addr, dst, dstOffset, length);
  }
  write(addr: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    this.#find(addr, length).write(addr, src, srcOffset, length);
  }
  view(addr: number, len: number): Uint8Array | undefined {
    const m = this.#find(addr, len);
    return m.view === undefined ? undefined : m.view(addr, len);
  }
  load16Acquire(addr: number): number {
    return this.#find(addr, 2).load16Acquire(addr);
  }
  store16Release(addr: number, value: number): void {
    this.#find(addr, 2).store16Release(addr, value);
  }
  load32Acquire(addr: number): number {
    return this.#find(addr, 4).load32Acquire(addr);
  }
  store32Release(addr: number, value: number): void {
    this.#find(addr, 4).store32Release(addr, value);
  }
}
