import { VringError } from './errors.js';

/**
 * The highest bus address a JS number represents exactly (2^53 − 1). Bus addresses
 * above it are refused rather than rounded.
 *
 * @public
 */
export const MAX_BUS_ADDR = Number.MAX_SAFE_INTEGER;

/** True when this platform stores typed-array elements little-endian. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The consumer-side view of memory that a ring lives in, after rust-vmm's vm-memory.
 *
 * All multi-byte accesses are little-endian (VIRTIO 1.2 §1.4) regardless of the host.
 * Addresses are bus addresses: plain numbers in `[0, 2^53 − 1]`. An access that is not
 * wholly inside the memory throws a {@link VringError} with code `BUS_ERROR`; a read
 * never returns zeros for an unmapped address.
 *
 * The `*Acquire` / `*Release` accessors are for ring index and event words that another
 * thread or system reads concurrently: a release store is ordered after every earlier
 * write, and an acquire load before every later read (Atomics on shared memory).
 *
 * @public
 */
export interface GuestMemory {
  /** True when `[addr, addr + len)` is wholly accessible. `len` may be 0. */
  contains(addr: number, len: number): boolean;
  /** Reads one byte. */
  read8(addr: number): number;
  /** Reads a little-endian u16. */
  read16(addr: number): number;
  /** Reads a little-endian u32. */
  read32(addr: number): number;
  /** Reads a little-endian u64; throws `VALUE_RANGE` above 2^53 − 1. */
  read64(addr: number): number;
  /** Writes one byte. */
  write8(addr: number, value: number): void;
  /** Writes a little-endian u16. */
  write16(addr: number, value: number): void;
  /** Writes a little-endian u32. */
  write32(addr: number, value: number): void;
  /** Writes a little-endian u64 from a number ≤ 2^53 − 1. */
  write64(addr: number, value: number): void;
  /** Copies `length` bytes at `addr` into `dst[dstOffset…]`. */
  read(addr: number, dst: Uint8Array, dstOffset?: number, length?: number): void;
  /** Copies `length` bytes of `src[srcOffset…]` to `addr`. */
  write(addr: number, src: Uint8Array, srcOffset?: number, length?: number): void;
  /**
   * A zero-copy view of `[addr, addr + len)`, or `undefined` when this memory cannot
   * give one for that range (then use {@link GuestMemory.read}). Throws `BUS_ERROR`
   * when the range is not accessible at all.
   */
  view?(addr: number, len: number): Uint8Array | undefined;
  /** Acquire-load of a u16 ring word (2-byte aligned). */
  load16Acquire(addr: number): number;
  /** Release-store of a u16 ring word (2-byte aligned). */
  store16Release(addr: number, value: number): void;
  /** Acquire-load of a u32 word (4-byte aligned). */
  load32Acquire(addr: number): number;
  /** Release-store of a u32 word (4-byte aligned). */
  store32Release(addr: number, value: number): void;
}

/** @internal */
export function busError(addr: number, len: number, where: string): VringError {
  return new VringError(
    'BUS_ERROR',
    `access of ${len} byte(s) at 0x${Number.isFinite(addr) ? addr.toString(16) : String(addr)} is outside ${where}`,
  );
}

/** @internal */
export function checkBusAddr(name: string, addr: number): void {
  if (typeof addr !== 'number') throw new TypeError(`${name} must be a number, got ${typeof addr}`);
  if (!Number.isInteger(addr) || addr < 0 || addr > MAX_BUS_ADDR) {
    throw new RangeError(`${name} must be an integer in [0, 2^53-1], got ${addr}`);
  }
}

/** @internal */
export function checkSize(name: string, size: number, max = MAX_BUS_ADDR): void {
  if (typeof size !== 'number') throw new TypeError(`${name} must be a number, got ${typeof size}`);
  if (!Number.isInteger(size) || size < 0 || size > max) {
    throw new RangeError(`${name} must be an integer in [0, ${max}], got ${size}`);
  }
}

/** Options of {@link ArrayBufferMemory}. @public */
export interface ArrayBufferMemoryOptions {
  /** Bus address of the first byte. Default 0. */
  base?: number;
  /** Offset of the first byte inside the buffer. Default 0. */
  byteOffset?: number;
  /** Number of bytes exposed. Default: the rest of the buffer. */
  byteLength?: number;
  /** A name used in error messages. */
  name?: string;
}

/**
 * {@link GuestMemory} over an `ArrayBuffer` or `SharedArrayBuffer`, placed at a base bus
 * address. The same buffer may be wrapped several times at different bases, which is
 * how two systems see one memory at two addresses.
 *
 * @public
 */
export class ArrayBufferMemory implements GuestMemory {
  /** The underlying buffer. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Bus address of the first byte. */
  readonly base: number;
  /** Number of bytes exposed. */
  readonly size: number;
  /** Offset of the first exposed byte inside {@link ArrayBufferMemory.buffer}. */
  readonly byteOffset: number;
  /** Name used in error messages. */
  readonly name: string;
  private readonly u8: Uint8Array;
  private readonly dv: DataView;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;

  constructor(buffer: ArrayBuffer | SharedArrayBuffer, options: ArrayBufferMemoryOptions = {}) {
    if (!(buffer instanceof ArrayBuffer) && !(typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer)) {
      throw new TypeError('buffer must be an ArrayBuffer or SharedArrayBuffer');
    }
    const base = options.base ?? 0;
    const byteOffset = options.byteOffset ?? 0;
    checkBusAddr('options.base', base);
    checkSize('options.byteOffset', byteOffset, buffer.byteLength);
    const byteLength = options.byteLength ?? buffer.byteLength - byteOffset;
    checkSize('options.byteLength', byteLength, buffer.byteLength - byteOffset);
    // Subtract rather than add: base + byteLength could round at 2^53.
    if (byteLength > 0 && base > MAX_BUS_ADDR - (byteLength - 1)) throw new RangeError('the last byte (options.base + byteLength - 1) exceeds 2^53-1');
    this.buffer = buffer;
    this.base = base;
    this.size = byteLength;
    this.byteOffset = byteOffset;
    this.name = options.name ?? 'memory';
    this.u8 = new Uint8Array(buffer, byteOffset, byteLength);
    this.dv = new DataView(buffer, byteOffset, byteLength);
    // Whole-buffer word views; Atomics index them by (byteOffset + off) / width.
    this.u16 = new Uint16Array(buffer, 0, buffer.byteLength >>> 1);
    this.u32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }

  /** Offset inside the exposed range, or throws BUS_ERROR. */
  private off(addr: number, len: number): number {
    const off = addr - this.base;
    if (!(off >= 0 && off + len <= this.size) || Math.floor(off) !== off) throw busError(addr, len, this.name);
    return off;
  }

  /** {@inheritDoc GuestMemory.contains} */
  contains(addr: number, len: number): boolean {
    const off = addr - this.base;
    return off >= 0 && len >= 0 && off + len <= this.size && Math.floor(off) === off;
  }

  /** {@inheritDoc GuestMemory.read8} */
  read8(addr: number): number {
    return this.u8[this.off(addr, 1)]!;
  }
  /** {@inheritDoc GuestMemory.read16} */
  read16(addr: number): number {
    return this.dv.getUint16(this.off(addr, 2), true);
  }
  /** {@inheritDoc GuestMemory.read32} */
  read32(addr: number): number {
    return this.dv.getUint32(this.off(addr, 4), true);
  }
  /** {@inheritDoc GuestMemory.read64} */
  read64(addr: number): number {
    const o = this.off(addr, 8);
    const hi = this.dv.getUint32(o + 4, true);
    if (hi > 0x1fffff) throw new VringError('VALUE_RANGE', `u64 at 0x${addr.toString(16)} exceeds 2^53-1`);
    return hi * 0x1_0000_0000 + this.dv.getUint32(o, true);
  }
  /** {@inheritDoc GuestMemory.write8} */
  write8(addr: number, value: number): void {
    this.u8[this.off(addr, 1)] = value;
  }
  /** {@inheritDoc GuestMemory.write16} */
  write16(addr: number, value: number): void {
    this.dv.setUint16(this.off(addr, 2), value, true);
  }
  /** {@inheritDoc GuestMemory.write32} */
  write32(addr: number, value: number): void {
    this.dv.setUint32(this.off(addr, 4), value, true);
  }
  /** {@inheritDoc GuestMemory.write64} */
  write64(addr: number, value: number): void {
    const o = this.off(addr, 8);
    if (!(value >= 0 && value <= MAX_BUS_ADDR)) throw new RangeError(`value must be in [0, 2^53-1], got ${value}`);
    this.dv.setUint32(o, value >>> 0, true);
    this.dv.setUint32(o + 4, Math.floor(value / 0x1_0000_0000), true);
  }

  /** {@inheritDoc GuestMemory.read} */
  read(addr: number, dst: Uint8Array, dstOffset = 0, length = dst.length - dstOffset): void {
    if (!(length >= 0 && dstOffset >= 0 && dstOffset + length <= dst.length)) throw new RangeError('dstOffset/length outside dst');
    const o = this.off(addr, length);
    copyBytes(this.u8, o, dst, dstOffset, length);
  }
  /** {@inheritDoc GuestMemory.write} */
  write(addr: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    if (!(length >= 0 && srcOffset >= 0 && srcOffset + length <= src.length)) throw new RangeError('srcOffset/length outside src');
    const o = this.off(addr, length);
    copyBytes(src, srcOffset, this.u8, o, length);
  }
  /** {@inheritDoc GuestMemory.view} */
  view(addr: number, len: number): Uint8Array {
    const o = this.off(addr, len);
    return new Uint8Array(this.buffer, this.byteOffset + o, len);
  }

  /** {@inheritDoc GuestMemory.load16Acquire} */
  load16Acquire(addr: number): number {
    const o = this.off(addr, 2) + this.byteOffset;
    if ((o & 1) !== 0 || !HOST_LE) return this.slow16(addr, o);
    return Atomics.load(this.u16, o >>> 1);
  }
  /** {@inheritDoc GuestMemory.store16Release} */
  store16Release(addr: number, value: number): void {
    const o = this.off(addr, 2) + this.byteOffset;
    if ((o & 1) !== 0) throw new VringError('MISALIGNED', `u16 ring word at 0x${addr.toString(16)}`);
    if (!HOST_LE) {
      Atomics.store(this.u16, o >>> 1, ((value & 0xff) << 8) | ((value >>> 8) & 0xff));
      return;
    }
    Atomics.store(this.u16, o >>> 1, value);
  }
  /** {@inheritDoc GuestMemory.load32Acquire} */
  load32Acquire(addr: number): number {
    const o = this.off(addr, 4) + this.byteOffset;
    if ((o & 3) !== 0) throw new VringError('MISALIGNED', `u32 word at 0x${addr.toString(16)}`);
    const v = Atomics.load(this.u32, o >>> 2);
    return HOST_LE ? v : bswap32(v);
  }
  /** {@inheritDoc GuestMemory.store32Release} */
  store32Release(addr: number, value: number): void {
    const o = this.off(addr, 4) + this.byteOffset;
    if ((o & 3) !== 0) throw new VringError('MISALIGNED', `u32 word at 0x${addr.toString(16)}`);
    Atomics.store(this.u32, o >>> 2, HOST_LE ? value : bswap32(value));
  }

  private slow16(addr: number, o: number): number {
    if ((o & 1) !== 0) throw new VringError('MISALIGNED', `u16 ring word at 0x${addr.toString(16)}`);
    const v = Atomics.load(this.u16, o >>> 1);
    return ((v & 0xff) << 8) | (v >>> 8);
  }
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/**
 * Copies bytes between typed arrays. Short copies use a loop (no view objects are
 * created, so the hot path allocates nothing); long ones use `TypedArray.set`.
 *
 * @internal
 */
export function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  if (len <= 64) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
    return;
  }
  dst.set(src.subarray(srcOff, srcOff + len), dstOff);
}

/** One mapping of a {@link RegionMemory}. @public */
export interface MemoryRegion {
  /** First bus address of the region. */
  readonly busAddr: number;
  /** Size in bytes. */
  readonly size: number;
  /** The memory the region forwards to. */
  readonly target: GuestMemory;
  /** Address in `target` that `busAddr` maps to. */
  readonly targetAddr: number;
  /** Optional name used in errors and traces. */
  readonly name?: string;
}

/** Options of {@link RegionMemory}. @public */
export interface RegionMemoryOptions {
  /** Name used in error messages. */
  name?: string;
  /**
   * Required alignment of every region's bus address and size (a power of two), like a
   * PCIe outbound window or an NTB memory window translation. Default 1.
   */
  alignment?: number;
  /** Upper bound on the number of regions (e.g. the number of outbound windows). */
  maxRegions?: number;
}

/**
 * {@link GuestMemory} that maps bus-address ranges onto other memories: the basis of a
 * PCIe outbound window, an NTB memory window or an IOTLB. An access must fall wholly
 * inside one region; anything else is a `BUS_ERROR`, never a read of zeros.
 *
 * @public
 */
export class RegionMemory implements GuestMemory {
  /** Name used in error messages. */
  readonly name: string;
  /** Required alignment of region bus addresses and sizes. */
  readonly alignment: number;
  /** Upper bound on the number of regions. */
  readonly maxRegions: number;
  private list: MemoryRegion[] = [];
  private last: MemoryRegion | undefined;

  constructor(options: RegionMemoryOptions = {}) {
    this.name = options.name ?? 'region memory';
    const alignment = options.alignment ?? 1;
    checkSize('options.alignment', alignment);
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0 || alignment > 2 ** 30) {
      throw new RangeError(`options.alignment must be a power of two ≤ 2^30, got ${alignment}`);
    }
    this.alignment = alignment;
    const maxRegions = options.maxRegions ?? Infinity;
    if (maxRegions !== Infinity && !(Number.isInteger(maxRegions) && maxRegions >= 1)) {
      throw new RangeError(`options.maxRegions must be a positive integer, got ${maxRegions}`);
    }
    this.maxRegions = maxRegions;
  }

  /** The current mappings, sorted by bus address. */
  get regions(): readonly MemoryRegion[] {
    return this.list;
  }

  /**
   * Adds a mapping. Throws `RangeError` when the region is misaligned, empty, overlaps
   * another, exceeds `maxRegions`, or when `target` does not contain the whole range.
   */
  map(region: MemoryRegion): MemoryRegion {
    checkBusAddr('region.busAddr', region.busAddr);
    checkSize('region.size', region.size);
    checkBusAddr('region.targetAddr', region.targetAddr);
    if (region.size === 0) throw new RangeError('region.size must be > 0');
    if (region.busAddr > MAX_BUS_ADDR - (region.size - 1)) throw new RangeError('the region\'s last byte exceeds 2^53-1');
    if (region.busAddr % this.alignment !== 0 || region.size % this.alignment !== 0) {
      throw new RangeError(
        `region 0x${region.busAddr.toString(16)}+0x${region.size.toString(16)} is not aligned to ${this.alignment} (${this.name})`,
      );
    }
    if (!region.target.contains(region.targetAddr, region.size)) {
      throw new RangeError(`region target does not contain 0x${region.targetAddr.toString(16)}+0x${region.size.toString(16)}`);
    }
    if (this.list.length >= this.maxRegions) throw new RangeError(`${this.name} has no free region (max ${this.maxRegions})`);
    for (const r of this.list) {
      if (region.busAddr < r.busAddr + r.size && r.busAddr < region.busAddr + region.size) {
        throw new RangeError(`region 0x${region.busAddr.toString(16)} overlaps region 0x${r.busAddr.toString(16)}`);
      }
    }
    const copy: MemoryRegion = Object.freeze({ ...region });
    this.list = [...this.list, copy].sort((a, b) => a.busAddr - b.busAddr);
    return copy;
  }

  /** Removes the mapping that starts at `busAddr`; returns false when there is none. */
  unmap(busAddr: number): boolean {
    const i = this.list.findIndex((r) => r.busAddr === busAddr);
    if (i < 0) return false;
    this.list = this.list.filter((_, j) => j !== i);
    this.last = undefined;
    return true;
  }

  /** Removes every mapping. */
  clear(): void {
    this.list = [];
    this.last = undefined;
  }

  private find(addr: number, len: number): MemoryRegion | undefined {
    const l = this.last;
    if (l !== undefined && addr >= l.busAddr && addr + len <= l.busAddr + l.size) return l;
    const list = this.list;
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = list[mid]!;
      if (addr < r.busAddr) hi = mid - 1;
      else if (addr >= r.busAddr + r.size) lo = mid + 1;
      else {
        if (addr + len > r.busAddr + r.size) return undefined;
        this.last = r;
        return r;
      }
    }
    return undefined;
  }

  /** Translates a bus range to the region and target address, or throws BUS_ERROR. */
  translate(addr: number, len: number): { region: MemoryRegion; targetAddr: number } {
    const r = this.find(addr, len);
    if (r === undefined || !(len >= 0)) throw busError(addr, len, this.name);
    return { region: r, targetAddr: r.targetAddr + (addr - r.busAddr) };
  }

  private t(addr: number, len: number): MemoryRegion {
    const r = this.find(addr, len);
    if (r === undefined) throw busError(addr, len, this.name);
    return r;
  }

  /** {@inheritDoc GuestMemory.contains} */
  contains(addr: number, len: number): boolean {
    if (len === 0) return this.find(addr, 0) !== undefined || this.list.some((r) => addr === r.busAddr + r.size);
    return len > 0 && this.find(addr, len) !== undefined;
  }
  /** {@inheritDoc GuestMemory.read8} */
  read8(addr: number): number {
    const r = this.t(addr, 1);
    return r.target.read8(r.targetAddr + (addr - r.busAddr));
  }
  /** {@inheritDoc GuestMemory.read16} */
  read16(addr: number): number {
    const r = this.t(addr, 2);
    return r.target.read16(r.targetAddr + (addr - r.busAddr));
  }
  /** {@inheritDoc GuestMemory.read32} */
  read32(addr: number): number {
    const r = this.t(addr, 4);
    return r.target.read32(r.targetAddr + (addr - r.busAddr));
  }
  /** {@inheritDoc GuestMemory.read64} */
  read64(addr: number): number {
    const r = this.t(addr, 8);
    return r.target.read64(r.targetAddr + (addr - r.busAddr));
  }
  /** {@inheritDoc GuestMemory.write8} */
  write8(addr: number, value: number): void {
    const r = this.t(addr, 1);
    r.target.write8(r.targetAddr + (addr - r.busAddr), value);
  }
  /** {@inheritDoc GuestMemory.write16} */
  write16(addr: number, value: number): void {
    const r = this.t(addr, 2);
    r.target.write16(r.targetAddr + (addr - r.busAddr), value);
  }
  /** {@inheritDoc GuestMemory.write32} */
  write32(addr: number, value: number): void {
    const r = this.t(addr, 4);
    r.target.write32(r.targetAddr + (addr - r.busAddr), value);
  }
  /** {@inheritDoc GuestMemory.write64} */
  write64(addr: number, value: number): void {
    const r = this.t(addr, 8);
    r.target.write64(r.targetAddr + (addr - r.busAddr), value);
  }
  /** {@inheritDoc GuestMemory.read} */
  read(addr: number, dst: Uint8Array, dstOffset = 0, length = dst.length - dstOffset): void {
    const r = this.t(addr, length);
    r.target.read(r.targetAddr + (addr - r.busAddr), dst, dstOffset, length);
  }
  /** {@inheritDoc GuestMemory.write} */
  write(addr: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    const r = this.t(addr, length);
    r.target.write(r.targetAddr + (addr - r.busAddr), src, srcOffset, length);
  }
  /** {@inheritDoc GuestMemory.view} */
  view(addr: number, len: number): Uint8Array | undefined {
    const r = this.t(addr, len);
    return r.target.view?.(r.targetAddr + (addr - r.busAddr), len);
  }
  /** {@inheritDoc GuestMemory.load16Acquire} */
  load16Acquire(addr: number): number {
    const r = this.t(addr, 2);
    return r.target.load16Acquire(r.targetAddr + (addr - r.busAddr));
  }
  /** {@inheritDoc GuestMemory.store16Release} */
  store16Release(addr: number, value: number): void {
    const r = this.t(addr, 2);
    r.target.store16Release(r.targetAddr + (addr - r.busAddr), value);
  }
  /** {@inheritDoc GuestMemory.load32Acquire} */
  load32Acquire(addr: number): number {
    const r = this.t(addr, 4);
    return r.target.load32Acquire(r.targetAddr + (addr - r.busAddr));
  }
  /** {@inheritDoc GuestMemory.store32Release} */
  store32Release(addr: number, value: number): void {
    const r = this.t(addr, 4);
    r.target.store32Release(r.targetAddr + (addr - r.busAddr), value);
  }
}
