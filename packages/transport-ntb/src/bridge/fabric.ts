// The minimal PCIe endpoint-controller model under the three-system bridge: inbound BAR
// translations onto bridge-local addresses, an outbound ATU onto the host's PCI
// addresses, and MSI-X writes into a host's interrupt controller. The bridge side sees
// it through the NtbBridgeEpc interface (the shape of Linux `pci_epc_*`); a host sees
// its BARs as apertures of its bus. Both meet only in the fabric's words and the RAMs.
import { ArrayBufferMemory, type GuestMemory } from '@x/vring';
import { BusMap } from '../internal/bus-map.js';
import { busError, hex, hi32, join64, lo32 } from '../internal/util.js';
import { NtbWindowMemory } from '../window.js';
import type { NtbLine } from '../wire.js';
import {
  NTB_BRIDGE_ATU_SLOTS,
  NTB_BRIDGE_FABRIC as F,
  PCI_MSIX_ENTRY_SIZE,
  epcOffset,
  type BridgeBarLayout,
  type NtbBridgeLink,
} from './link.js';

/**
 * What the NTB endpoint function needs of one endpoint controller (the calls of Linux
 * `pci-epf-ntb.c` into `pci-epc-core.c`). The bridge runs on this interface; this
 * package implements it over its own minimal model of the controller (the fabric
 * buffer), and an adapter can implement it over another endpoint model.
 *
 * @public
 */
export interface NtbBridgeEpc {
  /** 0 = EPC1 (faces HOST1), 1 = EPC2 (faces HOST2). */
  readonly index: 0 | 1;
  /** `epc_features->align`: alignment of outbound mappings. */
  readonly align: number;
  /** First bridge-local address of the controller's outbound address space (`pci_epc_mem`). */
  readonly obBase: number;
  /** `pci_epc_set_bar`: the host's BAR `bar` reaches bridge-local `[phys, phys + size)`. */
  setBar(bar: number, phys: number, size: number): void;
  /** `pci_epc_clear_bar`. */
  clearBar(bar: number): void;
  /** `pci_epc_map_addr`: bridge-local `[obPhys, obPhys + size)` (in the outbound space) reaches host address `pciAddr`. */
  mapAddr(obPhys: number, pciAddr: number, size: number): void;
  /** `pci_epc_unmap_addr`. */
  unmapAddr(obPhys: number): void;
  /** The MSI-X capability: where the table sits in BAR0 and how many vectors it has. */
  setMsix(tableOffset: number, vectors: number): void;
  /** The host's MSI-X table entry `vector` (read from the table in BAR0): address and data. */
  msixEntry(vector: number): { readonly addr: number; readonly data: number };
  /** `pci_epc_raise_irq(MSIX, vector + 1)`: send the host MSI-X vector `vector`. False when the host has not set it up. */
  raiseIrq(vector: number): boolean;
  /** `pci_epc_start`: the function is bound; the host may use its BARs. */
  start(): void;
  /** `pci_epc_stop`: BARs and outbound mappings go away. */
  stop(): void;
}

/** Writes of a host address through the fabric: into the host's MSI page (an interrupt) or its RAM. */
class HostTarget {
  readonly #link: NtbBridgeLink;
  readonly #k: number;
  readonly #i32: Int32Array;
  readonly #pending: number;
  readonly #irq: NtbLine;
  readonly #ram: ArrayBufferMemory;

  constructor(link: NtbBridgeLink, k: number, irq: NtbLine) {
    this.#link = link;
    this.#k = k;
    this.#i32 = new Int32Array(link.fabric);
    this.#pending = (epcOffset(k) + F.EPC_MSI_PENDING) >> 2;
    this.#irq = irq;
    const h = link.config.hosts[k]!;
    this.#ram = new ArrayBufferMemory(link.memory[k]!, { base: h.ramBase, name: `HOST${k + 1} RAM` });
  }

  get ram(): ArrayBufferMemory {
    return this.#ram;
  }

  /** A posted 32-bit write to host address `addr`: an MSI when it hits the MSI page. */
  write32(addr: number, value: number): void {
    const msi = this.#link.config.hosts[this.#k]!.msiBase;
    if (addr >= msi && addr < msi + 0x1000) {
      // The interrupt controller latches vector `data` and interrupts the CPU.
      Atomics.or(this.#i32, this.#pending, 1 << (value & 31));
      this.#irq.ring();
      return;
    }
    // A write elsewhere lands in memory, as a posted write does; outside RAM it is dropped
    // (an Unsupported Request the writer never sees).
    if (this.#ram.contains(addr, 4)) this.#ram.write32(addr, value);
  }
}

/** The bridge-side model of endpoint controller `k` over the fabric. */
export class FabricEpc implements NtbBridgeEpc {
  readonly index: 0 | 1;
  readonly align: number;
  readonly obBase: number;
  readonly #i32: Int32Array;
  readonly #base: number;
  readonly #host: HostTarget;
  readonly #bridgeRam: ArrayBufferMemory;
  readonly #bar0Phys: () => number;

  constructor(link: NtbBridgeLink, k: 0 | 1, irq: NtbLine, bridgeRam: ArrayBufferMemory) {
    this.index = k;
    this.align = link.config.align;
    this.obBase = link.config.obBase[k];
    this.#i32 = new Int32Array(link.fabric);
    this.#base = epcOffset(k) >> 2;
    this.#host = new HostTarget(link, k, irq);
    this.#bridgeRam = bridgeRam;
    this.#bar0Phys = () => join64(Atomics.load(this.#i32, this.#w(F.EPC_BAR)), Atomics.load(this.#i32, this.#w(F.EPC_BAR) + 1));
  }

  #w(off: number): number {
    return this.#base + (off >> 2);
  }

  #barSeq(f: () => void): void {
    Atomics.add(this.#i32, this.#w(F.EPC_BAR_SEQ), 1);
    f();
    Atomics.add(this.#i32, this.#w(F.EPC_BAR_SEQ), 1);
  }

  setBar(bar: number, phys: number, size: number): void {
    const w = this.#w(F.EPC_BAR) + 4 * bar;
    this.#barSeq(() => {
      Atomics.store(this.#i32, w, lo32(phys) | 0);
      Atomics.store(this.#i32, w + 1, hi32(phys) | 0);
      Atomics.store(this.#i32, w + 2, lo32(size) | 0);
      Atomics.store(this.#i32, w + 3, hi32(size) | 0);
    });
  }

  clearBar(bar: number): void {
    this.setBar(bar, 0, 0);
  }

  #atu(f: () => void): void {
    const g = this.#w(F.EPC_ATU);
    Atomics.add(this.#i32, g, 1);
    f();
    Atomics.add(this.#i32, g, 1);
  }

  #slot(s: number): number {
    return this.#w(F.EPC_ATU) + 1 + s * F.ATU_SLOT_WORDS;
  }

  mapAddr(obPhys: number, pciAddr: number, size: number): void {
    if (obPhys % this.align !== 0 || pciAddr % this.align !== 0) {
      throw new RangeError(`EPC${this.index + 1}: outbound map ${hex(obPhys)} → ${hex(pciAddr)} is not aligned to ${this.align}`);
    }
    let free = -1;
    for (let s = 0; s < NTB_BRIDGE_ATU_SLOTS; s++) {
      const w = this.#slot(s);
      const sz = join64(Atomics.load(this.#i32, w + 4), Atomics.load(this.#i32, w + 5));
      const ob = join64(Atomics.load(this.#i32, w), Atomics.load(this.#i32, w + 1));
      if (sz !== 0 && ob === obPhys) {
        free = s;
        break;
      }
      if (sz === 0 && free < 0) free = s;
    }
    if (free < 0) throw new RangeError(`EPC${this.index + 1}: no free outbound window`);
    const w = this.#slot(free);
    this.#atu(() => {
      Atomics.store(this.#i32, w, lo32(obPhys) | 0);
      Atomics.store(this.#i32, w + 1, hi32(obPhys) | 0);
      Atomics.store(this.#i32, w + 2, lo32(pciAddr) | 0);
      Atomics.store(this.#i32, w + 3, hi32(pciAddr) | 0);
      Atomics.store(this.#i32, w + 4, lo32(size) | 0);
      Atomics.store(this.#i32, w + 5, hi32(size) | 0);
    });
  }

  unmapAddr(obPhys: number): void {
    for (let s = 0; s < NTB_BRIDGE_ATU_SLOTS; s++) {
      const w = this.#slot(s);
      const sz = join64(Atomics.load(this.#i32, w + 4), Atomics.load(this.#i32, w + 5));
      if (sz !== 0 && join64(Atomics.load(this.#i32, w), Atomics.load(this.#i32, w + 1)) === obPhys) {
        this.#atu(() => {
          for (let i = 0; i < F.ATU_SLOT_WORDS; i++) Atomics.store(this.#i32, w + i, 0);
        });
      }
    }
  }

  setMsix(tableOffset: number, vectors: number): void {
    Atomics.store(this.#i32, this.#w(F.EPC_MSIX_TABLE), tableOffset);
    Atomics.store(this.#i32, this.#w(F.EPC_MSIX_VECTORS), 0);
    void vectors;
  }

  msixEntry(vector: number): { readonly addr: number; readonly data: number } {
    const table = this.#bar0Phys() + Atomics.load(this.#i32, this.#w(F.EPC_MSIX_TABLE));
    const e = table + vector * PCI_MSIX_ENTRY_SIZE;
    return { addr: join64(this.#bridgeRam.read32(e), this.#bridgeRam.read32(e + 4)), data: this.#bridgeRam.read32(e + 8) };
  }

  raiseIrq(vector: number): boolean {
    if (vector >= Atomics.load(this.#i32, this.#w(F.EPC_MSIX_VECTORS))) return false;
    const m = this.msixEntry(vector);
    if (m.addr === 0) return false;
    this.#host.write32(m.addr, m.data);
    return true;
  }

  start(): void {
    this.#barSeq(() => Atomics.store(this.#i32, this.#w(F.EPC_BOUND), 1));
  }

  stop(): void {
    this.#barSeq(() => Atomics.store(this.#i32, this.#w(F.EPC_BOUND), 0));
    this.#atu(() => {
      for (let s = 0; s < NTB_BRIDGE_ATU_SLOTS; s++) for (let i = 0; i < F.ATU_SLOT_WORDS; i++) Atomics.store(this.#i32, this.#slot(s) + i, 0);
    });
    for (let b = 0; b < 6; b++) this.clearBar(b);
  }
}

/** Resolves an outbound address of controller `j` through its ATU: the host address, and bytes left in that mapping. */
function atuLookup(i32: Int32Array, j: number, obPhys: number): { addr: number; size: number } {
  const g = (epcOffset(j) + F.EPC_ATU) >> 2;
  for (let tries = 0; tries < 1_000_000; tries++) {
    const s1 = Atomics.load(i32, g);
    if ((s1 & 1) !== 0) continue;
    let found = { addr: 0, size: 0 };
    for (let s = 0; s < NTB_BRIDGE_ATU_SLOTS; s++) {
      const w = g + 1 + s * F.ATU_SLOT_WORDS;
      const sz = join64(Atomics.load(i32, w + 4), Atomics.load(i32, w + 5));
      if (sz === 0) continue;
      const ob = join64(Atomics.load(i32, w), Atomics.load(i32, w + 1));
      if (obPhys >= ob && obPhys < ob + sz) {
        found = { addr: join64(Atomics.load(i32, w + 2), Atomics.load(i32, w + 3)) + (obPhys - ob), size: ob + sz - obPhys };
        break;
      }
    }
    if (Atomics.load(i32, g) === s1) return found;
  }
  return { addr: 0, size: 0 };
}

/** BAR `n` of controller `k`: bridge-local phys and size (size 0 when unbound or unset). */
function barOf(i32: Int32Array, k: number, n: number): { phys: number; size: number } {
  const b = epcOffset(k) >> 2;
  const seqW = b + (F.EPC_BAR_SEQ >> 2);
  for (let tries = 0; tries < 1_000_000; tries++) {
    const s1 = Atomics.load(i32, seqW);
    if ((s1 & 1) !== 0) continue;
    const bound = Atomics.load(i32, b + (F.EPC_BOUND >> 2)) === 1;
    const w = b + (F.EPC_BAR >> 2) + 4 * n;
    const phys = join64(Atomics.load(i32, w), Atomics.load(i32, w + 1));
    const size = join64(Atomics.load(i32, w + 2), Atomics.load(i32, w + 3));
    if (Atomics.load(i32, seqW) === s1) return bound ? { phys, size } : { phys: 0, size: 0 };
  }
  return { phys: 0, size: 0 };
}

/** The part of a host's BAR2 that holds doorbell entries: a write goes out of the other controller's ATU. */
class DoorbellAperture implements GuestMemory {
  readonly #i32: Int32Array;
  readonly #k: number;
  readonly #j: number;
  readonly #base: number;
  readonly #size: number;
  readonly #obBaseJ: number;
  readonly #target: HostTarget;
  readonly #name: string;

  constructor(link: NtbBridgeLink, k: number, base: number, size: number, target: HostTarget) {
    this.#i32 = new Int32Array(link.fabric);
    this.#k = k;
    this.#j = 1 - k;
    this.#base = base;
    this.#size = size;
    this.#obBaseJ = link.config.obBase[this.#j]!;
    this.#target = target;
    this.#name = `HOST${k + 1} BAR2 doorbells`;
  }

  #no(addr: number, len: number): never {
    throw busError(addr, len, `${this.#name} (write-only 32-bit doorbell entries)`);
  }

  contains(addr: number, len: number): boolean {
    return addr >= this.#base && addr + len <= this.#base + this.#size;
  }
  write32(addr: number, value: number): void {
    const off = addr - this.#base;
    if (!(off >= 0 && off + 4 <= this.#size)) this.#no(addr, 4);
    const bar = barOf(this.#i32, this.#k, 2);
    if (bar.size === 0) throw busError(addr, 4, `${this.#name} (BAR2 not set)`);
    const phys = bar.phys + off;
    if (phys < this.#obBaseJ) throw busError(addr, 4, `${this.#name} (BAR2 does not reach the outbound space)`);
    const m = atuLookup(this.#i32, this.#j, phys);
    // No outbound mapping: the write is dropped by the controller, as hardware does.
    if (m.size < 4) return;
    this.#target.write32(m.addr, value >>> 0);
  }
  read8(addr: number): number {
    return this.#no(addr, 1);
  }
  read16(addr: number): number {
    return this.#no(addr, 2);
  }
  read32(addr: number): number {
    return this.#no(addr, 4);
  }
  read64(addr: number): number {
    return this.#no(addr, 8);
  }
  write8(addr: number): void {
    this.#no(addr, 1);
  }
  write16(addr: number): void {
    this.#no(addr, 2);
  }
  write64(addr: number): void {
    this.#no(addr, 8);
  }
  read(addr: number, _dst: Uint8Array, _o?: number, length = 0): void {
    this.#no(addr, length);
  }
  write(addr: number, _src: Uint8Array, _o?: number, length = 0): void {
    this.#no(addr, length);
  }
  load16Acquire(addr: number): number {
    return this.#no(addr, 2);
  }
  store16Release(addr: number): void {
    this.#no(addr, 2);
  }
  load32Acquire(addr: number): number {
    return this.#no(addr, 4);
  }
  store32Release(addr: number, value: number): void {
    this.write32(addr, value);
  }
}

/** A host's view of the fabric: its bus (RAM and the three BARs), its MSI page, and its pending vectors. */
export class BridgeHostView {
  readonly bus: BusMap;
  readonly ram: ArrayBufferMemory;
  readonly bar: readonly [number, number, number];
  readonly #i32: Int32Array;
  readonly #k: number;

  constructor(link: NtbBridgeLink, k: 0 | 1, lay: BridgeBarLayout, peerIrq: NtbLine) {
    const c = link.config;
    const h = c.hosts[k];
    const j = (1 - k) as 0 | 1;
    this.#i32 = new Int32Array(link.fabric);
    this.#k = k;
    this.ram = new ArrayBufferMemory(link.memory[k], { base: h.ramBase, name: `HOST${k + 1} RAM` });
    const bridgeRam = new ArrayBufferMemory(link.bridgeMemory, { base: c.bridgeRamBase, name: 'bridge RAM' });
    const peer = new HostTarget(link, j, peerIrq);
    const bar = (n: number): number => h.barBase + n * c.barStride;
    this.bar = [bar(0), bar(1), bar(2)];
    const epcWords = new Int32Array(link.fabric, epcOffset(k), F.EPC_SIZE >> 2);
    const atuWords = new Int32Array(link.fabric, epcOffset(j) + F.EPC_ATU, 1 + NTB_BRIDGE_ATU_SLOTS * F.ATU_SLOT_WORDS);
    const i32 = this.#i32;
    // BAR0 / BAR1: inbound translations onto bridge RAM (the function's BAR table).
    const inbound = (n: number, size: number): NtbWindowMemory =>
      new NtbWindowMemory({
        xlat: epcWords,
        base: bar(n),
        size,
        target: bridgeRam,
        name: `HOST${k + 1} BAR${n}`,
        resolve: () => {
          const b = barOf(i32, k, n);
          return { addr: b.phys, size: Math.min(b.size, size) };
        },
      });
    // BAR2 from MW1_OFFSET: through the other controller's outbound ATU onto the other host's RAM.
    const mwBase = bar(2) + lay.mw1Offset;
    const mw = new NtbWindowMemory({
      xlat: atuWords,
      base: mwBase,
      size: c.mwSize,
      target: peer.ram,
      name: `HOST${k + 1} MW1 aperture`,
      resolve: () => {
        const b = barOf(i32, k, 2);
        if (b.size === 0) return { addr: 0, size: 0 };
        const m = atuLookup(i32, j, b.phys + lay.mw1Offset);
        return { addr: m.addr, size: Math.min(m.size, c.mwSize) };
      },
    });
    this.bus = new BusMap(`HOST${k + 1} bus`, [
      { base: h.ramBase, size: h.ramSize, memory: this.ram },
      { base: bar(0), size: lay.bar0Size, memory: inbound(0, lay.bar0Size) },
      { base: bar(1), size: lay.spadSize, memory: inbound(1, lay.spadSize) },
      { base: bar(2), size: lay.mw1Offset, memory: new DoorbellAperture(link, k, bar(2), lay.mw1Offset, peer) },
      { base: mwBase, size: c.mwSize, memory: mw },
    ]);
  }

  /** True while the function is bound (the host's BARs answer). */
  get bound(): boolean {
    return Atomics.load(this.#i32, (epcOffset(this.#k) + F.EPC_BOUND) >> 2) === 1;
  }

  /** Takes and clears the pending MSI-X vectors. */
  takePending(): number {
    return Atomics.exchange(this.#i32, (epcOffset(this.#k) + F.EPC_MSI_PENDING) >> 2, 0) >>> 0;
  }

  /** Where the function's MSI-X capability puts the table in BAR0. */
  get msixTableOffset(): number {
    return Atomics.load(this.#i32, (epcOffset(this.#k) + F.EPC_MSIX_TABLE) >> 2);
  }

  /** `pci_alloc_irq_vectors` finished: the function may now send vectors below `n`. */
  setMsixVectors(n: number): void {
    Atomics.store(this.#i32, (epcOffset(this.#k) + F.EPC_MSIX_VECTORS) >> 2, n);
  }
}
