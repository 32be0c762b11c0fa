import { VringError, type GuestMemory } from '@x/vring';
import type { PciEndpointController, PciEpcMap } from '../hw/endpoint.js';
import { alignDown, hex } from './util.js';

interface Persistent {
  readonly start: number;
  readonly end: number;
  readonly map: PciEpcMap;
}

/** Counters of an {@link OutboundView}. */
export interface OutboundViewStats {
  /** Accesses (and zero-copy views, which is how vringh reads a ring) through a persistent (ring) mapping. */
  persistent: number;
  /** Accesses that mapped a window, copied and unmapped (RFC §2.4). */
  perAccess: number;
  /** Accesses served by a cached per-access mapping. */
  cached: number;
}

/**
 * The endpoint's view of RC bus addresses, as the RFC's EP function reaches the RC
 * (rfc-protocol §2.4): ring areas through persistent outbound mappings, every other
 * address (buffers) through a window mapped for the access and unmapped after it
 * (`pci_epc_mem_alloc_addr` + `pci_epc_map_addr` + memcpy_fromio / toio + unmap), or,
 * with `cache`, through windows kept mapped until another access needs one.
 *
 * It is a `GuestMemory` in RC bus addresses, so `Vringh` walks the RC's rings through
 * it. Failures are `VringError('BUS_ERROR')` with the controller's error as cause, so
 * vhost-core reports them as `BUS_ERROR`.
 */
export class OutboundView implements GuestMemory {
  readonly stats: OutboundViewStats = { persistent: 0, perAccess: 0, cached: 0 };
  readonly #epc: PciEndpointController;
  readonly #out: GuestMemory;
  readonly #cacheOn: boolean;
  #persistent: Persistent[] = [];
  #cache: Persistent[] = [];
  #last: Persistent | undefined;

  constructor(epc: PciEndpointController, options: { cache?: boolean } = {}) {
    this.#epc = epc;
    this.#out = epc.outbound;
    this.#cacheOn = options.cache ?? false;
  }

  /** Maps `[pciAddr, pciAddr + size)` for good (a ring); throws the controller's typed error. */
  mapPersistent(pciAddr: number, size: number): PciEpcMap {
    const map = this.#mapWithEviction(pciAddr, size);
    this.#persistent.push({ start: pciAddr, end: pciAddr + size, map });
    return map;
  }

  /** Removes a persistent mapping. */
  unmapPersistent(map: PciEpcMap): void {
    this.#persistent = this.#persistent.filter((p) => p.map !== map);
    if (this.#last?.map === map) this.#last = undefined;
    this.#epc.unmap(map);
  }

  /** Drops every cached per-access mapping. */
  flushCache(): void {
    for (const c of this.#cache) this.#epc.unmap(c.map);
    this.#cache = [];
    this.#last = undefined;
  }

  #mapWithEviction(pciAddr: number, size: number): PciEpcMap {
    for (;;) {
      try {
        return this.#epc.map(pciAddr, size);
      } catch (e) {
        if ((e as { code?: unknown }).code !== 'NO_FREE_WINDOW' || this.#cache.length === 0) throw e;
        const old = this.#cache.shift()!;
        if (this.#last === old) this.#last = undefined;
        this.#epc.unmap(old.map);
      }
    }
  }

  #find(addr: number, len: number): Persistent | undefined {
    const l = this.#last;
    if (l !== undefined && addr >= l.start && addr + len <= l.end) return l;
    for (const p of this.#persistent) {
      if (addr >= p.start && addr + len <= p.end) {
        this.#last = p;
        return p;
      }
    }
    for (const p of this.#cache) {
      if (addr >= p.start && addr + len <= p.end) {
        this.#last = p;
        return p;
      }
    }
    return undefined;
  }

  #busError(addr: number, len: number, cause: unknown): VringError {
    return new VringError('BUS_ERROR', `EP access of ${len} byte(s) at RC ${hex(addr)} failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }

  /** Runs `fn` with the EP physical address of `addr`, mapping a window for it when no mapping holds it. */
  #at<T>(addr: number, len: number, fn: (phys: number) => T): T {
    const p = this.#find(addr, len);
    if (p !== undefined) {
      if (this.#cache.includes(p)) this.stats.cached++;
      else this.stats.persistent++;
      return fn(p.map.physAddr + (addr - p.start));
    }
    if (this.#cacheOn) {
      let map: PciEpcMap;
      try {
        // Map the whole window around the access, so neighbouring buffers hit it too.
        const { size: win, align } = this.#epc.features.outbound;
        const start = alignDown(addr, align);
        const wide = this.#epc.canMap(start, win) && addr + len <= start + win;
        map = wide ? this.#mapWithEviction(start, win) : this.#mapWithEviction(addr, len);
      } catch (e) {
        throw this.#busError(addr, len, e);
      }
      const c: Persistent = { start: map.pciAddr, end: map.pciAddr + map.size, map };
      this.#cache.push(c);
      this.#last = c;
      this.stats.perAccess++;
      return fn(map.physAddr + (addr - c.start));
    }
    let map: PciEpcMap;
    try {
      map = this.#mapWithEviction(addr, len);
    } catch (e) {
      throw this.#busError(addr, len, e);
    }
    this.stats.perAccess++;
    try {
      return fn(map.physAddr);
    } finally {
      this.#epc.unmap(map);
    }
  }

  contains(addr: number, len: number): boolean {
    if (!(len >= 0)) return false;
    if (this.#find(addr, Math.max(len, 1)) !== undefined) return true;
    return this.#epc.canMap(addr, Math.max(len, 1));
  }

  read8(addr: number): number {
    return this.#at(addr, 1, (p) => this.#out.read8(p));
  }
  read16(addr: number): number {
    return this.#at(addr, 2, (p) => this.#out.read16(p));
  }
  read32(addr: number): number {
    return this.#at(addr, 4, (p) => this.#out.read32(p));
  }
  read64(addr: number): number {
    return this.#at(addr, 8, (p) => this.#out.read64(p));
  }
  write8(addr: number, value: number): void {
    this.#at(addr, 1, (p) => this.#out.write8(p, value));
  }
  write16(addr: number, value: number): void {
    this.#at(addr, 2, (p) => this.#out.write16(p, value));
  }
  write32(addr: number, value: number): void {
    this.#at(addr, 4, (p) => this.#out.write32(p, value));
  }
  write64(addr: number, value: number): void {
    this.#at(addr, 8, (p) => this.#out.write64(p, value));
  }
  read(addr: number, dst: Uint8Array, dstOffset = 0, length = dst.length - dstOffset): void {
    if (length === 0) return;
    this.#at(addr, length, (p) => this.#out.read(p, dst, dstOffset, length));
  }
  write(addr: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    if (length === 0) return;
    this.#at(addr, length, (p) => this.#out.write(p, src, srcOffset, length));
  }
  /** A zero-copy view only where a mapping stays (rings, cached windows); a per-access mapping is gone after the access. */
  view(addr: number, len: number): Uint8Array | undefined {
    const p = this.#find(addr, len);
    if (p === undefined) {
      if (!this.#cacheOn) return undefined;
      return this.#at(addr, len, (ph) => this.#out.view?.(ph, len));
    }
    if (this.#cache.includes(p)) this.stats.cached++;
    else this.stats.persistent++;
    return this.#out.view?.(p.map.physAddr + (addr - p.start), len);
  }
  load16Acquire(addr: number): number {
    return this.#at(addr, 2, (p) => this.#out.load16Acquire(p));
  }
  store16Release(addr: number, value: number): void {
    this.#at(addr, 2, (p) => this.#out.store16Release(p, value));
  }
  load32Acquire(addr: number): number {
    return this.#at(addr, 4, (p) => this.#out.load32Acquire(p));
  }
  store32Release(addr: number, value: number): void {
    this.#at(addr, 4, (p) => this.#out.store32Release(p, value));
  }
}
