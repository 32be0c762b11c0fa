import type { GuestMemory } from '@x/vring';
import { busError, hex, join64, lo32, hi32 } from './internal/util.js';

/**
 * Layout of a translation block: five `Int32` words in shared memory that describe one
 * memory-window translation, written by whoever programs the window (the host that owns
 * the inbound window, or the bridge's outbound ATU) and read on every access by the
 * host that uses the aperture. Host order (the words never leave the machine, and
 * `Atomics` needs host order).
 *
 * @public
 */
export const NTB_XLAT = {
  /** Sequence word: even when stable, odd while being written; bumped on every change. */
  SEQ: 0,
  /** Translated address, bits 31..0 (word index). */
  ADDR_LO: 1,
  /** Translated address, bits 63..32. */
  ADDR_HI: 2,
  /** Translated size, bits 31..0; size 0 = no translation. */
  SIZE_LO: 3,
  /** Translated size, bits 63..32. */
  SIZE_HI: 4,
  /** Words per block. */
  WORDS: 5,
  /** Bytes per block. */
  BYTES: 20,
} as const;

/**
 * Programs a translation block (seqlock write: odd sequence while writing, even after).
 * `size` 0 removes the translation.
 *
 * @public
 */
export function writeNtbXlat(block: Int32Array, addr: number, size: number): void {
  if (!(block instanceof Int32Array) || block.length < NTB_XLAT.WORDS) throw new TypeError(`block must be an Int32Array of ≥ ${NTB_XLAT.WORDS} words`);
  Atomics.add(block, NTB_XLAT.SEQ, 1);
  Atomics.store(block, NTB_XLAT.ADDR_LO, lo32(addr) | 0);
  Atomics.store(block, NTB_XLAT.ADDR_HI, hi32(addr) | 0);
  Atomics.store(block, NTB_XLAT.SIZE_LO, lo32(size) | 0);
  Atomics.store(block, NTB_XLAT.SIZE_HI, hi32(size) | 0);
  Atomics.add(block, NTB_XLAT.SEQ, 1);
}

/** Reads a translation block: `{ addr, size }` (size 0 = none). @public */
export function readNtbXlat(block: Int32Array): { readonly addr: number; readonly size: number } {
  for (let tries = 0; ; tries++) {
    const s1 = Atomics.load(block, NTB_XLAT.SEQ);
    if ((s1 & 1) === 0) {
      const addr = join64(Atomics.load(block, NTB_XLAT.ADDR_LO), Atomics.load(block, NTB_XLAT.ADDR_HI));
      const size = join64(Atomics.load(block, NTB_XLAT.SIZE_LO), Atomics.load(block, NTB_XLAT.SIZE_HI));
      if (Atomics.load(block, NTB_XLAT.SEQ) === s1) return { addr, size };
    }
    // A writer is mid-update: its five stores take nanoseconds. Bounded anyway.
    if (tries > 1_000_000) return { addr: 0, size: 0 };
  }
}

/** Options of {@link NtbWindowMemory}. @public */
export interface NtbWindowMemoryOptions {
  /** The translation block ({@link NTB_XLAT}) the window's owner programs. */
  readonly xlat: Int32Array;
  /** Bus address of the aperture on the accessing host. */
  readonly base: number;
  /** Size of the aperture (the BAR); a translation larger than this is cut to it. */
  readonly size: number;
  /** The memory behind the window, at its own bus addresses (the peer's RAM, or the next hop). */
  readonly target: GuestMemory;
  /** Name, for messages. */
  readonly name?: string;
  /**
   * How to read the translation out of `xlat` (default {@link readNtbXlat}): the target
   * address of the aperture's first byte and the translated size. Word 0 of `xlat` must change whenever the
   * answer may change (a hardware model with a table of translations, such as an ATU,
   * keeps a generation word there and scans its table here).
   */
  readonly resolve?: (xlat: Int32Array) => { readonly addr: number; readonly size: number };
}

/**
 * One memory-window aperture as the host that uses it sees it: bus addresses
 * `[base, base + size)` that reach `target` through a translation another party
 * programs in shared memory (`ntb_mw_set_trans` of the peer, or the bridge's outbound
 * ATU). Every access re-checks the translation's sequence word, so a translation that
 * is removed or moved takes effect at once: an access beyond the translated size (or
 * with no translation) is a `BUS_ERROR`, never a read of zeros or a stray write. The
 * translation is a plain offset, as an `@x/vring` `RegionMemory` region, re-derived
 * when the sequence changes.
 *
 * @public
 */
export class NtbWindowMemory implements GuestMemory {
  /** Bus address of the aperture. */
  readonly base: number;
  /** Size of the aperture. */
  readonly size: number;
  /** The memory behind the window. */
  readonly target: GuestMemory;
  /** Name, for messages. */
  readonly name: string;
  readonly #x: Int32Array;
  readonly #resolve: (xlat: Int32Array) => { readonly addr: number; readonly size: number };
  #seq = -1;
  /** Target address of `base` under the current translation. */
  #delta = 0;
  /** Translated bytes from `base` (0 = none). */
  #limit = 0;

  constructor(options: NtbWindowMemoryOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { xlat, base, size, target } = options;
    if (!(xlat instanceof Int32Array) || xlat.length < (options.resolve === undefined ? NTB_XLAT.WORDS : 1)) throw new TypeError(`options.xlat must be an Int32Array of ≥ ${NTB_XLAT.WORDS} words`);
    if (typeof base !== 'number' || !Number.isSafeInteger(base) || base < 0) throw new RangeError(`options.base must be a bus address, got ${base}`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) throw new RangeError(`options.size must be a positive integer, got ${size}`);
    if (typeof target !== 'object' || target === null || typeof target.read32 !== 'function') throw new TypeError('options.target must be a GuestMemory');
    if (options.resolve !== undefined && typeof options.resolve !== 'function') throw new TypeError('options.resolve must be a function');
    this.#x = xlat;
    this.#resolve = options.resolve ?? readNtbXlat;
    this.base = base;
    this.size = size;
    this.target = target;
    this.name = options.name ?? `window ${hex(base)}`;
  }

  /** The current translation: the target address of the aperture's first byte and the translated size (0 = none). */
  get translation(): { readonly addr: number; readonly size: number } {
    this.#refresh();
    return { addr: this.#delta, size: this.#limit };
  }

  #refresh(): void {
    const seq = Atomics.load(this.#x, NTB_XLAT.SEQ);
    if (seq === this.#seq) return;
    const t = this.#resolve(this.#x);
    this.#delta = t.addr;
    this.#limit = Math.min(t.size, this.size);
    // The sequence read before resolving: a change during the resolve shows at the next access.
    this.#seq = seq;
  }

  /** The target address of `[addr, addr + len)`, or throws BUS_ERROR. */
  #at(addr: number, len: number): number {
    if (Atomics.load(this.#x, NTB_XLAT.SEQ) !== this.#seq) this.#refresh();
    const off = addr - this.base;
    if (!(off >= 0 && off + len <= this.#limit)) {
      throw busError(addr, len, this.#limit === 0 ? `${this.name} (not translated)` : `${this.name} (translated ${hex(this.#limit)} bytes)`);
    }
    return this.#delta + off;
  }

  /** {@inheritDoc @x/vring#GuestMemory.contains} */
  contains(addr: number, len: number): boolean {
    this.#refresh();
    const off = addr - this.base;
    return off >= 0 && len >= 0 && off + len <= this.#limit && this.target.contains(this.#delta + off, len);
  }
  /** {@inheritDoc @x/vring#GuestMemory.read8} */
  read8(addr: number): number {
    return this.target.read8(this.#at(addr, 1));
  }
  /** {@inheritDoc @x/vring#GuestMemory.read16} */
  read16(addr: number): number {
    return this.target.read16(this.#at(addr, 2));
  }
  /** {@inheritDoc @x/vring#GuestMemory.read32} */
  read32(addr: number): number {
    return this.target.read32(this.#at(addr, 4));
  }
  /** {@inheritDoc @x/vring#GuestMemory.read64} */
  read64(addr: number): number {
    return this.target.read64(this.#at(addr, 8));
  }
  /** {@inheritDoc @x/vring#GuestMemory.write8} */
  write8(addr: number, value: number): void {
    this.target.write8(this.#at(addr, 1), value);
  }
  /** {@inheritDoc @x/vring#GuestMemory.write16} */
  write16(addr: number, value: number): void {
    this.target.write16(this.#at(addr, 2), value);
  }
  /** {@inheritDoc @x/vring#GuestMemory.write32} */
  write32(addr: number, value: number): void {
    this.target.write32(this.#at(addr, 4), value);
  }
  /** {@inheritDoc @x/vring#GuestMemory.write64} */
  write64(addr: number, value: number): void {
    this.target.write64(this.#at(addr, 8), value);
  }
  /** {@inheritDoc @x/vring#GuestMemory.read} */
  read(addr: number, dst: Uint8Array, dstOffset = 0, length = dst.length - dstOffset): void {
    this.target.read(this.#at(addr, length), dst, dstOffset, length);
  }
  /** {@inheritDoc @x/vring#GuestMemory.write} */
  write(addr: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    this.target.write(this.#at(addr, length), src, srcOffset, length);
  }
  /** {@inheritDoc @x/vring#GuestMemory.view} */
  view(addr: number, len: number): Uint8Array | undefined {
    const t = this.#at(addr, len);
    return this.target.view === undefined ? undefined : this.target.view(t, len);
  }
  /** {@inheritDoc @x/vring#GuestMemory.load16Acquire} */
  load16Acquire(addr: number): number {
    return this.target.load16Acquire(this.#at(addr, 2));
  }
  /** {@inheritDoc @x/vring#GuestMemory.store16Release} */
  store16Release(addr: number, value: number): void {
    this.target.store16Release(this.#at(addr, 2), value);
  }
  /** {@inheritDoc @x/vring#GuestMemory.load32Acquire} */
  load32Acquire(addr: number): number {
    return this.target.load32Acquire(this.#at(addr, 4));
  }
  /** {@inheritDoc @x/vring#GuestMemory.store32Release} */
  store32Release(addr: number, value: number): void {
    this.target.store32Release(this.#at(addr, 4), value);
  }
}
