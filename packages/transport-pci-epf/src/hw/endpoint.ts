import { ArrayBufferMemory, MAX_BUS_ADDR, RegionMemory, type GuestMemory } from '@x/vring';
import { PCI_CAP_ID, PCI_CFG, PCI_MSI, PCI_MSIX, RC_MSI_ADDRESS } from '../constants.js';
import { PciEpfError, isPciEpfError } from '../errors.js';
import { BAR_F, Fabric, MBOX_OP, MBOX_STATUS, ROUTE_ENABLED } from '../internal/fabric.js';
import { alignDown, alignUp, checkInt, hex, isThenable, nextPow2 } from '../internal/util.js';
import { systemClock, type PciClock, type PciEpfLines, type PciLineListener } from '../wire.js';
import {
  PCI_FABRIC,
  PCI_FABRIC_EP_EVENT,
  PCI_FABRIC_MAGIC,
  PCI_FABRIC_MBOX_ENTRY,
  PCI_FABRIC_RC_EVENT,
  checkLink,
  resolvePciEpfLinkConfig,
  type PciEpcFeatures,
  type PciEpfLink,
  type PciEpfLinkConfig,
} from './link.js';

/**
 * The function's configuration header (Linux `struct pci_epf_header`).
 *
 * @public
 */
export interface PciEpfHeader {
  /** Vendor id. */
  readonly vendorId: number;
  /** Device id. */
  readonly deviceId: number;
  /** Revision id. Default 0. */
  readonly revisionId?: number;
  /** Programming interface. Default 0. */
  readonly progIf?: number;
  /** Sub-class code. Default 0. */
  readonly subclass?: number;
  /** Base class code. Default 0. */
  readonly baseClass?: number;
  /** Subsystem vendor id. Default 0. */
  readonly subsysVendorId?: number;
  /** Subsystem id. Default 0. */
  readonly subsysId?: number;
  /** Interrupt pin: 0 none, 1 INTA … 4 INTD. Default 1 when the controller has INTx. */
  readonly interruptPin?: number;
}

/** What a function asks of {@link PciEndpointController.setBar} (`struct pci_epf_bar`). @public */
export interface PciEpfBarRequest {
  /** Which BAR (0..5). */
  readonly barno: number;
  /** Bytes wanted; rounded up to a power of two and to the controller's `barAlign`. */
  readonly size: number;
  /** A 64-bit BAR (takes `barno + 1` too). Forced when the controller's BAR is `only64`. */
  readonly is64?: boolean;
  /** Prefetchable. Default false. */
  readonly prefetch?: boolean;
}

/** A BAR the function set up: its backing in EP memory. @public */
export interface PciEpfBar {
  /** Which BAR. */
  readonly barno: number;
  /** Size (a power of two). */
  readonly size: number;
  /** 64-bit BAR. */
  readonly is64: boolean;
  /** EP-local physical address of the backing (Linux `epf_bar->phys_addr`). */
  readonly phys: number;
  /** The backing as the endpoint sees it (addresses from `phys`); the host reaches the same bytes through the BAR. */
  readonly memory: ArrayBufferMemory;
}

/**
 * One outbound mapping (Linux `struct pci_epc_map` of `pci_epc_mem_map`): the RC bus
 * range asked for, the aligned range the window really maps, and where it sits in the
 * EP's outbound address space.
 *
 * @public
 */
export interface PciEpcMap {
  /** The RC bus address asked for. */
  readonly pciAddr: number;
  /** The bytes asked for. */
  readonly size: number;
  /** The RC bus address the window starts at (`pciAddr` aligned down). */
  readonly mapPciAddr: number;
  /** The bytes the window maps (aligned up). */
  readonly mapSize: number;
  /** EP physical address of the window's start. */
  readonly physBase: number;
  /** EP physical address of `pciAddr`: `physBase + (pciAddr − mapPciAddr)`, the kept offset. */
  readonly physAddr: number;
  /** Window index. */
  readonly window: number;
}

/** An interrupt the endpoint raises to the host (`enum pci_epc_irq_type`). @public */
export type PciEpcIrqType = 'intx' | 'msi' | 'msix';

/**
 * The function's handler of an emulated-register window: called in order for each host
 * access; a read answers the value (a non-posted completion), a write is posted. Either
 * may be asynchronous: later requests wait.
 *
 * @public
 */
export interface PciEpcTrapHandler {
  /** A host read of `width` bytes at `offset` (from the window's start). */
  read(offset: number, width: 1 | 2 | 4): number | Promise<number>;
  /** A host write. */
  write(offset: number, width: 1 | 2 | 4, value: number): void | Promise<void>;
}

/** One DMA transfer (a dmaengine `dma_async_tx_descriptor` of the EPC's eDMA). @public */
export interface PciEpcDmaTransfer {
  /** `to-rc` copies `local` into RC memory; `from-rc` copies RC memory into `local`. */
  readonly direction: 'to-rc' | 'from-rc';
  /** RC bus address. */
  readonly rcAddr: number;
  /** The endpoint's buffer. */
  readonly local: Uint8Array;
}

/**
 * The controller's DMA engine: transfers queue as descriptors and complete later, in
 * order; the promise settles from the engine's completion interrupt.
 *
 * @public
 */
export interface PciEpcDma {
  /** Queues a transfer. Rejects with `DMA_ERROR` (cause: the bus error) or `LINK_DOWN`. */
  transfer(t: PciEpcDmaTransfer): Promise<void>;
  /** Transfers queued and not yet complete. */
  readonly pending: number;
}

/** Counters of a controller. @public */
export interface PciEpcStats {
  /** Interrupts raised, by type. */
  readonly irqs: { intx: number; msi: number; msix: number };
  /** MSI-X raises that found the vector masked (its pending bit set instead). */
  irqsMasked: number;
  /** Outbound mappings made. */
  maps: number;
  /** Outbound mappings removed. */
  unmaps: number;
  /** Doorbell events delivered to the function. */
  doorbells: number;
  /** Emulated-register requests served. */
  trapRequests: number;
  /** DMA transfers completed. */
  dmaTransfers: number;
  /** Bytes the DMA engine moved. */
  dmaBytes: number;
}

/**
 * The endpoint controller as an endpoint function sees it: Linux's `pci_epc_*` API
 * (`pci_epc_write_header`, `pci_epc_set_bar`, `pci_epc_set_msi`/`_msix`,
 * `pci_epc_raise_irq`, `pci_epc_mem_map`, `pci_epc_map_addr`,
 * `pci_epc_get_first_free_bar`), plus the mainline doorbell, register emulation and an
 * eDMA. Functions (the RFC's vhost function, the virtio-pci function, an NTB bridge)
 * are written against this interface only.
 *
 * @public
 */
export interface PciEndpointController {
  /** What the controller can do. */
  readonly features: PciEpcFeatures;
  /** EP local memory (addresses from `epMemoryBase`). */
  readonly memory: ArrayBufferMemory;
  /** The EP's outbound address space: window i at `outboundBase + i × window size`, mapped onto RC memory. */
  readonly outbound: GuestMemory;
  /** True once started and until stopped. */
  readonly linkUp: boolean;
  /** Counters. */
  readonly stats: PciEpcStats;
  /**
   * True while host requests to the emulated-register window wait or are served. A
   * function polling plain BAR memory waits for it to clear, so a host write there is
   * never seen before an earlier write to an emulated register (PCIe orders posted writes).
   */
  readonly requestsPending: boolean;
  /** The DMA engine, when the controller has one. */
  readonly dma: PciEpcDma | undefined;
  /** Writes the configuration header (`pci_epc_write_header`). */
  writeHeader(header: PciEpfHeader): void;
  /** The first BAR at or after `from` a function may use, or -1 (`pci_epc_get_next_free_bar`). */
  firstFreeBar(from?: number): number;
  /** Allocates the backing and programs the BAR (`pci_epf_alloc_space` + `pci_epc_set_bar`). */
  setBar(request: PciEpfBarRequest): PciEpfBar;
  /** Clears a BAR and frees its backing (`pci_epc_clear_bar` + `pci_epf_free_space`). */
  clearBar(barno: number): void;
  /** Adds an MSI capability asking for `vectors` (`pci_epc_set_msi`). */
  setMsi(vectors: number): void;
  /** Adds an MSI-X capability with its table and PBA in a BAR the function set (`pci_epc_set_msix`). */
  setMsix(vectors: number, barno: number, tableOffset: number, pbaOffset: number): void;
  /** MSI vectors the host enabled, 0 when disabled (`pci_epc_get_msi`). */
  getMsi(): number;
  /** MSI-X vectors the host enabled, 0 when disabled (`pci_epc_get_msix`). */
  getMsix(): number;
  /** True when the host allows INTx (pin set, INTx not disabled in the command register). */
  intxEnabled(): boolean;
  /** Raises an interrupt (`pci_epc_raise_irq`): `num` is 1-based for MSI / MSI-X, ignored for INTx. */
  raiseIrq(type: PciEpcIrqType, num?: number): void;
  /** Adds a capability of `length` bytes to the chain; returns its configuration offset. */
  addCapability(id: number, length: number): number;
  /** Writes function-owned configuration bytes (a capability's body). */
  writeConfig(offset: number, width: 1 | 2 | 4, value: number): void;
  /** Reads configuration space as the host left it. */
  readConfig(offset: number, width: 1 | 2 | 4): number;
  /** Maps `size` bytes at RC bus address `pciAddr` through a free window, aligning down and keeping the offset (`pci_epc_mem_map`). */
  map(pciAddr: number, size: number): PciEpcMap;
  /** Removes a mapping made by {@link PciEndpointController.map} (`pci_epc_mem_unmap`). */
  unmap(map: PciEpcMap): void;
  /** True when {@link PciEndpointController.map} of this range fits one window and RC memory answers there. */
  canMap(pciAddr: number, size: number): boolean;
  /** Raw mapping of window `window` onto `pciAddr` (`pci_epc_map_addr`): address and size must be aligned. */
  mapAddr(window: number, pciAddr: number, size: number): PciEpcMap;
  /** Raw unmapping of a window (`pci_epc_unmap_addr`). */
  unmapAddr(window: number): void;
  /** Routes host writes to `[offset, offset + size)` of a BAR to the function's doorbell handler (mainline doorbell). */
  setDoorbell(barno: number, offset: number, size: number, handler: (events: number) => void): void;
  /** Routes host accesses to a BAR window to an emulated-register handler. */
  setTrap(barno: number, offset: number, size: number, handler: PciEpcTrapHandler): void;
  /** Makes one byte of a BAR read-to-clear for the host (an ISR register). */
  setReadToClear(barno: number, offset: number): void;
  /** Sets bits of a BAR byte atomically (raising ISR bits the host clears by reading). */
  orBarByte(barno: number, offset: number, bits: number): void;
  /** Sends the model's command-completion message to the root complex. */
  sendCommandDone(): void;
  /** Brings the link up (`pci_epc_start`). */
  start(): void;
  /** Takes the link down (`pci_epc_stop`). */
  stop(): void;
}

/** Options of {@link PciEpc}. @public */
export interface PciEpcOptions {
  /** The link (its description and bytes). */
  readonly link: PciEpfLink;
  /** The link's wires. */
  readonly lines: PciEpfLines;
  /** The EP's clock (DMA engine). Default `systemClock`. */
  readonly clock?: PciClock;
  /** DMA descriptors processed per engine tick. Default 16. */
  readonly dmaBurst?: number;
}

interface BarSlot {
  bar: PciEpfBar | undefined;
  upperOf: number;
  reserved: boolean;
}

/**
 * The endpoint controller model (a DWC-like EPC): configuration space, BARs backed by
 * EP memory, outbound windows over `@x/vring`'s `RegionMemory` onto RC memory, MSI /
 * MSI-X / INTx towards the host, the mainline doorbell, register emulation and an
 * optional DMA engine. It touches only the link's shared bytes and wires.
 *
 * @public
 */
export class PciEpc implements PciEndpointController {
  /** {@inheritDoc PciEndpointController.features} */
  readonly features: PciEpcFeatures;
  /** The link description. */
  readonly config: PciEpfLinkConfig;
  /** {@inheritDoc PciEndpointController.memory} */
  readonly memory: ArrayBufferMemory;
  /** {@inheritDoc PciEndpointController.outbound} */
  readonly outbound: RegionMemory;
  /** {@inheritDoc PciEndpointController.stats} */
  readonly stats: PciEpcStats = {
    irqs: { intx: 0, msi: 0, msix: 0 },
    irqsMasked: 0,
    maps: 0,
    unmaps: 0,
    doorbells: 0,
    trapRequests: 0,
    dmaTransfers: 0,
    dmaBytes: 0,
  };
  /** Errors a doorbell or trap handler threw (the controller keeps serving). */
  readonly errors: unknown[] = [];

  readonly #fabric: Fabric;
  readonly #lines: PciEpfLines;
  readonly #clock: PciClock;
  readonly #rcBus: ArrayBufferMemory;
  readonly #slots: BarSlot[];
  readonly #windows: Array<PciEpcMap | undefined>;
  readonly #allocs: Array<{ off: number; size: number }> = [];
  readonly #dma: EpcDma | undefined;
  #capLast = -1;
  #capNext: number = PCI_CFG.CAP_START;
  #msiCap = -1;
  #msixCap = -1;
  #doorbell: ((events: number) => void) | undefined;
  #trap: PciEpcTrapHandler | undefined;
  #trapBusy = false;
  #trapAgain = false;
  #dbHeld = 0;
  #listener: PciLineListener | undefined;
  #linkUp = false;
  #closed = false;

  constructor(options: PciEpcOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    checkLink(options.link);
    this.config = resolvePciEpfLinkConfig(options.link.config);
    this.features = this.config.epc;
    const { buffers } = options.link;
    this.#lines = options.lines;
    this.#clock = options.clock ?? systemClock;
    this.#fabric = new Fabric(buffers.fabric);
    this.memory = new ArrayBufferMemory(buffers.epMemory, { base: this.config.epMemoryBase, byteLength: this.config.epMemorySize, name: 'EP memory' });
    this.#rcBus = new ArrayBufferMemory(buffers.rcMemory, { base: this.config.rcMemoryBase, byteLength: this.config.rcMemorySize, name: 'RC memory (over the link)' });
    const ob = this.features.outbound;
    this.outbound = new RegionMemory({ name: 'EP outbound space', alignment: ob.align, maxRegions: ob.count });
    this.#windows = new Array<PciEpcMap | undefined>(ob.count).fill(undefined);
    this.#slots = this.features.bars.map((b) => ({ bar: undefined, upperOf: -1, reserved: b.type === 'reserved' }));
    this.#dma = this.features.dma
      ? new EpcDma(
          () => this.#linkUp,
          (bytes) => {
            this.stats.dmaTransfers++;
            this.stats.dmaBytes += bytes;
          },
          this.#rcBus,
          this.#clock,
          options.dmaBurst ?? 16,
        )
      : undefined;
    this.#reset();
    this.#listener = this.#lines.toEp.listen(() => this.#onToEp());
  }

  /** Controller power-on: configuration space, routing and pending words cleared. */
  #reset(): void {
    const f = this.#fabric;
    f.u8.fill(0, 0, PCI_FABRIC.SIZE);
    f.store(PCI_FABRIC.VERSION, 1);
    f.store(PCI_FABRIC.MAGIC, PCI_FABRIC_MAGIC);
    f.cfgWriteDbi(PCI_CFG.HEADER_TYPE, 1, 0);
    f.cfgSetMask(PCI_CFG.COMMAND, 2, PCI_CFG.COMMAND_MEMORY | PCI_CFG.COMMAND_MASTER | PCI_CFG.COMMAND_INTX_DISABLE);
    f.cfgSetMask(PCI_CFG.INTERRUPT_LINE, 1, 0xff);
    // Reserved BARs: the controller's own registers show to the host (some fixed bytes).
    this.features.bars.forEach((b, n) => {
      if (b.type !== 'reserved') return;
      const bar = this.#program(n, b.size!, b.only64 === true, false);
      for (let o = 0; o + 4 <= bar.size; o += 4) bar.memory.write32(bar.phys + o, (0xc0de_0000 | (n << 12) | (o & 0xfff)) >>> 0);
      this.#slots[n]!.bar = bar;
      if (bar.is64) this.#slots[n + 1]!.upperOf = n;
    });
  }

  /** {@inheritDoc PciEndpointController.linkUp} */
  get linkUp(): boolean {
    return this.#linkUp;
  }

  /** {@inheritDoc PciEndpointController.dma} */
  get dma(): PciEpcDma | undefined {
    return this.#dma;
  }

  /** {@inheritDoc PciEndpointController.requestsPending} */
  get requestsPending(): boolean {
    const f = this.#fabric;
    return this.#trapBusy || f.load(PCI_FABRIC.MBOX_HEAD) !== f.load(PCI_FABRIC.MBOX_TAIL);
  }

  /** True while the controller has work in flight (emulated-register requests, DMA). */
  get busy(): boolean {
    const f = this.#fabric;
    return (
      this.#trapBusy ||
      this.#dbHeld !== 0 ||
      f.load(PCI_FABRIC.MBOX_HEAD) !== f.load(PCI_FABRIC.MBOX_TAIL) ||
      (this.#dma?.pending ?? 0) > 0 ||
      f.load(PCI_FABRIC.DB_PENDING) !== 0
    );
  }

  #checkOpen(): void {
    if (this.#closed) throw new PciEpfError('BAD_STATE', 'the controller is closed');
  }

  // ---- configuration space -------------------------------------------------------------

  /** {@inheritDoc PciEndpointController.writeHeader} */
  writeHeader(header: PciEpfHeader): void {
    this.#checkOpen();
    if (typeof header !== 'object' || header === null) throw new TypeError('header must be an object');
    const f = this.#fabric;
    const u16 = (name: string, v: number | undefined, d = 0): number => checkInt(`header.${name}`, v ?? d, 0, 0xffff);
    const u8 = (name: string, v: number | undefined, d = 0): number => checkInt(`header.${name}`, v ?? d, 0, 0xff);
    f.cfgWriteDbi(PCI_CFG.VENDOR_ID, 2, u16('vendorId', header.vendorId));
    f.cfgWriteDbi(PCI_CFG.DEVICE_ID, 2, u16('deviceId', header.deviceId));
    f.cfgWriteDbi(PCI_CFG.REVISION_ID, 1, u8('revisionId', header.revisionId));
    f.cfgWriteDbi(PCI_CFG.CLASS_PROG, 1, u8('progIf', header.progIf));
    f.cfgWriteDbi(PCI_CFG.SUBCLASS, 1, u8('subclass', header.subclass));
    f.cfgWriteDbi(PCI_CFG.BASE_CLASS, 1, u8('baseClass', header.baseClass));
    f.cfgWriteDbi(PCI_CFG.SUBSYSTEM_VENDOR_ID, 2, u16('subsysVendorId', header.subsysVendorId));
    f.cfgWriteDbi(PCI_CFG.SUBSYSTEM_ID, 2, u16('subsysId', header.subsysId));
    const pin = checkInt('header.interruptPin', header.interruptPin ?? (this.features.intx ? 1 : 0), 0, 4);
    if (pin !== 0 && !this.features.intx) throw new PciEpfError('NOT_SUPPORTED', 'header.interruptPin: the controller has no INTx');
    f.cfgWriteDbi(PCI_CFG.INTERRUPT_PIN, 1, pin);
  }

  /** {@inheritDoc PciEndpointController.readConfig} */
  readConfig(offset: number, width: 1 | 2 | 4): number {
    checkInt('offset', offset, 0, PCI_CFG.SIZE - width);
    return this.#fabric.cfgRead(offset, width);
  }

  /** {@inheritDoc PciEndpointController.writeConfig} */
  writeConfig(offset: number, width: 1 | 2 | 4, value: number): void {
    this.#checkOpen();
    checkInt('offset', offset, PCI_CFG.CAP_START, PCI_CFG.SIZE - width);
    this.#fabric.cfgWriteDbi(offset, width, value);
  }

  /** {@inheritDoc PciEndpointController.addCapability} */
  addCapability(id: number, length: number): number {
    this.#checkOpen();
    checkInt('id', id, 1, 0xff);
    checkInt('length', length, 2, 0xc0);
    const off = this.#capNext;
    const end = alignUp(off + length, 4);
    if (end > 0x100) throw new PciEpfError('BAD_CONFIG', `no room for a ${length}-byte capability in configuration space`);
    const f = this.#fabric;
    f.cfgWriteDbi(off, 1, id);
    f.cfgWriteDbi(off + 1, 1, 0);
    if (this.#capLast < 0) {
      f.cfgWriteDbi(PCI_CFG.CAPABILITY_LIST, 1, off);
      f.cfgWriteDbi(PCI_CFG.STATUS, 2, f.cfgRead(PCI_CFG.STATUS, 2) | PCI_CFG.STATUS_CAP_LIST);
    } else {
      f.cfgWriteDbi(this.#capLast + 1, 1, off);
    }
    this.#capLast = off;
    this.#capNext = end;
    return off;
  }

  // ---- BARs -------------------------------------------------------------------------------

  /** {@inheritDoc PciEndpointController.firstFreeBar} */
  firstFreeBar(from = 0): number {
    checkInt('from', from, 0, 6);
    for (let n = from; n < 6; n++) {
      const s = this.#slots[n]!;
      if (s.reserved || s.bar !== undefined || s.upperOf >= 0) continue;
      if (this.features.bars[n]!.only64 === true && n === 5) continue;
      return n;
    }
    return -1;
  }

  /** {@inheritDoc PciEndpointController.setBar} */
  setBar(request: PciEpfBarRequest): PciEpfBar {
    this.#checkOpen();
    if (typeof request !== 'object' || request === null) throw new TypeError('request must be an object');
    const n = checkInt('request.barno', request.barno, 0, 5);
    checkInt('request.size', request.size, 1, 2 ** 30);
    const feat = this.features.bars[n]!;
    const s = this.#slots[n]!;
    if (s.reserved) throw new PciEpfError('BAD_STATE', `BAR ${n} is reserved by the controller`);
    if (s.bar !== undefined || s.upperOf >= 0) throw new PciEpfError('BAD_STATE', `BAR ${n} is in use`);
    const is64 = request.is64 === true || feat.only64 === true;
    if (is64) {
      if (n === 5) throw new PciEpfError('BAD_CONFIG', 'BAR 5 cannot be 64-bit');
      const u = this.#slots[n + 1]!;
      if (u.reserved || u.bar !== undefined || u.upperOf >= 0) throw new PciEpfError('BAD_STATE', `BAR ${n + 1} (the upper half of 64-bit BAR ${n}) is in use`);
    }
    let size = Math.max(nextPow2(request.size), this.features.barAlign, 16);
    if (feat.type === 'fixed') {
      if (size > feat.size!) throw new PciEpfError('BAD_CONFIG', `BAR ${n} has a fixed size of ${feat.size} bytes; ${request.size} asked`);
      size = feat.size!;
    }
    const bar = this.#program(n, size, is64, request.prefetch === true);
    s.bar = bar;
    if (is64) this.#slots[n + 1]!.upperOf = n;
    return bar;
  }

  #program(n: number, size: number, is64: boolean, prefetch: boolean): PciEpfBar {
    const off = this.#alloc(size, Math.max(size, this.features.barAlign));
    const phys = this.config.epMemoryBase + off;
    const memory = new ArrayBufferMemory(this.memory.buffer, { base: phys, byteOffset: off, byteLength: size, name: `BAR ${n} backing` });
    memory.view(phys, size).fill(0);
    const f = this.#fabric;
    const flags = (is64 ? PCI_CFG.BAR_MEM_TYPE_64 : 0) | (prefetch ? PCI_CFG.BAR_MEM_PREFETCH : 0);
    const reg = PCI_CFG.BAR0 + 4 * n;
    f.cfgWriteDbi(reg, 4, flags);
    f.cfgSetMask(reg, 4, ~(size - 1) & 0xffff_fff0);
    if (is64) {
      f.cfgWriteDbi(reg + 4, 4, 0);
      f.cfgSetMask(reg + 4, 4, 0xffff_ffff);
      f.setBar(n + 1, BAR_F.UPPER, 0, 0);
    }
    f.setBar(n, BAR_F.PRESENT | (is64 ? BAR_F.IS64 : 0) | (prefetch ? BAR_F.PREFETCH : 0), size, off);
    return Object.freeze({ barno: n, size, is64, phys, memory });
  }

  /** {@inheritDoc PciEndpointController.clearBar} */
  clearBar(barno: number): void {
    const n = checkInt('barno', barno, 0, 5);
    const s = this.#slots[n]!;
    if (s.bar === undefined || s.reserved) return;
    const bar = s.bar;
    const f = this.#fabric;
    const reg = PCI_CFG.BAR0 + 4 * n;
    f.cfgWriteDbi(reg, 4, 0);
    f.cfgSetMask(reg, 4, 0);
    f.setBar(n, 0, 0, 0);
    if (bar.is64) {
      f.cfgWriteDbi(reg + 4, 4, 0);
      f.cfgSetMask(reg + 4, 4, 0);
      f.setBar(n + 1, 0, 0, 0);
      this.#slots[n + 1]!.upperOf = -1;
    }
    this.#free(bar.phys - this.config.epMemoryBase);
    s.bar = undefined;
  }

  #alloc(size: number, align: number): number {
    const sorted = [...this.#allocs].sort((a, b) => a.off - b.off);
    let at = 0;
    for (const a of sorted) {
      const cand = alignUp(at, align);
      if (cand + size <= a.off) {
        at = cand;
        break;
      }
      at = a.off + a.size;
    }
    at = alignUp(at, align);
    if (at + size > this.config.epMemorySize) throw new PciEpfError('BAD_CONFIG', `EP memory (${this.config.epMemorySize} bytes) has no room for a ${size}-byte BAR`);
    this.#allocs.push({ off: at, size });
    return at;
  }

  #free(off: number): void {
    const i = this.#allocs.findIndex((a) => a.off === off);
    if (i >= 0) this.#allocs.splice(i, 1);
  }

  #bar(n: number): PciEpfBar {
    const b = this.#slots[n]?.bar;
    if (b === undefined) throw new PciEpfError('BAD_STATE', `BAR ${n} is not set`);
    return b;
  }

  // ---- interrupts ----------------------------------------------------------------------------

  /** {@inheritDoc PciEndpointController.setMsi} */
  setMsi(vectors: number): void {
    this.#checkOpen();
    if (!this.features.msi) throw new PciEpfError('NOT_SUPPORTED', 'the controller is not MSI capable');
    checkInt('vectors', vectors, 1, 32);
    const mmc = Math.log2(nextPow2(vectors));
    const f = this.#fabric;
    if (this.#msiCap < 0) this.#msiCap = this.addCapability(PCI_CAP_ID.MSI, PCI_MSI.SIZE);
    const c = this.#msiCap;
    f.cfgWriteDbi(c + PCI_MSI.FLAGS, 2, PCI_MSI.FLAGS_64BIT | (mmc << 1));
    f.cfgSetMask(c + PCI_MSI.FLAGS, 2, PCI_MSI.FLAGS_ENABLE | PCI_MSI.FLAGS_QSIZE);
    f.cfgSetMask(c + PCI_MSI.ADDRESS_LO, 4, 0xffff_fffc);
    f.cfgSetMask(c + PCI_MSI.ADDRESS_HI, 4, 0xffff_ffff);
    f.cfgSetMask(c + PCI_MSI.DATA, 2, 0xffff);
  }

  /** {@inheritDoc PciEndpointController.setMsix} */
  setMsix(vectors: number, barno: number, tableOffset: number, pbaOffset: number): void {
    this.#checkOpen();
    if (!this.features.msix) throw new PciEpfError('NOT_SUPPORTED', 'the controller is not MSI-X capable');
    checkInt('vectors', vectors, 1, 2048);
    const bar = this.#bar(checkInt('barno', barno, 0, 5));
    checkInt('tableOffset', tableOffset, 0, bar.size - vectors * PCI_MSIX.ENTRY_SIZE);
    checkInt('pbaOffset', pbaOffset, 0, bar.size - alignUp(vectors, 64) / 8);
    if (tableOffset % 8 !== 0 || pbaOffset % 8 !== 0) throw new RangeError('tableOffset and pbaOffset must be multiples of 8');
    const f = this.#fabric;
    if (this.#msixCap < 0) this.#msixCap = this.addCapability(PCI_CAP_ID.MSIX, PCI_MSIX.SIZE);
    const c = this.#msixCap;
    f.cfgWriteDbi(c + PCI_MSIX.FLAGS, 2, vectors - 1);
    f.cfgSetMask(c + PCI_MSIX.FLAGS, 2, PCI_MSIX.FLAGS_ENABLE | PCI_MSIX.FLAGS_MASKALL);
    f.cfgWriteDbi(c + PCI_MSIX.TABLE, 4, tableOffset | barno);
    f.cfgWriteDbi(c + PCI_MSIX.PBA, 4, pbaOffset | barno);
    // Every vector starts masked (PCIe r6 §7.7.2.2: Mask Bit resets to 1).
    for (let v = 0; v < vectors; v++) bar.memory.write32(bar.phys + tableOffset + v * PCI_MSIX.ENTRY_SIZE + PCI_MSIX.ENTRY_VECTOR_CTRL, 1);
  }

  /** {@inheritDoc PciEndpointController.getMsi} */
  getMsi(): number {
    if (this.#msiCap < 0) return 0;
    const flags = this.#fabric.cfgRead(this.#msiCap + PCI_MSI.FLAGS, 2);
    if ((flags & PCI_MSI.FLAGS_ENABLE) === 0) return 0;
    return 1 << ((flags & PCI_MSI.FLAGS_QSIZE) >> 4);
  }

  /** {@inheritDoc PciEndpointController.getMsix} */
  getMsix(): number {
    if (this.#msixCap < 0) return 0;
    const flags = this.#fabric.cfgRead(this.#msixCap + PCI_MSIX.FLAGS, 2);
    if ((flags & PCI_MSIX.FLAGS_ENABLE) === 0) return 0;
    return (flags & PCI_MSIX.FLAGS_QSIZE) + 1;
  }

  /** {@inheritDoc PciEndpointController.intxEnabled} */
  intxEnabled(): boolean {
    const f = this.#fabric;
    return this.features.intx && f.cfgRead(PCI_CFG.INTERRUPT_PIN, 1) !== 0 && (f.cfgRead(PCI_CFG.COMMAND, 2) & PCI_CFG.COMMAND_INTX_DISABLE) === 0;
  }

  /** {@inheritDoc PciEndpointController.raiseIrq} */
  raiseIrq(type: PciEpcIrqType, num = 0): void {
    this.#checkOpen();
    if (!this.#linkUp) throw new PciEpfError('LINK_DOWN', 'raiseIrq: the link is down');
    const f = this.#fabric;
    const cmd = f.cfgRead(PCI_CFG.COMMAND, 2);
    if (type === 'intx') {
      if (!this.features.intx) throw new PciEpfError('NOT_SUPPORTED', 'the controller has no INTx');
      if (!this.intxEnabled()) throw new PciEpfError('IRQ_NOT_ENABLED', 'INTx is disabled by the host');
      f.or(PCI_FABRIC.IRQ_INTX, 1);
      this.stats.irqs.intx++;
      this.#lines.toRc.ring();
      return;
    }
    if ((cmd & PCI_CFG.COMMAND_MASTER) === 0) throw new PciEpfError('IRQ_NOT_ENABLED', `${type}: bus mastering is off (the host has not enabled the function)`);
    if (type === 'msi') {
      if (!this.features.msi || this.#msiCap < 0) throw new PciEpfError('NOT_SUPPORTED', 'no MSI capability');
      const n = this.getMsi();
      if (n === 0) throw new PciEpfError('IRQ_NOT_ENABLED', 'MSI is disabled by the host');
      checkInt('num', num, 1, 32);
      if (num > n) throw new PciEpfError('IRQ_NOT_ENABLED', `MSI vector ${num}: the host enabled ${n}`);
      const c = this.#msiCap;
      this.#checkMsiAddress(f.cfgRead(c + PCI_MSI.ADDRESS_LO, 4), f.cfgRead(c + PCI_MSI.ADDRESS_HI, 4));
      const data = (f.cfgRead(c + PCI_MSI.DATA, 2) & ~(n - 1)) | (num - 1);
      this.stats.irqs.msi++;
      this.#post(data);
      return;
    }
    if (type === 'msix') {
      if (!this.features.msix || this.#msixCap < 0) throw new PciEpfError('NOT_SUPPORTED', 'no MSI-X capability');
      const n = this.getMsix();
      if (n === 0) throw new PciEpfError('IRQ_NOT_ENABLED', 'MSI-X is disabled by the host');
      checkInt('num', num, 1, 2048);
      if (num > n) throw new PciEpfError('IRQ_NOT_ENABLED', `MSI-X vector ${num}: the table has ${n}`);
      const c = this.#msixCap;
      const table = f.cfgRead(c + PCI_MSIX.TABLE, 4);
      const bar = this.#bar(table & PCI_MSIX.BIR_MASK);
      const e = bar.phys + (table & ~PCI_MSIX.BIR_MASK) + (num - 1) * PCI_MSIX.ENTRY_SIZE;
      const masked = (f.cfgRead(c + PCI_MSIX.FLAGS, 2) & PCI_MSIX.FLAGS_MASKALL) !== 0 || (bar.memory.read32(e + PCI_MSIX.ENTRY_VECTOR_CTRL) & 1) !== 0;
      if (masked) {
        // PCIe: a masked vector's message is held as its pending bit.
        const pba = f.cfgRead(c + PCI_MSIX.PBA, 4);
        const pbar = this.#bar(pba & PCI_MSIX.BIR_MASK);
        const at = pbar.phys + (pba & ~PCI_MSIX.BIR_MASK) + ((num - 1) >>> 3);
        pbar.memory.write8(at, pbar.memory.read8(at) | (1 << ((num - 1) & 7)));
        this.stats.irqsMasked++;
        return;
      }
      this.#checkMsiAddress(bar.memory.read32(e + PCI_MSIX.ENTRY_LOWER_ADDR), bar.memory.read32(e + PCI_MSIX.ENTRY_UPPER_ADDR));
      this.stats.irqs.msix++;
      this.#post(bar.memory.read32(e + PCI_MSIX.ENTRY_DATA));
      return;
    }
    throw new TypeError(`type must be intx, msi or msix, got ${String(type)}`);
  }

  #checkMsiAddress(lo: number, hi: number): void {
    if (lo !== RC_MSI_ADDRESS || hi !== 0) {
      throw new PciEpfError('BUS_ERROR', `MSI write to ${hex(hi)}_${hex(lo)}: not the root complex's interrupt controller`);
    }
  }

  #post(data: number): void {
    if (!(data >= 0 && data < 64)) throw new PciEpfError('BUS_ERROR', `MSI data ${data}: the model's interrupt controller has 64 message slots`);
    this.#fabric.or(PCI_FABRIC.IRQ_MSG + 4 * (data >>> 5), 1 << (data & 31));
    this.#lines.toRc.ring();
  }

  /** {@inheritDoc PciEndpointController.sendCommandDone} */
  sendCommandDone(): void {
    if (!this.#linkUp || this.#closed) return;
    this.#fabric.or(PCI_FABRIC.IRQ_EVENT, PCI_FABRIC_RC_EVENT.CMD_DONE);
    this.#lines.toRc.ring();
  }

  /** {@inheritDoc PciEndpointController.orBarByte} */
  orBarByte(barno: number, offset: number, bits: number): void {
    const bar = this.#bar(checkInt('barno', barno, 0, 5));
    checkInt('offset', offset, 0, bar.size - 1);
    const u8 = new Uint8Array(bar.memory.buffer, bar.memory.byteOffset + offset, 1);
    Atomics.or(u8, 0, bits & 0xff);
  }

  // ---- outbound windows ----------------------------------------------------------------------

  /** EP physical address of window `i`. */
  windowPhys(i: number): number {
    return this.config.outboundBase + i * this.features.outbound.size;
  }

  #rcAnswers(pciAddr: number, size: number): boolean {
    return this.#rcBus.contains(pciAddr, size);
  }

  /** {@inheritDoc PciEndpointController.canMap} */
  canMap(pciAddr: number, size: number): boolean {
    if (!(Number.isInteger(pciAddr) && pciAddr >= 0 && Number.isInteger(size) && size > 0)) return false;
    const { align, size: win } = this.features.outbound;
    const mapPci = alignDown(pciAddr, align);
    const mapSize = alignUp(pciAddr - mapPci + size, align);
    return mapSize <= win && this.#rcAnswers(mapPci, mapSize);
  }

  /** {@inheritDoc PciEndpointController.map} */
  map(pciAddr: number, size: number): PciEpcMap {
    this.#checkOpen();
    checkInt('pciAddr', pciAddr, 0, MAX_BUS_ADDR);
    checkInt('size', size, 1, MAX_BUS_ADDR);
    const { align, size: win } = this.features.outbound;
    const mapPci = alignDown(pciAddr, align);
    const off = pciAddr - mapPci;
    const mapSize = alignUp(off + size, align);
    if (mapSize > win) {
      throw new PciEpfError(
        'WINDOW_TOO_SMALL',
        `mapping ${hex(pciAddr)}+${size}: aligned to ${align} it needs ${mapSize} bytes (${hex(mapPci)}..${hex(mapPci + mapSize)}), a window maps ${win}`,
      );
    }
    const w = this.#windows.indexOf(undefined);
    if (w < 0) throw new PciEpfError('NO_FREE_WINDOW', `mapping ${hex(pciAddr)}+${size}: all ${this.#windows.length} outbound windows are in use`);
    const m = this.mapAddr(w, mapPci, mapSize);
    const full: PciEpcMap = Object.freeze({ ...m, pciAddr, size, physAddr: m.physBase + off });
    this.#windows[w] = full;
    return full;
  }

  /** {@inheritDoc PciEndpointController.unmap} */
  unmap(map: PciEpcMap): void {
    if (typeof map !== 'object' || map === null) throw new TypeError('map must be a PciEpcMap');
    if (this.#windows[map.window] !== map) return;
    this.unmapAddr(map.window);
  }

  /** {@inheritDoc PciEndpointController.mapAddr} */
  mapAddr(window: number, pciAddr: number, size: number): PciEpcMap {
    this.#checkOpen();
    const { align, size: win, count } = this.features.outbound;
    checkInt('window', window, 0, count - 1);
    checkInt('pciAddr', pciAddr, 0, MAX_BUS_ADDR);
    checkInt('size', size, 1, MAX_BUS_ADDR);
    if (pciAddr % align !== 0 || size % align !== 0) {
      throw new PciEpfError('MISALIGNED', `window ${window}: ${hex(pciAddr)}+${hex(size)} is not aligned to the window alignment ${hex(align)}`);
    }
    if (size > win) throw new PciEpfError('WINDOW_TOO_SMALL', `window ${window}: ${size} bytes asked, a window maps ${win}`);
    if (this.#windows[window] !== undefined) throw new PciEpfError('BAD_STATE', `window ${window} is mapped`);
    if (!this.#rcAnswers(pciAddr, size)) {
      throw new PciEpfError('BUS_ERROR', `window ${window}: no RC memory answers at ${hex(pciAddr)}+${hex(size)} (an access would complete with Unsupported Request)`);
    }
    const physBase = this.windowPhys(window);
    this.outbound.map({ busAddr: physBase, size, target: this.#rcBus, targetAddr: pciAddr, name: `window ${window}` });
    this.stats.maps++;
    const m: PciEpcMap = Object.freeze({ pciAddr, size, mapPciAddr: pciAddr, mapSize: size, physBase, physAddr: physBase, window });
    this.#windows[window] = m;
    return m;
  }

  /** {@inheritDoc PciEndpointController.unmapAddr} */
  unmapAddr(window: number): void {
    checkInt('window', window, 0, this.features.outbound.count - 1);
    if (this.outbound.unmap(this.windowPhys(window))) this.stats.unmaps++;
    this.#windows[window] = undefined;
  }

  /** Windows in use. */
  get windowsInUse(): number {
    return this.#windows.filter((w) => w !== undefined).length;
  }

  // ---- doorbell, register emulation, read-to-clear -------------------------------------------

  #route(off: number, barno: number, offset: number, size: number, sizeOff: number, offsetOff: number): void {
    const bar = this.#bar(checkInt('barno', barno, 0, 5));
    checkInt('offset', offset, 0, bar.size - 1);
    checkInt('size', size, 1, bar.size - offset);
    const f = this.#fabric;
    f.store(offsetOff, offset);
    f.store(sizeOff, size);
    f.store(off, ROUTE_ENABLED | barno);
  }

  /** {@inheritDoc PciEndpointController.setDoorbell} */
  setDoorbell(barno: number, offset: number, size: number, handler: (events: number) => void): void {
    this.#checkOpen();
    if (!this.features.doorbell) throw new PciEpfError('NOT_SUPPORTED', 'the controller has no RC-to-EP doorbell (the endpoint must poll)');
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (offset % 4 !== 0) throw new RangeError('offset must be a multiple of 4');
    this.#route(PCI_FABRIC.DB_CFG, barno, offset, size, PCI_FABRIC.DB_SIZE, PCI_FABRIC.DB_OFFSET);
    this.#doorbell = handler;
  }

  /** {@inheritDoc PciEndpointController.setTrap} */
  setTrap(barno: number, offset: number, size: number, handler: PciEpcTrapHandler): void {
    this.#checkOpen();
    if (!this.features.trap) throw new PciEpfError('NOT_SUPPORTED', 'the controller cannot emulate registers');
    if (typeof handler !== 'object' || handler === null || typeof handler.read !== 'function' || typeof handler.write !== 'function') {
      throw new TypeError('handler must have read and write');
    }
    this.#route(PCI_FABRIC.TRAP_CFG, barno, offset, size, PCI_FABRIC.TRAP_SIZE, PCI_FABRIC.TRAP_OFFSET);
    this.#trap = handler;
  }

  /** {@inheritDoc PciEndpointController.setReadToClear} */
  setReadToClear(barno: number, offset: number): void {
    this.#checkOpen();
    const bar = this.#bar(checkInt('barno', barno, 0, 5));
    checkInt('offset', offset, 0, bar.size - 1);
    const f = this.#fabric;
    f.store(PCI_FABRIC.RTC_OFFSET, offset);
    f.store(PCI_FABRIC.RTC_CFG, ROUTE_ENABLED | barno);
  }

  /**
   * The EP's interrupt from the link: doorbell events and emulated-register requests.
   * PCIe orders posted writes: a doorbell written after a register write must not act
   * before it, so doorbell events wait behind requests still in the mailbox.
   */
  #onToEp(): void {
    if (this.#closed) return;
    const f = this.#fabric;
    this.#dbHeld |= f.take(PCI_FABRIC.DB_PENDING);
    f.take(PCI_FABRIC.EP_EVENT);
    if (this.#trapBusy || f.load(PCI_FABRIC.MBOX_HEAD) !== f.load(PCI_FABRIC.MBOX_TAIL)) {
      void this.#serviceTraps();
      return;
    }
    this.#deliverDoorbells();
  }

  #deliverDoorbells(): void {
    const db = this.#dbHeld;
    this.#dbHeld = 0;
    if (db === 0 || this.#doorbell === undefined || this.#closed) return;
    this.stats.doorbells++;
    try {
      this.#doorbell(db);
    } catch (e) {
      this.errors.push(e);
    }
  }

  async #serviceTraps(): Promise<void> {
    if (this.#trapBusy) {
      this.#trapAgain = true;
      return;
    }
    this.#trapBusy = true;
    const f = this.#fabric;
    try {
      do {
        this.#trapAgain = false;
        for (;;) {
          if (this.#closed) return;
          const tail = f.load(PCI_FABRIC.MBOX_TAIL);
          const head = f.load(PCI_FABRIC.MBOX_HEAD);
          if (tail === head) break;
          // A hostile head far ahead of the tail: at most one ring's worth is taken.
          if (((head - tail) >>> 0) > PCI_FABRIC.MBOX_COUNT) {
            f.store(PCI_FABRIC.MBOX_TAIL, head);
            break;
          }
          const e = f.mboxEntry(tail);
          const ctrl = f.load(e + PCI_FABRIC_MBOX_ENTRY.CTRL);
          const offset = f.load(e + PCI_FABRIC_MBOX_ENTRY.OFFSET);
          const value = f.load(e + PCI_FABRIC_MBOX_ENTRY.VALUE);
          const [status, result] = await this.#trapOne(ctrl, offset, value);
          f.store(e + PCI_FABRIC_MBOX_ENTRY.VALUE, result);
          f.store(e + PCI_FABRIC_MBOX_ENTRY.STATUS, status);
          f.store(PCI_FABRIC.MBOX_TAIL, (tail + 1) >>> 0);
          this.stats.trapRequests++;
          f.or(PCI_FABRIC.IRQ_EVENT, PCI_FABRIC_RC_EVENT.TRAP_DONE);
          this.#lines.toRc.ring();
        }
      } while (this.#trapAgain);
    } finally {
      this.#trapBusy = false;
    }
    this.#deliverDoorbells();
  }

  async #trapOne(ctrl: number, offset: number, value: number): Promise<[number, number]> {
    const op = ctrl & 0xff;
    const width = (ctrl >>> 8) & 0xff;
    const barno = (ctrl >>> 16) & 0xff;
    const f = this.#fabric;
    const cfg = f.load(PCI_FABRIC.TRAP_CFG);
    const base = f.load(PCI_FABRIC.TRAP_OFFSET);
    const size = f.load(PCI_FABRIC.TRAP_SIZE);
    const h = this.#trap;
    if (h === undefined || (cfg & ROUTE_ENABLED) === 0 || (cfg & 7) !== barno || (width !== 1 && width !== 2 && width !== 4)) {
      return [MBOX_STATUS.UNSUPPORTED, 0xffff_ffff];
    }
    if (offset < base || offset + width > base + size) return [MBOX_STATUS.UNSUPPORTED, 0xffff_ffff];
    const w = width as 1 | 2 | 4;
    const mask = w === 4 ? 0xffff_ffff : (1 << (8 * w)) - 1;
    try {
      if (op === MBOX_OP.READ) {
        let r = h.read(offset - base, w);
        if (isThenable(r)) r = await r;
        return [MBOX_STATUS.DONE, ((r as number) & mask) >>> 0];
      }
      if (op === MBOX_OP.WRITE) {
        const r = h.write(offset - base, w, (value & mask) >>> 0);
        if (isThenable(r)) await r;
        return [MBOX_STATUS.DONE, value];
      }
    } catch (e) {
      this.errors.push(e);
    }
    return [MBOX_STATUS.UNSUPPORTED, 0xffff_ffff];
  }

  // ---- link ------------------------------------------------------------------------------------

  /** {@inheritDoc PciEndpointController.start} */
  start(): void {
    this.#checkOpen();
    const f = this.#fabric;
    f.add(PCI_FABRIC.EP_GENERATION, 1);
    f.store(PCI_FABRIC.LINK, 1);
    this.#linkUp = true;
    f.or(PCI_FABRIC.IRQ_EVENT, PCI_FABRIC_RC_EVENT.LINK);
    this.#lines.toRc.ring();
  }

  /** {@inheritDoc PciEndpointController.stop} */
  stop(): void {
    if (!this.#linkUp) return;
    const f = this.#fabric;
    f.store(PCI_FABRIC.LINK, 0);
    this.#linkUp = false;
    f.or(PCI_FABRIC.IRQ_EVENT, PCI_FABRIC_RC_EVENT.LINK);
    this.#lines.toRc.ring();
  }

  /** Stops the link, the DMA engine and the doorbell listener; the controller is unusable afterwards. */
  close(): void {
    if (this.#closed) return;
    this.stop();
    this.#closed = true;
    this.#listener?.close();
    this.#listener = undefined;
    this.#dma?.close();
    for (let w = 0; w < this.#windows.length; w++) if (this.#windows[w] !== undefined) this.unmapAddr(w);
  }
}

interface DmaDesc {
  readonly t: PciEpcDmaTransfer;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** The eDMA model: a descriptor queue the engine works through on later ticks. */
class EpcDma implements PciEpcDma {
  readonly #queue: DmaDesc[] = [];
  #cancel: (() => void) | undefined;
  #closed = false;

  constructor(
    private readonly linkUp: () => boolean,
    private readonly done: (bytes: number) => void,
    private readonly rc: ArrayBufferMemory,
    private readonly clock: PciClock,
    private readonly burst: number,
  ) {}

  get pending(): number {
    return this.#queue.length;
  }

  transfer(t: PciEpcDmaTransfer): Promise<void> {
    if (typeof t !== 'object' || t === null) return Promise.reject(new TypeError('transfer must be an object'));
    if (t.direction !== 'to-rc' && t.direction !== 'from-rc') return Promise.reject(new TypeError('direction must be to-rc or from-rc'));
    if (!(t.local instanceof Uint8Array)) return Promise.reject(new TypeError('local must be a Uint8Array'));
    if (this.#closed) return Promise.reject(new PciEpfError('LINK_DOWN', 'the DMA engine is stopped'));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ t, resolve, reject });
      this.#arm();
    });
  }

  #arm(): void {
    if (this.#cancel !== undefined || this.#queue.length === 0) return;
    this.#cancel = this.clock.setTimer(0, () => {
      this.#cancel = undefined;
      this.#run();
    });
  }

  #run(): void {
    for (let k = 0; k < this.burst && this.#queue.length > 0; k++) {
      const d = this.#queue.shift()!;
      try {
        if (!this.linkUp()) throw new PciEpfError('LINK_DOWN', 'the link is down');
        if (d.t.direction === 'to-rc') this.rc.write(d.t.rcAddr, d.t.local);
        else this.rc.read(d.t.rcAddr, d.t.local);
        this.done(d.t.local.length);
        d.resolve();
      } catch (e) {
        d.reject(isPciEpfError(e) ? e : new PciEpfError('DMA_ERROR', `DMA ${d.t.direction} at ${hex(d.t.rcAddr)}+${d.t.local.length} failed`, { cause: e }));
      }
    }
    this.#arm();
  }

  close(): void {
    this.#closed = true;
    this.#cancel?.();
    this.#cancel = undefined;
    for (const d of this.#queue.splice(0)) d.reject(new PciEpfError('LINK_DOWN', 'the DMA engine was stopped'));
  }
}
