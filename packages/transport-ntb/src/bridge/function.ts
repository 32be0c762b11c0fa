import { ArrayBufferMemory } from '@x/vring';
import {
  NTB_EPF_CMD,
  NTB_EPF_CMD_STATUS,
  NTB_EPF_CTRL as C,
  NTB_EPF_LINK_STATUS_UP,
  NTB_EPF_MSIX_ENABLE,
  NTB_EPF_POLL_PERIOD_MS,
} from '../constants.js';
import { NtbError } from '../errors.js';
import { join64 } from '../internal/util.js';
import { SharedNtbLine, systemClock, type NtbClock, type NtbLine } from '../wire.js';
import type { NtbPeerWatch } from '../pair/port.js';
import { FabricEpc, type NtbBridgeEpc } from './fabric.js';
import { NTB_BRIDGE_FABRIC as F, checkBridgeLink, epcOffset, type BridgeBarLayout, type NtbBridgeLink } from './link.js';

/** `DB_COUNT_MASK` of the CONFIGURE_DOORBELL argument. */
const DB_COUNT_MASK = 0xffff;
/** `MAX_DB_COUNT`. */
const MAX_DB_COUNT = 32;

/** The bridge's two host interrupt lines (EPC1 → HOST1 MSI-X, EPC2 → HOST2 MSI-X). @public */
export interface NtbBridgeLines {
  /** HOST1's interrupt line. */
  readonly host1Irq: NtbLine;
  /** HOST2's interrupt line. */
  readonly host2Irq: NtbLine;
}

/** What the bridge function reports. @public */
export type NtbEpfFunctionEvent =
  | { readonly type: 'command'; readonly host: 1 | 2; readonly command: number; readonly argument: number; readonly status: number }
  | { readonly type: 'link'; readonly up: boolean }
  | { readonly type: 'host-down'; readonly host: 1 | 2 }
  | { readonly type: 'error'; readonly error: unknown };

/** Options of {@link NtbEpfFunction}. @public */
export interface NtbEpfFunctionOptions {
  /** The interrupt lines. Default: the fabric's own words. */
  readonly lines?: NtbBridgeLines;
  /** The bridge's clock. Default `systemClock`. */
  readonly clock?: NtbClock;
  /** Command poll period, ms. Default 5 (`epf_ntb_cmd_handler`). */
  readonly pollPeriodMs?: number;
  /** Reports a crashed host; its interface's link then goes down (mainline's link-down event). */
  readonly watchPeer?: NtbPeerWatch;
  /** The names of HOST1 and HOST2 for {@link NtbEpfFunctionOptions.watchPeer}. Default `['host1', 'host2']`. */
  readonly hostNames?: readonly [string, string];
  /** Receives {@link NtbEpfFunctionEvent}s. */
  readonly onEvent?: (event: NtbEpfFunctionEvent) => void;
  /** The two endpoint controllers. Default: this package's model over the fabric. */
  readonly epcs?: readonly [NtbBridgeEpc, NtbBridgeEpc];
}

/**
 * The NTB endpoint function on the bridge SoC (mainline `pci-epf-ntb.c`, rfc-protocol
 * §2.11): it configures two endpoint controllers so that HOST1 and HOST2 each see an NTB
 * — BAR0 a control region and their own scratchpads, BAR1 the other host's
 * scratchpads, BAR2 doorbell entries and memory window 1 that leave through the other
 * controller's outbound windows — and serves each host's commands from its control
 * region (polled every 5 ms): CONFIGURE_DOORBELL maps the doorbell entries onto the
 * other host's MSI-X addresses and fills DB_DATA / DB_OFFSET, CONFIGURE_MW maps window 1
 * onto the address the host wrote in ADDR / SIZE, LINK_UP (both hosts) and LINK_DOWN
 * set LINK_STATUS and send vector 0 to both hosts.
 *
 * @public
 */
export class NtbEpfFunction {
  /** The link description. */
  readonly link: NtbBridgeLink;
  /** The controllers (EPC1, EPC2). */
  readonly epcs: readonly [NtbBridgeEpc, NtbBridgeEpc];
  readonly #lay: BridgeBarLayout;
  readonly #ram: ArrayBufferMemory;
  readonly #clock: NtbClock;
  readonly #pollMs: number;
  readonly #onEvent: ((event: NtbEpfFunctionEvent) => void) | undefined;
  readonly #linkup: [boolean, boolean] = [false, false];
  readonly #timers: Array<(() => void) | undefined> = [undefined, undefined];
  readonly #unwatch: (() => void) | undefined;
  #bound = false;

  constructor(link: NtbBridgeLink, options: NtbEpfFunctionOptions = {}) {
    this.#lay = checkBridgeLink(link);
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.link = link;
    this.#clock = options.clock ?? systemClock;
    this.#pollMs = options.pollPeriodMs ?? NTB_EPF_POLL_PERIOD_MS;
    if (!(this.#pollMs > 0)) throw new RangeError(`options.pollPeriodMs must be positive, got ${this.#pollMs}`);
    this.#onEvent = options.onEvent;
    this.#ram = new ArrayBufferMemory(link.bridgeMemory, { base: link.config.bridgeRamBase, name: 'bridge RAM' });
    const lines = options.lines ?? {
      host1Irq: new SharedNtbLine(link.fabric, epcOffset(0) + F.EPC_IRQ, 'HOST1 irq'),
      host2Irq: new SharedNtbLine(link.fabric, epcOffset(1) + F.EPC_IRQ, 'HOST2 irq'),
    };
    this.epcs = options.epcs ?? [new FabricEpc(link, 0, lines.host1Irq, this.#ram), new FabricEpc(link, 1, lines.host2Irq, this.#ram)];
    const names = options.hostNames ?? ['host1', 'host2'];
    this.#unwatch = options.watchPeer?.((info) => {
      const k = names.indexOf(info.peer);
      if (k === 0 || k === 1) this.hostDown(k + 1 as 1 | 2);
    });
  }

  #emit(e: NtbEpfFunctionEvent): void {
    try {
      this.#onEvent?.(e);
    } catch {
      // An observer's failure is not the function's.
    }
  }

  /** Bridge-local address of controller k's BAR0 backing (control region + scratchpads). */
  #bar0(k: number): number {
    return this.link.config.bridgeRamBase + k * this.#lay.bar0Size;
  }

  /**
   * `epf_ntb_bind`: lays out both controllers' BARs (`epf_ntb_config_spad_bar_alloc`,
   * `epf_ntb_db_mw_bar_init`, `epf_ntb_peer_spad_bar_set`), initialises the control
   * regions, starts the controllers and the command pollers.
   */
  bind(): void {
    if (this.#bound) throw new NtbError('BUSY', 'the function is already bound');
    const c = this.link.config;
    const lay = this.#lay;
    for (const k of [0, 1] as const) {
      const ctrl = this.#bar0(k);
      this.#ram.write(ctrl, new Uint8Array(lay.bar0Size));
      this.#ram.write32(ctrl + C.SPAD_OFFSET, lay.spadOffset);
      this.#ram.write32(ctrl + C.SPAD_COUNT, c.spadCount);
      this.#ram.write32(ctrl + C.MW_COUNT, 1);
      this.#ram.write32(ctrl + C.DB_ENTRY_SIZE, c.align);
      this.#ram.write32(ctrl + C.MW1_OFFSET, lay.mw1Offset);
    }
    for (const k of [0, 1] as const) {
      const epc = this.epcs[k];
      const j = 1 - k;
      epc.setBar(0, this.#bar0(k), lay.bar0Size);
      // The peer scratchpad BAR is the other controller's self scratchpads.
      epc.setBar(1, this.#bar0(j) + lay.spadOffset, lay.spadSize);
      // Doorbells and MW1 live in the other controller's outbound space.
      epc.setBar(2, this.epcs[j].obBase, lay.bar2Size);
      epc.setMsix(lay.msixTableOffset, c.dbCount);
      epc.start();
    }
    this.#bound = true;
    for (const k of [0, 1] as const) this.#schedule(k);
  }

  /** `epf_ntb_unbind`: stop polling, take the link down, stop the controllers. Idempotent. */
  close(): void {
    if (!this.#bound) {
      this.#unwatch?.();
      return;
    }
    this.#bound = false;
    for (const k of [0, 1]) {
      this.#timers[k]?.();
      this.#timers[k] = undefined;
    }
    if (this.#linkup[0] || this.#linkup[1]) this.#linkUp(false);
    this.#linkup[0] = this.#linkup[1] = false;
    for (const e of this.epcs) e.stop();
    this.#unwatch?.();
  }

  /** A host's link to its controller went down (the host crashed): its interface's link is down, as LINK_DOWN. */
  hostDown(host: 1 | 2): void {
    if (!this.#bound) return;
    const k = host - 1;
    const wasUp = this.#linkup[0] && this.#linkup[1];
    this.#linkup[k] = false;
    this.#emit({ type: 'host-down', host });
    if (wasUp) this.#linkUp(false);
  }

  #schedule(k: number): void {
    if (!this.#bound) return;
    this.#timers[k] = this.#clock.setTimer(this.#pollMs, () => {
      this.#timers[k] = undefined;
      try {
        this.#serve(k as 0 | 1);
      } catch (e) {
        this.#emit({ type: 'error', error: e });
      }
      this.#schedule(k);
    });
  }

  /** `epf_ntb_cmd_handler` for controller k. */
  #serve(k: 0 | 1): void {
    const ctrl = this.#bar0(k);
    const ram = this.#ram;
    const command = ram.read32(ctrl + C.COMMAND);
    if (command === 0) return;
    const argument = ram.read32(ctrl + C.ARGUMENT);
    ram.write32(ctrl + C.COMMAND, 0);
    ram.write32(ctrl + C.ARGUMENT, 0);
    let status: number = NTB_EPF_CMD_STATUS.OK;
    try {
      switch (command) {
        case NTB_EPF_CMD.CONFIGURE_DOORBELL:
          this.#configureDb(k, argument & DB_COUNT_MASK, (argument & NTB_EPF_MSIX_ENABLE) !== 0);
          break;
        case NTB_EPF_CMD.TEARDOWN_DOORBELL:
          for (let i = 0; i < MAX_DB_COUNT; i++) this.epcs[k].unmapAddr(this.epcs[k].obBase + i * this.link.config.align);
          break;
        case NTB_EPF_CMD.CONFIGURE_MW:
          this.#configureMw(k, argument);
          break;
        case NTB_EPF_CMD.TEARDOWN_MW:
          this.epcs[k].unmapAddr(this.epcs[k].obBase + this.#lay.mw1Offset);
          break;
        case NTB_EPF_CMD.LINK_UP:
          this.#linkup[k] = true;
          if (this.#linkup[0] && this.#linkup[1]) this.#linkUp(true);
          break;
        case NTB_EPF_CMD.LINK_DOWN: {
          const wasUp = this.#linkup[0] && this.#linkup[1];
          this.#linkup[k] = false;
          if (wasUp) this.#linkUp(false);
          break;
        }
        default:
          // Mainline only logs an unknown command, so the host times out; answer ERROR.
          status = NTB_EPF_CMD_STATUS.ERROR;
      }
    } catch (e) {
      status = NTB_EPF_CMD_STATUS.ERROR;
      this.#emit({ type: 'error', error: e });
    }
    ram.write16(ctrl + C.CMD_STATUS, status);
    this.#emit({ type: 'command', host: (k + 1) as 1 | 2, command, argument, status });
  }

  /**
   * `epf_ntb_configure_msix` / `_msi`: the doorbell entries of the other host's BAR2 (in
   * this controller's outbound space, `align` bytes apart) map onto this host's MSI-X
   * addresses; the other host's DB_DATA(i) / DB_OFFSET(i) say what to write where.
   */
  #configureDb(k: 0 | 1, count: number, _msix: boolean): void {
    if (count > MAX_DB_COUNT) throw new NtbError('BAD_DOORBELL', `HOST${k + 1} asks for ${count} doorbells (max ${MAX_DB_COUNT})`);
    const epc = this.epcs[k];
    const peerCtrl = this.#bar0(1 - k);
    const al = this.link.config.align;
    for (let i = 0; i < count; i++) {
      const m = epc.msixEntry(i);
      if (m.addr === 0) throw new NtbError('BAD_DOORBELL', `HOST${k + 1} has no MSI-X vector ${i}`);
      epc.mapAddr(epc.obBase + i * al, m.addr - (m.addr % al), al);
      this.#ram.write32(peerCtrl + C.DB_DATA + 4 * i, m.data);
      this.#ram.write32(peerCtrl + C.DB_OFFSET + 4 * i, m.addr % al);
    }
  }

  /** `epf_ntb_configure_mw`: window 1 of the other host's BAR2 reaches this host's ADDR/SIZE. */
  #configureMw(k: 0 | 1, mw: number): void {
    if (mw !== 0) throw new NtbError('BAD_WINDOW', `HOST${k + 1}: memory window ${mw} does not exist (num_mws = 1)`);
    const ctrl = this.#bar0(k);
    const addr = join64(this.#ram.read32(ctrl + C.ADDR_LOWER), this.#ram.read32(ctrl + C.ADDR_UPPER));
    const size = join64(this.#ram.read32(ctrl + C.SIZE_LOWER), this.#ram.read32(ctrl + C.SIZE_UPPER));
    if (size > this.link.config.mwSize) throw new NtbError('BAD_WINDOW', `HOST${k + 1}: MW size ${size} > supported ${this.link.config.mwSize}`);
    this.epcs[k].mapAddr(this.epcs[k].obBase + this.#lay.mw1Offset, addr, size);
  }

  /** `epf_ntb_link_up`: LINK_STATUS in both control regions, then vector 0 (interrupt 1) to both hosts. */
  #linkUp(up: boolean): void {
    for (const k of [0, 1] as const) {
      const at = this.#bar0(k) + C.LINK_STATUS;
      const s = this.#ram.read16(at);
      this.#ram.write16(at, up ? s | NTB_EPF_LINK_STATUS_UP : s & ~NTB_EPF_LINK_STATUS_UP);
    }
    for (const k of [0, 1] as const) this.epcs[k].raiseIrq(0);
    this.#emit({ type: 'link', up });
  }
}

/** Makes the bridge function over a link description and binds it. @public */
export function startNtbEpfFunction(link: NtbBridgeLink, options?: NtbEpfFunctionOptions): NtbEpfFunction {
  const f = new NtbEpfFunction(link, options);
  f.bind();
  return f;
}
