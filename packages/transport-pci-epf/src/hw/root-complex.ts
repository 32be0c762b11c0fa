import { ArrayBufferMemory } from '@x/vring';
import { PCI_CAP_ID, PCI_CFG, PCI_MSI, PCI_MSIX, RC_MSI_ADDRESS } from '../constants.js';
import { PciEpfError } from '../errors.js';
import { Fabric, MBOX_OP, MBOX_STATUS, ROUTE_ENABLED } from '../internal/fabric.js';
import { alignUp, checkInt, hex } from '../internal/util.js';
import { systemClock, type PciClock, type PciEpfLines, type PciLineListener } from '../wire.js';
import {
  PCI_FABRIC,
  PCI_FABRIC_EP_EVENT,
  PCI_FABRIC_MAGIC,
  PCI_FABRIC_MBOX_ENTRY,
  checkLink,
  resolvePciEpfLinkConfig,
  type PciEpfLink,
  type PciEpfLinkConfig,
} from './link.js';

/**
 * One register access the root complex made, for bring-up traces and the timeline.
 *
 * @public
 */
export interface PciTraceEvent {
  /** Configuration or BAR (memory) access, read or write. */
  readonly kind: 'cfg-read' | 'cfg-write' | 'mmio-read' | 'mmio-write';
  /** The BAR (-1 for configuration space). */
  readonly bar: number;
  /** Offset in the BAR or configuration space. */
  readonly offset: number;
  /** Bytes. */
  readonly width: number;
  /** Value written or read. */
  readonly value: number;
}

/** A BAR as the root complex assigned it. @public */
export interface PciBarInfo {
  /** Which BAR. */
  readonly barno: number;
  /** Its RC bus address. */
  readonly addr: number;
  /** Its size. */
  readonly size: number;
  /** 64-bit BAR. */
  readonly is64: boolean;
  /** Prefetchable. */
  readonly prefetch: boolean;
}

/** A capability found in the chain. @public */
export interface PciCapabilityInfo {
  /** Capability id. */
  readonly id: number;
  /** Its offset in configuration space. */
  readonly offset: number;
}

/** What enumeration found about the endpoint's function (Linux `struct pci_dev`, in part). @public */
export interface PciFunctionInfo {
  /** Vendor id. */
  readonly vendorId: number;
  /** Device id. */
  readonly deviceId: number;
  /** Revision id. */
  readonly revisionId: number;
  /** Class code: base class in bits 16..23, subclass in bits 8..15, prog-if in bits 0..7. */
  readonly classCode: number;
  /** Subsystem vendor id. */
  readonly subsysVendorId: number;
  /** Subsystem id. */
  readonly subsysId: number;
  /** Interrupt pin (0 none, 1 INTA). */
  readonly interruptPin: number;
  /** Implemented BARs, in order. */
  readonly bars: readonly PciBarInfo[];
  /** The capability chain, in order. */
  readonly capabilities: readonly PciCapabilityInfo[];
}

/** An interrupt type a driver can ask for (`PCI_IRQ_MSIX`, `PCI_IRQ_MSI`, `PCI_IRQ_INTX`). @public */
export type PciIrqType = 'msix' | 'msi' | 'intx';

/** What {@link PciRootComplex.allocIrqVectors} enabled. @public */
export interface PciIrqAllocation {
  /** The type in use. */
  readonly type: PciIrqType;
  /** Vectors (1 for INTx). */
  readonly vectors: number;
}

/** Options of {@link PciRootComplex.waitFor}. @public */
export interface PciWaitOptions {
  /** Milliseconds before giving up. */
  readonly timeoutMs: number;
  /** What is waited for, for the error message. */
  readonly what: string;
  /** The error code on timeout. Default `TIMEOUT`. */
  readonly code?: 'TIMEOUT' | 'COMPLETION_TIMEOUT' | 'LINK_DOWN';
}

/** Options of {@link PciRootComplex}. @public */
export interface PciRootComplexOptions {
  /** The link. */
  readonly link: PciEpfLink;
  /** The link's wires. */
  readonly lines: PciEpfLines;
  /** The RC's clock. Default `systemClock`. */
  readonly clock?: PciClock;
  /** Called for every register access (a bring-up trace). */
  readonly trace?: (event: PciTraceEvent) => void;
  /** Completion timeout of a read of an emulated register, ms. Default 1000. */
  readonly completionTimeoutMs?: number;
}

interface PendingRead {
  readonly index: number;
  readonly resolve: (v: number) => void;
  readonly reject: (e: unknown) => void;
  readonly cancel: () => void;
}

/**
 * The root complex of the model: RC memory, enumeration of the endpoint's function
 * (BAR sizing and assignment, the capability chain), BAR access as MMIO (with the
 * hardware's doorbell routing, read-to-clear registers and emulated-register
 * round trips), and an interrupt controller for MSI, MSI-X and INTx. It touches only the
 * link's shared bytes and wires.
 *
 * @public
 */
export class PciRootComplex {
  /** The link description. */
  readonly config: PciEpfLinkConfig;
  /** RC system memory (addresses from `rcMemoryBase`). */
  readonly memory: ArrayBufferMemory;
  /** The RC's clock. */
  readonly clock: PciClock;
  /** Completion timeout of emulated-register reads, ms. */
  readonly completionTimeoutMs: number;
  /** The trace hook; set it to record accesses. */
  trace: ((event: PciTraceEvent) => void) | undefined;
  /** Errors interrupt handlers threw (the controller keeps dispatching). */
  readonly errors: unknown[] = [];
  /** Interrupts dispatched per vector. */
  readonly irqCounts: number[] = [];

  readonly #fabric: Fabric;
  readonly #lines: PciEpfLines;
  readonly #epMemory: SharedArrayBuffer;
  readonly #bars = new Map<number, PciBarMmio>();
  readonly #handlers: Array<(() => void) | undefined> = [];
  readonly #waiters = new Set<() => void>();
  readonly #listeners = new Set<() => void>();
  readonly #reads: PendingRead[] = [];
  #info: PciFunctionInfo | undefined;
  #irq: PciIrqAllocation | undefined;
  #listener: PciLineListener | undefined;
  #down: PciEpfError | undefined;
  #closed = false;

  constructor(options: PciRootComplexOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    checkLink(options.link);
    this.config = resolvePciEpfLinkConfig(options.link.config);
    this.#lines = options.lines;
    this.clock = options.clock ?? systemClock;
    this.trace = options.trace;
    this.completionTimeoutMs = checkInt('options.completionTimeoutMs', options.completionTimeoutMs ?? 1000, 1, 3_600_000);
    this.#fabric = new Fabric(options.link.buffers.fabric);
    this.#epMemory = options.link.buffers.epMemory;
    this.memory = new ArrayBufferMemory(options.link.buffers.rcMemory, {
      base: this.config.rcMemoryBase,
      byteLength: this.config.rcMemorySize,
      name: 'RC memory',
    });
    this.#listener = this.#lines.toRc.listen(() => this.#onInterrupt());
  }

  /** True when the endpoint's controller has the link up (and nobody marked it down). */
  get linkUp(): boolean {
    const f = this.#fabric;
    return this.#down === undefined && !this.#closed && f.load(PCI_FABRIC.MAGIC) === PCI_FABRIC_MAGIC && (f.load(PCI_FABRIC.LINK) & 1) === 1;
  }

  /** How many times the endpoint controller started (a changed value means it was re-initialised). */
  get epGeneration(): number {
    return this.#fabric.load(PCI_FABRIC.EP_GENERATION);
  }

  /** What {@link PciRootComplex.enumerate} found. */
  get info(): PciFunctionInfo | undefined {
    return this.#info;
  }

  /** The enabled interrupt type. */
  get irq(): PciIrqAllocation | undefined {
    return this.#irq;
  }

  /** True while an emulated-register read waits for its completion. */
  get busy(): boolean {
    return this.#reads.length > 0;
  }

  /** Waits for link-up; `LINK_DOWN` after `timeoutMs`. */
  waitLinkUp(timeoutMs = 5000): Promise<void> {
    if (this.#down !== undefined) {
      // A link marked down by the owner comes back only with a fresh EP start.
      this.#down = undefined;
    }
    return this.waitFor(() => this.linkUp, { timeoutMs, what: 'link up', code: 'LINK_DOWN' });
  }

  /**
   * Marks the link down (the endpoint's system went away: `@x/platform`'s peer-down
   * event, a surprise removal). Every wait and pending read fails with `LINK_DOWN`.
   */
  markLinkDown(reason = 'the endpoint went away'): void {
    this.#down = new PciEpfError('LINK_DOWN', reason);
    for (const w of [...this.#waiters]) w();
    this.#failReads(this.#down);
  }

  /** Calls `listener` after every interrupt the link delivers (drivers re-check state there). Returns a remover. */
  onInterrupt(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves when `check()` is true; re-checked after every interrupt and on a poll
   * (a few turns of the event loop, then every millisecond), as the RFC's RC busy-polls
   * `cmd_status`. Rejects with `options.code` after `options.timeoutMs`, and with
   * `LINK_DOWN` when the link goes down.
   */
  waitFor(check: () => boolean, options: PciWaitOptions): Promise<void> {
    const linkOk = options.code === 'LINK_DOWN' ? () => this.#down === undefined && !this.#closed : () => this.linkUp;
    try {
      if (check()) return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      let done = false;
      let polls = 0;
      let cancelPoll: (() => void) | undefined;
      const finish = (e?: unknown): void => {
        if (done) return;
        done = true;
        cancelTimeout();
        cancelPoll?.();
        this.#waiters.delete(w);
        if (e === undefined) resolve();
        else reject(e);
      };
      const w = (): void => {
        if (done) return;
        try {
          if (check()) return finish();
        } catch (e) {
          return finish(e);
        }
        if (!linkOk()) finish(this.#down ?? new PciEpfError('LINK_DOWN', `${options.what}: the link is down`));
      };
      this.#waiters.add(w);
      const cancelTimeout = this.clock.setTimer(options.timeoutMs, () => {
        w();
        finish(new PciEpfError(options.code ?? 'TIMEOUT', `${options.what}: no answer within ${options.timeoutMs} ms`));
      });
      const poll = (): void => {
        cancelPoll = this.clock.setTimer(polls++ < 64 ? 0 : 1, () => {
          w();
          if (!done) poll();
        });
      };
      poll();
    });
  }

  // ---- configuration space ---------------------------------------------------------------

  /** A configuration read (type 0, the endpoint's function). */
  configRead(offset: number, width: 1 | 2 | 4): number {
    checkInt('offset', offset, 0, PCI_CFG.SIZE - width);
    const v = this.#fabric.cfgRead(offset, width);
    this.trace?.({ kind: 'cfg-read', bar: -1, offset, width, value: v });
    return v;
  }

  /** A configuration write; read-only bits hold (the function's write mask). */
  configWrite(offset: number, width: 1 | 2 | 4, value: number): void {
    checkInt('offset', offset, 0, PCI_CFG.SIZE - width);
    this.trace?.({ kind: 'cfg-write', bar: -1, offset, width, value: value >>> 0 });
    this.#fabric.cfgWriteHost(offset, width, value);
  }

  /** Offset of the first capability `id` in the chain, or -1 (`pci_find_capability`). */
  findCapability(id: number): number {
    return this.#info?.capabilities.find((c) => c.id === id)?.offset ?? -1;
  }

  /**
   * Enumerates the function (Linux `pci_scan_device` + `pci_setup_device` +
   * `pci_assign_resource` + `pci_enable_device` + `pci_set_master`): reads its ids,
   * sizes each BAR by writing all-ones, assigns addresses from `rcMmioBase`, walks the
   * capability chain (bounded: a looping chain stops), enables memory decoding and bus
   * mastering. `LINK_DOWN` when the link is down; `NOT_FOUND` when nothing answers.
   */
  enumerate(): PciFunctionInfo {
    if (this.#closed) throw new PciEpfError('BAD_STATE', 'the root complex is closed');
    if (!this.linkUp) throw new PciEpfError('LINK_DOWN', 'enumerate: the link is down');
    this.#bars.clear();
    const vendorId = this.configRead(PCI_CFG.VENDOR_ID, 2);
    if (vendorId === 0xffff || vendorId === 0) throw new PciEpfError('NOT_FOUND', `no function answers (vendor id ${hex(vendorId)})`);
    const bars: PciBarInfo[] = [];
    let next = this.config.rcMmioBase;
    for (let n = 0; n < 6; n++) {
      const reg = PCI_CFG.BAR0 + 4 * n;
      const orig = this.configRead(reg, 4);
      this.configWrite(reg, 4, 0xffff_ffff);
      const lo = this.configRead(reg, 4);
      if ((lo & 0xffff_fff0) === 0) {
        this.configWrite(reg, 4, orig);
        continue;
      }
      const is64 = (lo & 0x6) === PCI_CFG.BAR_MEM_TYPE_64;
      const prefetch = (lo & PCI_CFG.BAR_MEM_PREFETCH) !== 0;
      if (is64 && n < 5) {
        this.configWrite(reg + 4, 4, 0xffff_ffff);
        if (this.configRead(reg + 4, 4) !== 0xffff_ffff) throw new PciEpfError('NOT_SUPPORTED', `BAR ${n}: 64-bit BARs of 4 GiB or more are not modelled`);
      }
      const size = ((~(lo & 0xffff_fff0)) >>> 0) + 1;
      const addr = alignUp(next, size);
      next = addr + size;
      this.configWrite(reg, 4, addr % 0x1_0000_0000);
      if (is64 && n < 5) this.configWrite(reg + 4, 4, Math.floor(addr / 0x1_0000_0000));
      bars.push(Object.freeze({ barno: n, addr, size, is64, prefetch }));
      if (is64) n++;
    }
    const caps: PciCapabilityInfo[] = [];
    if ((this.configRead(PCI_CFG.STATUS, 2) & PCI_CFG.STATUS_CAP_LIST) !== 0) {
      let p = this.configRead(PCI_CFG.CAPABILITY_LIST, 1) & 0xfc;
      const seen = new Set<number>();
      while (p >= PCI_CFG.CAP_START && !seen.has(p) && caps.length < 48) {
        seen.add(p);
        caps.push(Object.freeze({ id: this.configRead(p, 1), offset: p }));
        p = this.configRead(p + 1, 1) & 0xfc;
      }
    }
    this.configWrite(PCI_CFG.COMMAND, 2, this.configRead(PCI_CFG.COMMAND, 2) | PCI_CFG.COMMAND_MEMORY | PCI_CFG.COMMAND_MASTER);
    const info: PciFunctionInfo = Object.freeze({
      vendorId,
      deviceId: this.configRead(PCI_CFG.DEVICE_ID, 2),
      revisionId: this.configRead(PCI_CFG.REVISION_ID, 1),
      classCode: (this.configRead(PCI_CFG.BASE_CLASS, 1) << 16) | (this.configRead(PCI_CFG.SUBCLASS, 1) << 8) | this.configRead(PCI_CFG.CLASS_PROG, 1),
      subsysVendorId: this.configRead(PCI_CFG.SUBSYSTEM_VENDOR_ID, 2),
      subsysId: this.configRead(PCI_CFG.SUBSYSTEM_ID, 2),
      interruptPin: this.configRead(PCI_CFG.INTERRUPT_PIN, 1),
      bars: Object.freeze(bars),
      capabilities: Object.freeze(caps),
    });
    this.#info = info;
    return info;
  }

  /** The MMIO view of an assigned BAR (after {@link PciRootComplex.enumerate}). */
  bar(barno: number): PciBarMmio {
    checkInt('barno', barno, 0, 5);
    const cached = this.#bars.get(barno);
    if (cached !== undefined) return cached;
    const b = this.#info?.bars.find((x) => x.barno === barno);
    if (b === undefined) throw new PciEpfError('NOT_FOUND', `BAR ${barno} is not implemented or not enumerated`);
    const backing = this.#fabric.barBacking(barno);
    if (backing + b.size > this.#epMemory.byteLength) throw new PciEpfError('BUS_ERROR', `BAR ${barno}: its backing lies outside EP memory`);
    const mem = new ArrayBufferMemory(this.#epMemory, { base: b.addr, byteOffset: backing, byteLength: b.size, name: `BAR ${barno}` });
    const mmio = new BarMmio(this, this.#fabric, b, mem);
    this.#bars.set(barno, mmio);
    return mmio;
  }

  // ---- interrupts --------------------------------------------------------------------------

  /**
   * Enables interrupts of the first type in `types` the function offers (Linux
   * `pci_alloc_irq_vectors`): MSI-X (table entries programmed with the RC's message
   * address and data = vector, unmasked), MSI (a power of two of vectors, data =
   * vector), or INTx (vector 0). Enabling MSI or MSI-X disables INTx.
   */
  allocIrqVectors(maxVectors: number, types: readonly PciIrqType[] = ['msix', 'msi', 'intx']): PciIrqAllocation {
    checkInt('maxVectors', maxVectors, 1, 64);
    if (this.#info === undefined) throw new PciEpfError('BAD_STATE', 'enumerate first');
    this.freeIrqVectors();
    const cmd = this.configRead(PCI_CFG.COMMAND, 2);
    for (const type of types) {
      if (type === 'msix') {
        const cap = this.findCapability(PCI_CAP_ID.MSIX);
        if (cap < 0) continue;
        const flags = this.configRead(cap + PCI_MSIX.FLAGS, 2);
        const n = Math.min(maxVectors, (flags & PCI_MSIX.FLAGS_QSIZE) + 1);
        const table = this.configRead(cap + PCI_MSIX.TABLE, 4);
        const bar = this.bar(table & PCI_MSIX.BIR_MASK);
        const base = table & ~PCI_MSIX.BIR_MASK;
        for (let v = 0; v < n; v++) {
          const e = base + v * PCI_MSIX.ENTRY_SIZE;
          bar.write32(e + PCI_MSIX.ENTRY_LOWER_ADDR, RC_MSI_ADDRESS);
          bar.write32(e + PCI_MSIX.ENTRY_UPPER_ADDR, 0);
          bar.write32(e + PCI_MSIX.ENTRY_DATA, v);
          bar.write32(e + PCI_MSIX.ENTRY_VECTOR_CTRL, 0);
        }
        this.configWrite(PCI_CFG.COMMAND, 2, cmd | PCI_CFG.COMMAND_INTX_DISABLE);
        this.configWrite(cap + PCI_MSIX.FLAGS, 2, (flags | PCI_MSIX.FLAGS_ENABLE) & ~PCI_MSIX.FLAGS_MASKALL);
        return (this.#irq = Object.freeze({ type, vectors: n }));
      }
      if (type === 'msi') {
        const cap = this.findCapability(PCI_CAP_ID.MSI);
        if (cap < 0) continue;
        const flags = this.configRead(cap + PCI_MSI.FLAGS, 2);
        const avail = 1 << ((flags & PCI_MSI.FLAGS_QMASK) >> 1);
        let n = Math.min(maxVectors, avail);
        while ((n & (n - 1)) !== 0) n &= n - 1;
        this.configWrite(cap + PCI_MSI.ADDRESS_LO, 4, RC_MSI_ADDRESS);
        this.configWrite(cap + PCI_MSI.ADDRESS_HI, 4, 0);
        this.configWrite(cap + PCI_MSI.DATA, 2, 0);
        this.configWrite(PCI_CFG.COMMAND, 2, cmd | PCI_CFG.COMMAND_INTX_DISABLE);
        this.configWrite(cap + PCI_MSI.FLAGS, 2, (flags & ~PCI_MSI.FLAGS_QSIZE) | PCI_MSI.FLAGS_ENABLE | (Math.log2(n) << 4));
        return (this.#irq = Object.freeze({ type, vectors: n }));
      }
      if (type === 'intx') {
        if (this.configRead(PCI_CFG.INTERRUPT_PIN, 1) === 0) continue;
        this.configWrite(PCI_CFG.COMMAND, 2, cmd & ~PCI_CFG.COMMAND_INTX_DISABLE);
        return (this.#irq = Object.freeze({ type, vectors: 1 }));
      }
    }
    throw new PciEpfError('NOT_SUPPORTED', `the function offers none of the interrupt types ${types.join(', ')}`);
  }

  /** Disables MSI / MSI-X / INTx and forgets every handler (`pci_free_irq_vectors`). */
  freeIrqVectors(): void {
    this.#handlers.length = 0;
    if (this.#irq === undefined || this.#info === undefined || !this.linkUp) {
      this.#irq = undefined;
      return;
    }
    const msix = this.findCapability(PCI_CAP_ID.MSIX);
    if (msix >= 0) this.configWrite(msix + PCI_MSIX.FLAGS, 2, this.configRead(msix + PCI_MSIX.FLAGS, 2) & ~PCI_MSIX.FLAGS_ENABLE);
    const msi = this.findCapability(PCI_CAP_ID.MSI);
    if (msi >= 0) this.configWrite(msi + PCI_MSI.FLAGS, 2, this.configRead(msi + PCI_MSI.FLAGS, 2) & ~PCI_MSI.FLAGS_ENABLE);
    this.configWrite(PCI_CFG.COMMAND, 2, this.configRead(PCI_CFG.COMMAND, 2) | PCI_CFG.COMMAND_INTX_DISABLE);
    this.#irq = undefined;
  }

  /** Installs the handler of `vector` (`request_irq`); for INTx the vector is 0. */
  requestIrq(vector: number, handler: () => void): void {
    if (this.#irq === undefined) throw new PciEpfError('BAD_STATE', 'allocIrqVectors first');
    checkInt('vector', vector, 0, this.#irq.vectors - 1);
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    this.#handlers[vector] = handler;
  }

  /** The RC's interrupt controller: what the EP posted since the last look, dispatched. */
  #onInterrupt(): void {
    if (this.#closed) return;
    const f = this.#fabric;
    const m0 = f.take(PCI_FABRIC.IRQ_MSG);
    const m1 = f.take(PCI_FABRIC.IRQ_MSG + 4);
    const intx = f.take(PCI_FABRIC.IRQ_INTX);
    f.take(PCI_FABRIC.IRQ_EVENT);
    this.#drainReads();
    const irq = this.#irq;
    if (irq !== undefined) {
      if (irq.type === 'intx') {
        if (intx !== 0) this.#dispatch(0);
      } else {
        for (let d = 0; d < 64; d++) {
          const word = d < 32 ? m0 : m1;
          if (word === 0) {
            d = d < 32 ? 31 : 63;
            continue;
          }
          if ((word & (1 << (d & 31))) !== 0 && d < irq.vectors) this.#dispatch(d);
        }
      }
    }
    for (const w of [...this.#waiters]) w();
    for (const l of [...this.#listeners]) {
      try {
        l();
      } catch (e) {
        this.errors.push(e);
      }
    }
  }

  #dispatch(v: number): void {
    this.irqCounts[v] = (this.irqCounts[v] ?? 0) + 1;
    const h = this.#handlers[v];
    if (h === undefined) return;
    try {
      h();
    } catch (e) {
      this.errors.push(e);
    }
  }

  // ---- emulated registers: the mailbox --------------------------------------------------------

  /** @internal Submits one request; resolves with its index. Waits for room in the mailbox. */
  async submit(op: number, barno: number, offset: number, width: 1 | 2 | 4, value: number): Promise<number> {
    const f = this.#fabric;
    const room = (): boolean => ((f.load(PCI_FABRIC.MBOX_HEAD) - f.load(PCI_FABRIC.MBOX_TAIL)) >>> 0) < PCI_FABRIC.MBOX_COUNT;
    if (!room()) await this.waitFor(room, { timeoutMs: this.completionTimeoutMs, what: 'room in the emulated-register mailbox', code: 'COMPLETION_TIMEOUT' });
    return this.submitNow(op, barno, offset, width, value);
  }

  /** @internal Submits one request now; `BAD_STATE` when the mailbox is full. */
  submitNow(op: number, barno: number, offset: number, width: 1 | 2 | 4, value: number): number {
    if (!this.linkUp) throw this.#down ?? new PciEpfError('LINK_DOWN', 'the link is down');
    const f = this.#fabric;
    // Capture finished reads first: their entries may be reused by this submission.
    this.#drainReads();
    const head = f.load(PCI_FABRIC.MBOX_HEAD);
    if (((head - f.load(PCI_FABRIC.MBOX_TAIL)) >>> 0) >= PCI_FABRIC.MBOX_COUNT) throw new PciEpfError('BAD_STATE', 'the emulated-register mailbox is full');
    f.mboxWrite(head, op | (width << 8) | (barno << 16), offset, value >>> 0);
    f.store(PCI_FABRIC.MBOX_HEAD, (head + 1) >>> 0);
    f.or(PCI_FABRIC.EP_EVENT, PCI_FABRIC_EP_EVENT.TRAP_REQUEST);
    this.#lines.toEp.ring();
    return head;
  }

  /** @internal A host write that the fabric routed to the EP's doorbell: the value is the event id. */
  postDoorbell(event: number): void {
    if (!this.linkUp) return;
    this.#fabric.or(PCI_FABRIC.DB_PENDING, 1 << (event & 31));
    this.#lines.toEp.ring();
  }

  /** @internal A non-posted read through the mailbox. */
  async readTrapped(barno: number, offset: number, width: 1 | 2 | 4): Promise<number> {
    const index = await this.submit(MBOX_OP.READ, barno, offset, width, 0);
    return new Promise<number>((resolve, reject) => {
      const r: PendingRead = {
        index,
        resolve,
        reject,
        cancel: this.clock.setTimer(this.completionTimeoutMs, () => {
          this.#drainReads();
          const i = this.#reads.indexOf(r);
          if (i < 0) return;
          this.#reads.splice(i, 1);
          reject(new PciEpfError('COMPLETION_TIMEOUT', `read of BAR ${barno} +${hex(offset)}: no completion within ${this.completionTimeoutMs} ms`));
        }),
      };
      this.#reads.push(r);
      this.#drainReads();
    });
  }

  #drainReads(): void {
    if (this.#reads.length === 0) return;
    const f = this.#fabric;
    const tail = f.load(PCI_FABRIC.MBOX_TAIL);
    for (let i = 0; i < this.#reads.length; ) {
      const r = this.#reads[i]!;
      const ahead = (tail - r.index) >>> 0;
      if (ahead === 0 || ahead > 0x8000_0000) {
        i++;
        continue;
      }
      this.#reads.splice(i, 1);
      r.cancel();
      const e = f.mboxEntry(r.index);
      const status = f.load(e + PCI_FABRIC_MBOX_ENTRY.STATUS);
      if (status === MBOX_STATUS.DONE) r.resolve(f.load(e + PCI_FABRIC_MBOX_ENTRY.VALUE));
      else r.reject(new PciEpfError('BUS_ERROR', `emulated register read at index ${r.index}: Unsupported Request`));
    }
    if (!this.linkUp) this.#failReads(this.#down ?? new PciEpfError('LINK_DOWN', 'the link went down'));
  }

  #failReads(e: PciEpfError): void {
    for (const r of this.#reads.splice(0)) {
      r.cancel();
      r.reject(e);
    }
  }

  /** Stops listening; fails every wait. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener?.close();
    this.#listener = undefined;
    for (const w of [...this.#waiters]) w();
    this.#failReads(new PciEpfError('LINK_DOWN', 'the root complex was closed'));
  }
}

/**
 * A BAR as the root complex's CPU sees it: memory-mapped registers. Plain memory
 * behind, except where the endpoint controller routed part of it: writes to the
 * doorbell range interrupt the endpoint (the written value is the event), a
 * read-to-clear byte clears as it is read, and the emulated-register window answers
 * through a non-posted round trip ({@link PciBarMmio.readAsync}).
 *
 * @public
 */
export interface PciBarMmio {
  /** Which BAR. */
  readonly barno: number;
  /** Its RC bus address. */
  readonly addr: number;
  /** Its size. */
  readonly size: number;
  /** The plain-memory view (RC bus addresses). */
  readonly memory: ArrayBufferMemory;
  /** True when `[offset, offset + width)` touches the emulated-register window. */
  isTrapped(offset: number, width?: number): boolean;
  /** Reads a byte (`NOT_SUPPORTED` for an emulated register: use readAsync). */
  read8(offset: number): number;
  /** Reads a little-endian u16. */
  read16(offset: number): number;
  /** Reads a little-endian u32. */
  read32(offset: number): number;
  /** Writes a byte (posted). */
  write8(offset: number, value: number): void;
  /** Writes a little-endian u16 (posted). */
  write16(offset: number, value: number): void;
  /** Writes a little-endian u32 (posted). */
  write32(offset: number, value: number): void;
  /** Reads any register, waiting for the completion when it is emulated (`COMPLETION_TIMEOUT`, `BUS_ERROR`). */
  readAsync(offset: number, width: 1 | 2 | 4): Promise<number>;
  /** Writes any register, waiting for room in the mailbox when it is emulated (the write itself is posted). */
  writeAsync(offset: number, width: 1 | 2 | 4, value: number): Promise<void>;
  /** Copies plain BAR memory at `offset` into `dst` (device configuration). */
  readBytes(offset: number, dst: Uint8Array): void;
  /** Copies `src` into plain BAR memory at `offset`. */
  writeBytes(offset: number, src: Uint8Array): void;
}

/** The model's {@link PciBarMmio}. */
class BarMmio implements PciBarMmio {
  /** Which BAR. */
  readonly barno: number;
  /** Its RC bus address. */
  readonly addr: number;
  /** Its size. */
  readonly size: number;
  /** The plain-memory view (RC bus addresses). */
  readonly memory: ArrayBufferMemory;
  readonly #rc: PciRootComplex;
  readonly #fabric: Fabric;
  readonly #u8: Uint8Array;

  constructor(rc: PciRootComplex, fabric: Fabric, info: PciBarInfo, memory: ArrayBufferMemory) {
    this.#rc = rc;
    this.#fabric = fabric;
    this.barno = info.barno;
    this.addr = info.addr;
    this.size = info.size;
    this.memory = memory;
    this.#u8 = new Uint8Array(memory.buffer, memory.byteOffset, memory.size);
  }

  #range(offset: number, width: number): void {
    if (!(Number.isInteger(offset) && offset >= 0 && offset + width <= this.size)) {
      throw new PciEpfError('BUS_ERROR', `BAR ${this.barno}: access of ${width} byte(s) at +${hex(offset)} is outside its ${this.size} bytes`);
    }
  }

  #routed(cfgOff: number, offOff: number, sizeOff: number, offset: number, width: number): boolean {
    const f = this.#fabric;
    const cfg = f.load(cfgOff);
    if ((cfg & ROUTE_ENABLED) === 0 || (cfg & 7) !== this.barno) return false;
    const base = f.load(offOff);
    const size = sizeOff < 0 ? 1 : f.load(sizeOff);
    return offset < base + size && offset + width > base;
  }

  /** True when `[offset, offset + width)` touches the emulated-register window. */
  isTrapped(offset: number, width = 1): boolean {
    return this.#routed(PCI_FABRIC.TRAP_CFG, PCI_FABRIC.TRAP_OFFSET, PCI_FABRIC.TRAP_SIZE, offset, width);
  }

  #read(offset: number, width: 1 | 2 | 4): number {
    this.#range(offset, width);
    if (this.isTrapped(offset, width)) throw new PciEpfError('NOT_SUPPORTED', `BAR ${this.barno} +${hex(offset)} is an emulated register: read it with readAsync`);
    let v: number;
    if (this.#routed(PCI_FABRIC.RTC_CFG, PCI_FABRIC.RTC_OFFSET, -1, offset, width)) {
      const at = this.#fabric.load(PCI_FABRIC.RTC_OFFSET);
      v = 0;
      for (let i = 0; i < width; i++) {
        const b = offset + i === at ? Atomics.exchange(this.#u8, at, 0) : this.#u8[offset + i]!;
        v |= b << (8 * i);
      }
      v >>>= 0;
    } else {
      const a = this.addr + offset;
      v = width === 1 ? this.memory.read8(a) : width === 2 ? this.memory.read16(a) : this.memory.read32(a);
    }
    this.#rc.trace?.({ kind: 'mmio-read', bar: this.barno, offset, width, value: v });
    return v;
  }

  #write(offset: number, width: 1 | 2 | 4, value: number): void {
    this.#range(offset, width);
    const v = width === 4 ? value >>> 0 : value & ((1 << (8 * width)) - 1);
    this.#rc.trace?.({ kind: 'mmio-write', bar: this.barno, offset, width, value: v });
    if (this.#routed(PCI_FABRIC.DB_CFG, PCI_FABRIC.DB_OFFSET, PCI_FABRIC.DB_SIZE, offset, width)) {
      this.#rc.postDoorbell(v);
      return;
    }
    if (this.isTrapped(offset, width)) {
      this.#rc.submitNow(MBOX_OP.WRITE, this.barno, offset, width, v);
      return;
    }
    const a = this.addr + offset;
    if (width === 1) this.memory.write8(a, v);
    else if (width === 2) this.memory.write16(a, v);
    else this.memory.write32(a, v);
  }

  /** Reads a byte. */
  read8(offset: number): number {
    return this.#read(offset, 1);
  }
  /** Reads a little-endian u16. */
  read16(offset: number): number {
    return this.#read(offset, 2);
  }
  /** Reads a little-endian u32. */
  read32(offset: number): number {
    return this.#read(offset, 4);
  }
  /** Writes a byte (posted). */
  write8(offset: number, value: number): void {
    this.#write(offset, 1, value);
  }
  /** Writes a little-endian u16 (posted). */
  write16(offset: number, value: number): void {
    this.#write(offset, 2, value);
  }
  /** Writes a little-endian u32 (posted). */
  write32(offset: number, value: number): void {
    this.#write(offset, 4, value);
  }

  /** Reads any register, waiting for the completion when it is emulated (`COMPLETION_TIMEOUT`, `BUS_ERROR`). */
  async readAsync(offset: number, width: 1 | 2 | 4): Promise<number> {
    this.#range(offset, width);
    if (!this.isTrapped(offset, width)) return this.#read(offset, width);
    const v = await this.#rc.readTrapped(this.barno, offset, width);
    this.#rc.trace?.({ kind: 'mmio-read', bar: this.barno, offset, width, value: v });
    return v;
  }

  /** Writes any register, waiting for room in the mailbox when it is emulated (the write itself is posted). */
  async writeAsync(offset: number, width: 1 | 2 | 4, value: number): Promise<void> {
    this.#range(offset, width);
    if (!this.isTrapped(offset, width)) return this.#write(offset, width, value);
    const v = width === 4 ? value >>> 0 : value & ((1 << (8 * width)) - 1);
    this.#rc.trace?.({ kind: 'mmio-write', bar: this.barno, offset, width, value: v });
    await this.#rc.submit(MBOX_OP.WRITE, this.barno, offset, width, v);
  }

  /** Copies plain BAR memory at `offset` into `dst` (device configuration). */
  readBytes(offset: number, dst: Uint8Array): void {
    this.#range(offset, dst.length);
    this.memory.read(this.addr + offset, dst);
  }

  /** Copies `src` into plain BAR memory at `offset`. */
  writeBytes(offset: number, src: Uint8Array): void {
    this.#range(offset, src.length);
    this.memory.write(this.addr + offset, src);
  }
}
