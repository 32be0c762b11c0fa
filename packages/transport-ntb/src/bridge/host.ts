import {
  NTB_EPF_CMD,
  NTB_EPF_CMD_STATUS,
  NTB_EPF_COMMAND_TIMEOUT_MS,
  NTB_EPF_CTRL as C,
  NTB_EPF_DB_COUNT,
  NTB_EPF_LINK_STATUS_UP,
  NTB_EPF_MSIX_ENABLE,
} from '../constants.js';
import { NtbError } from '../errors.js';
import { NTB_SPEED, NTB_WIDTH, NtbDev, type NtbDevOps, type NtbLinkStatus, type NtbMwAlign, type NtbPeerMwAddr, type NtbTraceEvent } from '../ntb-dev.js';
import { WorkQueue, hex, hi32, lo32 } from '../internal/util.js';
import { SharedNtbLine, clockSleep, systemClock, type NtbClock, type NtbLine, type NtbLineListener, type NtbLineListenOptions } from '../wire.js';
import type { NtbPeerWatch } from '../pair/port.js';
import { BridgeHostView } from './fabric.js';
import { NTB_BRIDGE_FABRIC as F, PCI_MSIX_ENTRY_SIZE, checkBridgeLink, epcOffset, type BridgeBarLayout, type NtbBridgeLink } from './link.js';

/** A bridge host's interrupt lines. @public */
export interface NtbEpfHostLines {
  /** This host's MSI-X line (it listens). */
  readonly irq: NtbLine;
  /** The other host's MSI-X line: a doorbell write leaves the bridge as an MSI write to the other host. */
  readonly peerIrq: NtbLine;
}

/** Options of {@link NtbEpfHost} / {@link openNtbEpfHost}. @public */
export interface NtbEpfHostOptions {
  /** The interrupt lines. Default: the fabric's own words. */
  readonly lines?: NtbEpfHostLines;
  /** How this host waits on its interrupt line. */
  readonly listen?: NtbLineListenOptions;
  /** The host's clock. Default `systemClock`. */
  readonly clock?: NtbClock;
  /** How long a command waits for CMD_STATUS, ms. Default 1000 (`NTB_EPF_COMMAND_TIMEOUT`). */
  readonly commandTimeoutMs?: number;
  /** How often a command re-reads CMD_STATUS, ms (the driver's `usleep_range(5, 10)` loop). Default 0.5. */
  readonly commandPollMs?: number;
  /** How long probe waits for the bridge's function to be bound, ms. Default 5000. */
  readonly probeTimeoutMs?: number;
  /** Reports the bridge or the other host crashing; the link then goes down with `PEER_DOWN`. */
  readonly watchPeer?: NtbPeerWatch;
  /** Only peers of these names count for {@link NtbEpfHostOptions.watchPeer}. */
  readonly peerNames?: readonly string[];
  /** The bridge's name for {@link NtbEpfHostOptions.watchPeer}: once it is down, commands fail at once with `PEER_DOWN`. Default `bridge`. */
  readonly bridgeName?: string;
  /** Name of the NTB device. Default `ntb-epf-host1` / `-host2`. */
  readonly name?: string;
  /** Receives what a client callback threw. */
  readonly onError?: (error: unknown) => void;
  /** Receives the device's trace (`NtbDevOptions.trace`). */
  readonly trace?: (event: NtbTraceEvent) => void;
}

/**
 * A host's NTB hardware driver for the bridge's NTB function (mainline `ntb_hw_epf.c`):
 * BAR0 is the control region (§2.11) and the host's own scratchpads, BAR1 the other
 * host's scratchpads, BAR2 the doorbell entries and memory window 1. Commands are
 * written to COMMAND / ARGUMENT and answered in CMD_STATUS (OK 1, ERROR 2) within the
 * command timeout (1 s, settable); the driver then writes 0 back. MSI-X vector 0 is the
 * link interrupt, vectors 1… the doorbells.
 *
 * Deviations from mainline, each a fix: doorbell bit b rings interrupt b + 1 (mainline's
 * `ffs(bits) + 1` rings b + 2 and only the lowest bit); `peer_db_set` rings every bit it
 * is given; `db_vector_count` / `db_vector_mask` exist (vector v reports bit v − 1);
 * `mw_set_trans` reports a failed CONFIGURE_MW; the window's `size_max` is the window,
 * not the whole BAR; a link interrupt that finds the link still up after one was
 * reported is a down-and-up flap and is reported as both edges.
 *
 * @public
 */
export class NtbEpfHost implements NtbDevOps {
  /** 1 or 2. */
  readonly host: 1 | 2;
  /** The link description. */
  readonly link: NtbBridgeLink;
  /** The NTB device (clients attach here). */
  readonly dev: NtbDev;
  readonly #view: BridgeHostView;
  readonly #lay: BridgeBarLayout;
  readonly #clock: NtbClock;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #cmd = new WorkQueue();
  readonly #irq: NtbLine;
  #listener: NtbLineListener | undefined;
  readonly #unwatch: (() => void) | undefined;
  #dbCount = 0;
  #valid = 0;
  #mwCount = 0;
  #spadCount = 0;
  #spadOffset = 0;
  #entrySize = 0;
  #db = 0;
  #mask = 0;
  #reportedUp = false;
  #lost = false;
  #bridgeLost: NtbError | undefined;
  #closed = false;

  private constructor(link: NtbBridgeLink, host: 1 | 2, lay: BridgeBarLayout, options: NtbEpfHostOptions) {
    this.host = host;
    this.link = link;
    this.#lay = lay;
    const k = host - 1;
    const lines = options.lines ?? {
      irq: new SharedNtbLine(link.fabric, epcOffset(k) + F.EPC_IRQ, `HOST${host} irq`),
      peerIrq: new SharedNtbLine(link.fabric, epcOffset(1 - k) + F.EPC_IRQ, `HOST${3 - host} irq`),
    };
    this.#irq = lines.irq;
    this.#view = new BridgeHostView(link, k as 0 | 1, lay, lines.peerIrq);
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.commandTimeoutMs ?? NTB_EPF_COMMAND_TIMEOUT_MS;
    this.#pollMs = options.commandPollMs ?? 0.5;
    if (!(this.#timeoutMs > 0) || !(this.#pollMs > 0)) throw new RangeError('options.commandTimeoutMs and options.commandPollMs must be positive');
    const h = link.config.hosts[k]!;
    this.dev = new NtbDev({
      ops: this,
      memory: this.#view.bus,
      dma: { addr: h.ramBase, size: h.ramSize },
      name: options.name ?? `ntb-epf-host${host}`,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      ...(options.trace === undefined ? {} : { trace: options.trace }),
    });
    const names = options.peerNames;
    const bridgeName = options.bridgeName ?? 'bridge';
    this.#unwatch = options.watchPeer?.((info) => {
      if (names !== undefined && !names.includes(info.peer)) return;
      const e = new NtbError('PEER_DOWN', `${info.peer} went down (${info.status}${info.reason === undefined ? '' : `, ${info.reason}`})`);
      if (info.peer === bridgeName) this.#bridgeLost = e;
      this.peerLost(e);
    });
  }

  /**
   * `ntb_epf_pci_probe`: waits for the bridge's function, sets up MSI-X
   * (`ntb_epf_init_isr`: as many vectors as the function offers, at most 32, at least
   * 4), sends CONFIGURE_DOORBELL, reads MW_COUNT and SPAD_COUNT.
   */
  static async probe(link: NtbBridgeLink, host: 1 | 2, options: NtbEpfHostOptions = {}): Promise<NtbEpfHost> {
    const lay = checkBridgeLink(link);
    if (host !== 1 && host !== 2) throw new RangeError(`host must be 1 or 2, got ${String(host)}`);
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const h = new NtbEpfHost(link, host, lay, options);
    try {
      await h.#init(options);
    } catch (e) {
      h.close();
      throw e;
    }
    return h;
  }

  async #init(options: NtbEpfHostOptions): Promise<void> {
    const clock = this.#clock;
    const deadline = clock.now() + (options.probeTimeoutMs ?? 5000);
    while (!this.#view.bound) {
      if (clock.now() >= deadline) throw new NtbError('TIMEOUT', `HOST${this.host}: the bridge's NTB function did not appear within ${options.probeTimeoutMs ?? 5000} ms`);
      await clockSleep(clock, 1);
    }
    const bus = this.#view.bus;
    const bar0 = this.#view.bar[0];
    // pci_alloc_irq_vectors(MSI-X): program the table the function's capability points at.
    const vectors = Math.min(NTB_EPF_DB_COUNT.MAX + 1, this.link.config.dbCount);
    if (vectors < NTB_EPF_DB_COUNT.MIN + 1) throw new NtbError('NO_MEMORY', `HOST${this.host}: ${vectors} MSI-X vectors, need ≥ ${NTB_EPF_DB_COUNT.MIN + 1}`);
    const table = bar0 + this.#view.msixTableOffset;
    const msi = this.link.config.hosts[this.host - 1]!.msiBase;
    for (let v = 0; v < vectors; v++) {
      const e = table + v * PCI_MSIX_ENTRY_SIZE;
      bus.write32(e, lo32(msi));
      bus.write32(e + 4, hi32(msi));
      bus.write32(e + 8, v);
      bus.write32(e + 12, 0);
    }
    this.#view.setMsixVectors(vectors);
    this.#listener = this.#irq.listen(() => this.#onIrq(), options.listen);
    this.#dbCount = vectors - 1;
    await this.#command(NTB_EPF_CMD.CONFIGURE_DOORBELL, NTB_EPF_MSIX_ENABLE | vectors, 'CONFIGURE_DOORBELL');
    this.#valid = this.#dbCount >= 31 ? 0x7fff_ffff : (1 << this.#dbCount) - 1;
    this.#mwCount = bus.read32(bar0 + C.MW_COUNT);
    this.#spadCount = bus.read32(bar0 + C.SPAD_COUNT);
    this.#spadOffset = bus.read32(bar0 + C.SPAD_OFFSET);
    this.#entrySize = bus.read32(bar0 + C.DB_ENTRY_SIZE);
  }

  /** `ntb_epf_send_command`: ARGUMENT, COMMAND, poll CMD_STATUS until OK / ERROR / timeout, then CMD_STATUS = 0. */
  #command(command: number, argument: number, what: string): Promise<void> {
    return this.#cmd.run(async () => {
      if (this.#closed) throw new NtbError('CLOSED', `${this.dev?.name ?? `HOST${this.host}`} is closed`);
      // Nobody polls the control region of a bridge that is gone: do not wait a timeout for it.
      if (this.#bridgeLost !== undefined) throw new NtbError('PEER_DOWN', `HOST${this.host}: ${what}: the bridge is gone`, { cause: this.#bridgeLost });
      const bus = this.#view.bus;
      const bar0 = this.#view.bar[0];
      bus.write32(bar0 + C.ARGUMENT, argument);
      bus.write32(bar0 + C.COMMAND, command);
      const deadline = this.#clock.now() + this.#timeoutMs;
      let error: NtbError | undefined;
      for (;;) {
        const status = bus.read16(bar0 + C.CMD_STATUS);
        if (status === NTB_EPF_CMD_STATUS.ERROR) {
          error = new NtbError('COMMAND_FAILED', `HOST${this.host}: the NTB function answered ${what} with ERROR`);
          break;
        }
        if (status === NTB_EPF_CMD_STATUS.OK) break;
        if (this.#clock.now() >= deadline) {
          error = new NtbError('TIMEOUT', `HOST${this.host}: no status for ${what} within ${this.#timeoutMs} ms`);
          break;
        }
        await clockSleep(this.#clock, this.#pollMs);
      }
      bus.write16(bar0 + C.CMD_STATUS, 0);
      if (error !== undefined) throw error;
    });
  }

  /** The interrupt handler (`ntb_epf_vec_isr`): vector 0 = link, vector v ≥ 1 = doorbell bit v − 1. */
  #onIrq(): void {
    if (this.#closed) return;
    const pending = this.#view.takePending();
    if ((pending & 1) !== 0) this.#onLinkIrq();
    const doorbells = pending >>> 1;
    if (doorbells !== 0) {
      this.#db = (this.#db | doorbells) & this.#valid;
    }
    let p = this.#db & ~this.#mask;
    while (p !== 0) {
      const low = p & -p;
      p &= p - 1;
      this.dev.dbEvent(32 - Math.clz32(low));
    }
  }

  #onLinkIrq(): void {
    let up = false;
    try {
      up = (this.#view.bus.read16(this.#view.bar[0] + C.LINK_STATUS) & NTB_EPF_LINK_STATUS_UP) !== 0;
    } catch {
      up = false;
    }
    if (this.#reportedUp) {
      // Down, or a down-up flap whose two interrupts coalesced: report the down edge.
      this.#reportedUp = false;
      this.dev.linkEvent();
    }
    if (up && !this.#lost) {
      this.#reportedUp = true;
      this.dev.linkDownCause = undefined;
      this.dev.linkEvent();
    }
  }

  /** The bridge or the other host is gone: report the link down with `cause`. */
  peerLost(cause: unknown = new NtbError('PEER_DOWN', 'the bridge or the peer host is gone')): void {
    if (this.#closed) return;
    this.#lost = true;
    this.dev.linkDownCause = cause;
    if (this.#reportedUp) {
      this.#reportedUp = false;
      this.dev.linkEvent();
    }
  }

  /** `ntb_epf_pci_remove` (minus the link): stop listening. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener?.close();
    this.#unwatch?.();
    this.dev?.clearCtx();
  }

  // ---- NtbDevOps ----

  /** {@inheritDoc NtbDevOps.linkIsUp} */
  linkIsUp(): NtbLinkStatus {
    return this.#reportedUp ? { up: true, speed: NTB_SPEED.GEN3, width: NTB_WIDTH.X4 } : { up: false, speed: NTB_SPEED.NONE, width: NTB_WIDTH.NONE };
  }

  /** {@inheritDoc NtbDevOps.linkEnable} */
  async linkEnable(_maxSpeed: number, _maxWidth: number): Promise<void> {
    this.#lost = false;
    await this.#command(NTB_EPF_CMD.LINK_UP, 0, 'LINK_UP');
  }

  /** {@inheritDoc NtbDevOps.linkDisable} */
  async linkDisable(): Promise<void> {
    await this.#command(NTB_EPF_CMD.LINK_DOWN, 0, 'LINK_DOWN');
  }

  /** {@inheritDoc NtbDevOps.mwCount} */
  mwCount(_pidx: number): number {
    return this.#mwCount;
  }

  /** {@inheritDoc NtbDevOps.mwGetAlign} */
  mwGetAlign(_pidx: number, _widx: number): NtbMwAlign {
    // ntb_epf_mw_get_align: SZ_4K address alignment, size granularity 1.
    return { addrAlign: 4096, sizeAlign: 1, sizeMax: this.#lay.bar2Size - this.#lay.mw1Offset };
  }

  /** {@inheritDoc NtbDevOps.mwSetTrans} */
  async mwSetTrans(_pidx: number, widx: number, addr: number, size: number): Promise<void> {
    const bus = this.#view.bus;
    const bar0 = this.#view.bar[0];
    // The registers and the command go together: serialize them with other commands.
    await this.#cmd.run(() => {
      bus.write32(bar0 + C.ADDR_LOWER, lo32(addr));
      bus.write32(bar0 + C.ADDR_UPPER, hi32(addr));
      bus.write32(bar0 + C.SIZE_LOWER, lo32(size));
      bus.write32(bar0 + C.SIZE_UPPER, hi32(size));
    });
    await this.#command(NTB_EPF_CMD.CONFIGURE_MW, widx, `CONFIGURE_MW ${widx} (${hex(addr)}+${hex(size)})`);
  }

  /** {@inheritDoc NtbDevOps.mwClearTrans} */
  async mwClearTrans(_pidx: number, widx: number): Promise<void> {
    await this.#command(NTB_EPF_CMD.TEARDOWN_MW, widx, `TEARDOWN_MW ${widx}`);
  }

  /** {@inheritDoc NtbDevOps.peerMwCount} */
  peerMwCount(): number {
    return this.#mwCount;
  }

  /** {@inheritDoc NtbDevOps.peerMwGetAddr} */
  peerMwGetAddr(_widx: number): NtbPeerMwAddr {
    // ntb_epf_peer_mw_get_addr: BAR2 + MW1_OFFSET, the rest of the BAR.
    return { base: this.#view.bar[2] + this.#lay.mw1Offset, size: this.#lay.bar2Size - this.#lay.mw1Offset };
  }

  /** {@inheritDoc NtbDevOps.dbValidMask} */
  dbValidMask(): number {
    return this.#valid;
  }

  /** {@inheritDoc NtbDevOps.dbVectorCount} */
  dbVectorCount(): number {
    return this.#dbCount + 1;
  }

  /** {@inheritDoc NtbDevOps.dbVectorMask} */
  dbVectorMask(vector: number): number {
    return vector >= 1 && vector <= this.#dbCount ? 1 << (vector - 1) : 0;
  }

  /** {@inheritDoc NtbDevOps.dbRead} */
  dbRead(): number {
    return this.#db;
  }

  /** {@inheritDoc NtbDevOps.dbClear} */
  dbClear(bits: number): void {
    this.#db &= ~bits;
  }

  /** {@inheritDoc NtbDevOps.dbReadMask} */
  dbReadMask(): number {
    return this.#mask;
  }

  /** {@inheritDoc NtbDevOps.dbSetMask} */
  dbSetMask(bits: number): void {
    this.#mask |= bits & this.#valid;
  }

  /** {@inheritDoc NtbDevOps.dbClearMask} */
  dbClearMask(bits: number): void {
    this.#mask &= ~bits;
    if ((this.#db & bits) !== 0) this.#irq.ring();
  }

  /** `peer_db_set`: ring the peer's doorbell bits; bit b writes DB_DATA(b + 1) at BAR2 + DB_ENTRY_SIZE·(b + 1) + DB_OFFSET(b + 1). */
  peerDbSet(bits: number): void {
    const bus = this.#view.bus;
    const bar0 = this.#view.bar[0];
    const bar2 = this.#view.bar[2];
    let b = bits & this.#valid;
    while (b !== 0) {
      const low = b & -b;
      b &= b - 1;
      const n = 32 - Math.clz32(low); // bit index + 1: the interrupt number on the other host
      const data = bus.read32(bar0 + C.DB_DATA + 4 * n);
      const offset = bus.read32(bar0 + C.DB_OFFSET + 4 * n);
      bus.write32(bar2 + this.#entrySize * n + offset, data);
    }
  }

  /** {@inheritDoc NtbDevOps.spadCount} */
  spadCount(): number {
    return this.#spadCount;
  }

  /** {@inheritDoc NtbDevOps.spadRead} */
  spadRead(sidx: number): number {
    return this.#view.bus.read32(this.#view.bar[0] + this.#spadOffset + 4 * sidx);
  }

  /** {@inheritDoc NtbDevOps.spadWrite} */
  spadWrite(sidx: number, val: number): void {
    this.#view.bus.write32(this.#view.bar[0] + this.#spadOffset + 4 * sidx, val >>> 0);
  }

  /** {@inheritDoc NtbDevOps.peerSpadRead} */
  peerSpadRead(_pidx: number, sidx: number): number {
    return this.#view.bus.read32(this.#view.bar[1] + 4 * sidx);
  }

  /** {@inheritDoc NtbDevOps.peerSpadWrite} */
  peerSpadWrite(_pidx: number, sidx: number, val: number): void {
    this.#view.bus.write32(this.#view.bar[1] + 4 * sidx, val >>> 0);
  }
}

/** Probes a bridge host's NTB device (HOST1 or HOST2). @public */
export function openNtbEpfHost(link: NtbBridgeLink, host: 1 | 2, options?: NtbEpfHostOptions): Promise<NtbEpfHost> {
  return NtbEpfHost.probe(link, host, options);
}

