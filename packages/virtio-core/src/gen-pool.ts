import { VirtioError } from './errors.js';

/** Options of {@link GenPool}. @public */
export interface GenPoolOptions {
  /** First bus address of the region managed. */
  base: number;
  /** Size of the region in bytes. */
  size: number;
  /** Alignment of every allocation, a power of two. Default 16. */
  align?: number;
}

/**
 * A bounded first-fit allocator over one address range, after Linux `lib/genalloc.c`
 * (`gen_pool_create` / `gen_pool_alloc` with `gen_pool_first_fit` / `gen_pool_free`),
 * which the RFC's NTB client uses for its memory-window buffer pool.
 *
 * Every allocation is rounded up to the alignment and starts aligned. Freed space is
 * merged with its neighbours. The free list never holds more than (live allocations + 1)
 * extents, so each call does work bounded by the number of live allocations.
 * Exhaustion is an expected outcome: {@link GenPool.alloc} returns -1.
 *
 * @public
 */
export class GenPool {
  /** First usable (aligned) address. */
  readonly base: number;
  /** Usable bytes (a multiple of `align`). */
  readonly size: number;
  /** Alignment of every allocation. */
  readonly align: number;
  /** Free extents, sorted by start, never adjacent (merged on free). */
  private readonly freeStart: number[] = [];
  private readonly freeLen: number[] = [];
  /** Live allocations: start → rounded length. */
  private readonly live = new Map<number, number>();
  private availBytes = 0;

  constructor(options: GenPoolOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { base, size } = options;
    const align = options.align ?? 16;
    if (typeof base !== 'number') throw new TypeError(`options.base must be a number, got ${typeof base}`);
    if (!Number.isSafeInteger(base) || base < 0) throw new RangeError(`options.base must be an integer in [0, 2^53-1], got ${base}`);
    if (typeof size !== 'number') throw new TypeError(`options.size must be a number, got ${typeof size}`);
    if (!Number.isSafeInteger(size) || size < 0 || base + size > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`options.size must be an integer with base + size <= 2^53-1, got ${size}`);
    }
    if (typeof align !== 'number') throw new TypeError(`options.align must be a number, got ${typeof align}`);
    if (!Number.isSafeInteger(align) || align < 1 || (align & (align - 1)) !== 0 || align > 0x4000_0000) {
      throw new RangeError(`options.align must be a power of two in 1..2^30, got ${align}`);
    }
    const first = Math.ceil(base / align) * align;
    const usable = Math.max(0, Math.floor((base + size - first) / align) * align);
    this.base = first;
    this.size = usable;
    this.align = align;
    this.reset();
  }

  /** Bytes free (Linux `gen_pool_avail`). Not necessarily contiguous. */
  get avail(): number {
    return this.availBytes;
  }

  /** Number of live allocations. */
  get allocations(): number {
    return this.live.size;
  }

  /**
   * Allocates `size` bytes (rounded up to the alignment) at the lowest address that fits
   * (first fit). Returns the address, or -1 when no free extent is large enough.
   */
  alloc(size: number): number {
    if (typeof size !== 'number') throw new TypeError(`size must be a number, got ${typeof size}`);
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`size must be a positive integer, got ${size}`);
    const need = Math.ceil(size / this.align) * this.align;
    const starts = this.freeStart;
    const lens = this.freeLen;
    for (let i = 0; i < starts.length; i++) {
      const len = lens[i]!;
      if (len < need) continue;
      const addr = starts[i]!;
      if (len === need) {
        starts.splice(i, 1);
        lens.splice(i, 1);
      } else {
        starts[i] = addr + need;
        lens[i] = len - need;
      }
      this.live.set(addr, need);
      this.availBytes -= need;
      return addr;
    }
    return -1;
  }

  /**
   * Frees the allocation at `addr` (Linux `gen_pool_free`) and returns its rounded size.
   * Throws a {@link VirtioError} `BAD_BUFFER` for an address that is not a live
   * allocation (a double free), where Linux would BUG().
   */
  free(addr: number): number {
    const len = this.live.get(addr);
    if (len === undefined) {
      throw new VirtioError('BAD_BUFFER', `0x${typeof addr === 'number' ? addr.toString(16) : String(addr)} is not a live allocation of this pool`);
    }
    this.live.delete(addr);
    this.availBytes += len;
    const starts = this.freeStart;
    const lens = this.freeLen;
    // Binary search for the first free extent after addr.
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! < addr) lo = mid + 1;
      else hi = mid;
    }
    const mergePrev = lo > 0 && starts[lo - 1]! + lens[lo - 1]! === addr;
    const mergeNext = lo < starts.length && addr + len === starts[lo]!;
    if (mergePrev && mergeNext) {
      lens[lo - 1] = lens[lo - 1]! + len + lens[lo]!;
      starts.splice(lo, 1);
      lens.splice(lo, 1);
    } else if (mergePrev) {
      lens[lo - 1] = lens[lo - 1]! + len;
    } else if (mergeNext) {
      starts[lo] = addr;
      lens[lo] = lens[lo]! + len;
    } else {
      starts.splice(lo, 0, addr);
      lens.splice(lo, 0, len);
    }
    return len;
  }

  /** True when `addr` is the start of a live allocation. */
  owns(addr: number): boolean {
    return this.live.has(addr);
  }

  /** Forgets every allocation: the whole range is free again. */
  reset(): void {
    this.live.clear();
    this.freeStart.length = 0;
    this.freeLen.length = 0;
    if (this.size > 0) {
      this.freeStart.push(this.base);
      this.freeLen.push(this.size);
    }
    this.availBytes = this.size;
  }
}
