import type { GuestMemory } from '@x/vring';
import { NtbError } from './errors.js';

/** A value or a promise of it: ops that talk to a bridge answer asynchronously. @public */
export type NtbMaybePromise<T> = T | Promise<T>;

/** `NTB_DEF_PEER_IDX` (`include/linux/ntb.h`): the peer index of a two-port NTB. @public */
export const NTB_DEF_PEER_IDX = 0;

/** `NTB_DEF_PEER_CNT` (`include/linux/ntb.h`): peers of a two-port NTB. @public */
export const NTB_DEF_PEER_CNT = 1;

/** `enum ntb_topo` (`include/linux/ntb.h`). @public */
export const NTB_TOPO = {
  /** `NTB_TOPO_NONE`: unknown or invalid. */
  NONE: -1,
  /** `NTB_TOPO_PRI`: on the primary side of the local NTB. */
  PRI: 0,
  /** `NTB_TOPO_SEC`: on the secondary side of a remote NTB. */
  SEC: 1,
  /** `NTB_TOPO_B2B_USD`: primary side, upstream of a remote NTB. */
  B2B_USD: 2,
  /** `NTB_TOPO_B2B_DSD`: primary side, downstream of a remote NTB. */
  B2B_DSD: 3,
  /** `NTB_TOPO_SWITCH`: through a switch that supports NTB. */
  SWITCH: 4,
  /** `NTB_TOPO_CROSSLINK`: through two symmetric switches. */
  CROSSLINK: 5,
} as const;

/** `enum ntb_speed` (`include/linux/ntb.h`). @public */
export const NTB_SPEED = {
  /** `NTB_SPEED_AUTO`: the maximum supported. */
  AUTO: -1,
  /** `NTB_SPEED_NONE`: not trained. */
  NONE: 0,
  /** `NTB_SPEED_GEN1`. */
  GEN1: 1,
  /** `NTB_SPEED_GEN2`. */
  GEN2: 2,
  /** `NTB_SPEED_GEN3`. */
  GEN3: 3,
  /** `NTB_SPEED_GEN4`. */
  GEN4: 4,
} as const;

/** `enum ntb_width` (`include/linux/ntb.h`): lanes. @public */
export const NTB_WIDTH = {
  /** `NTB_WIDTH_AUTO`: the maximum supported. */
  AUTO: -1,
  /** `NTB_WIDTH_NONE`: not trained. */
  NONE: 0,
  /** `NTB_WIDTH_1`. */
  X1: 1,
  /** `NTB_WIDTH_2`. */
  X2: 2,
  /** `NTB_WIDTH_4`. */
  X4: 4,
  /** `NTB_WIDTH_8`. */
  X8: 8,
  /** `NTB_WIDTH_12`. */
  X12: 12,
  /** `NTB_WIDTH_16`. */
  X16: 16,
  /** `NTB_WIDTH_32`. */
  X32: 32,
} as const;

/** What `link_is_up` answers: the link state and, when up, its speed and width. @public */
export interface NtbLinkStatus {
  /** True when the link is up (Linux: a non-zero return). */
  readonly up: boolean;
  /** {@link NTB_SPEED} of the trained link (`NONE` when down). */
  readonly speed: number;
  /** {@link NTB_WIDTH} of the trained link (`NONE` when down). */
  readonly width: number;
}

/** What `mw_get_align` answers for one inbound memory window. @public */
export interface NtbMwAlign {
  /** Alignment of the translated (DMA) address. */
  readonly addrAlign: number;
  /** Granularity of the translated size. */
  readonly sizeAlign: number;
  /** Largest translated size. */
  readonly sizeMax: number;
}

/** What `peer_mw_get_addr` answers: where the peer's memory window appears on this host's bus. @public */
export interface NtbPeerMwAddr {
  /** Bus (physical) address of the window aperture (a BAR). */
  readonly base: number;
  /** Size of the aperture. */
  readonly size: number;
}

/** What `msg_read` answers. @public */
export interface NtbMsg {
  /** Index of the peer that sent it. */
  readonly pidx: number;
  /** The 32-bit message. */
  readonly msg: number;
}

/**
 * The hardware driver's operations, Linux `struct ntb_dev_ops` (`include/linux/ntb.h`),
 * in the same order and with the same meaning. A hardware backend implements them; a
 * client (NtbVirtio, NtbVhost, …) calls them through {@link NtbDev}.
 *
 * Conventions: `pidx` is a peer index (0 = {@link NTB_DEF_PEER_IDX} on a two-port NTB),
 * `widx` a memory-window index, `sidx` a scratchpad index, `midx` a message register.
 * Doorbell masks are numbers of up to 32 bits (Linux: u64). Register accesses (spads,
 * doorbells, link state) are synchronous like MMIO; operations that a hardware driver
 * carries out by a command to a bridge (link enable / disable, translations) may answer
 * with a promise.
 *
 * Which ops are required, and which come in pairs, is checked by
 * {@link checkNtbDevOps} when an {@link NtbDev} is made (Linux `ntb_dev_ops_is_valid`).
 *
 * @public
 */
export interface NtbDevOps {
  /** `port_number`: this port's number (multi-port devices; with the other three port ops). */
  portNumber?(): number;
  /** `peer_port_count`. */
  peerPortCount?(): number;
  /** `peer_port_number`. */
  peerPortNumber?(pidx: number): number;
  /** `peer_port_idx`. */
  peerPortIdx?(port: number): number;

  /** `link_is_up` (required). */
  linkIsUp(): NtbLinkStatus;
  /** `link_enable` (required): allow the link to come up; a link event follows when it does. */
  linkEnable(maxSpeed: number, maxWidth: number): NtbMaybePromise<void>;
  /** `link_disable` (required): take the link down; both hosts get a link event. */
  linkDisable(): NtbMaybePromise<void>;

  /** `mw_count` (required): inbound memory windows toward peer `pidx`. */
  mwCount(pidx: number): number;
  /** `mw_get_align` (required): alignment and size limits of inbound window `widx`. */
  mwGetAlign(pidx: number, widx: number): NtbMwAlign;
  /** `mw_set_trans`: translate inbound window `widx` onto local DMA memory at `addr`. */
  mwSetTrans?(pidx: number, widx: number, addr: number, size: number): NtbMaybePromise<void>;
  /** `mw_clear_trans`: remove that translation. */
  mwClearTrans?(pidx: number, widx: number): NtbMaybePromise<void>;
  /** `peer_mw_count` (required): outbound windows (apertures onto the peer). */
  peerMwCount(): number;
  /** `peer_mw_get_addr` (required): where outbound window `widx` appears on this host's bus. */
  peerMwGetAddr(widx: number): NtbPeerMwAddr;
  /** `peer_mw_set_trans`: set the translation of the peer's window (devices where the outbound side translates). */
  peerMwSetTrans?(pidx: number, widx: number, addr: number, size: number): NtbMaybePromise<void>;
  /** `peer_mw_clear_trans`. */
  peerMwClearTrans?(pidx: number, widx: number): NtbMaybePromise<void>;

  /** `db_is_unsafe`: doorbell registers are not safe to use (hardware errata). */
  dbIsUnsafe?(): boolean;
  /** `db_valid_mask` (required): the doorbell bits that exist. */
  dbValidMask(): number;
  /** `db_vector_count` (with `db_vector_mask`): interrupt vectors the doorbells arrive on. */
  dbVectorCount?(): number;
  /** `db_vector_mask`: the doorbell bits vector `vector` reports. */
  dbVectorMask?(vector: number): number;
  /** `db_read` (required): the doorbell bits that are set. */
  dbRead(): number;
  /** `db_set`: set own doorbell bits (raises own interrupt; for tests). */
  dbSet?(bits: number): void;
  /** `db_clear` (required): clear own doorbell bits (acknowledge). */
  dbClear(bits: number): void;
  /** `db_read_mask`: the masked doorbell bits. */
  dbReadMask?(): number;
  /** `db_set_mask` (required): mask bits (no interrupt for them). */
  dbSetMask(bits: number): void;
  /** `db_clear_mask` (required): unmask bits; pending ones interrupt now. */
  dbClearMask(bits: number): void;
  /** `peer_db_addr`: bus address and size of the peer doorbell register. */
  peerDbAddr?(): { readonly addr: number; readonly size: number };
  /** `peer_db_read`. */
  peerDbRead?(): number;
  /** `peer_db_set` (required): ring the peer's doorbell bits. */
  peerDbSet(bits: number): void;
  /** `peer_db_clear`. */
  peerDbClear?(bits: number): void;
  /** `peer_db_read_mask`. */
  peerDbReadMask?(): number;
  /** `peer_db_set_mask`. */
  peerDbSetMask?(bits: number): void;
  /** `peer_db_clear_mask`. */
  peerDbClearMask?(bits: number): void;

  /** `spad_is_unsafe`. */
  spadIsUnsafe?(): boolean;
  /** `spad_count` (with `spad_read`, `spad_write`, `peer_spad_write`): scratchpads per side. */
  spadCount?(): number;
  /** `spad_read`: one of this host's own scratchpads. */
  spadRead?(sidx: number): number;
  /** `spad_write`: one of this host's own scratchpads. */
  spadWrite?(sidx: number, val: number): void;
  /** `peer_spad_addr`: bus address of the peer's scratchpad `sidx`. */
  peerSpadAddr?(pidx: number, sidx: number): number;
  /** `peer_spad_read`: one of the peer's scratchpads. */
  peerSpadRead?(pidx: number, sidx: number): number;
  /** `peer_spad_write`: one of the peer's scratchpads. */
  peerSpadWrite?(pidx: number, sidx: number, val: number): void;

  /** `msg_count` (with the other message ops): message registers. */
  msgCount?(): number;
  /** `msg_inbits`. */
  msgInbits?(): number;
  /** `msg_outbits`. */
  msgOutbits?(): number;
  /** `msg_read_sts`. */
  msgReadSts?(): number;
  /** `msg_clear_sts`. */
  msgClearSts?(bits: number): void;
  /** `msg_set_mask`. */
  msgSetMask?(bits: number): void;
  /** `msg_clear_mask`. */
  msgClearMask?(bits: number): void;
  /** `msg_read`. */
  msgRead?(midx: number): NtbMsg;
  /** `msg_write`. */
  msgWrite?(midx: number, pidx: number, msg: number): void;
}

/**
 * A client's callbacks, Linux `struct ntb_ctx_ops`: what the hardware driver calls on a
 * link change, a doorbell vector and a message. They run in the host's interrupt path
 * (a line handler): they should record, schedule and return.
 *
 * @public
 */
export interface NtbCtxOps {
  /** `link_event`: the link changed; read {@link NtbDev.linkIsUp}. */
  linkEvent?(): void;
  /** `db_event`: doorbell vector `vector` fired; read and clear the bits of {@link NtbDev.dbVectorMask}. */
  dbEvent?(vector: number): void;
  /** `msg_event`: a message arrived. */
  msgEvent?(): void;
}

const REQUIRED: ReadonlyArray<keyof NtbDevOps> = [
  'linkIsUp',
  'linkEnable',
  'linkDisable',
  'mwCount',
  'mwGetAlign',
  'peerMwCount',
  'peerMwGetAddr',
  'dbValidMask',
  'dbRead',
  'dbClear',
  'dbSetMask',
  'dbClearMask',
  'peerDbSet',
];

const ALL: ReadonlyArray<keyof NtbDevOps> = [
  'portNumber', 'peerPortCount', 'peerPortNumber', 'peerPortIdx',
  'linkIsUp', 'linkEnable', 'linkDisable',
  'mwCount', 'mwGetAlign', 'mwSetTrans', 'mwClearTrans', 'peerMwCount', 'peerMwGetAddr', 'peerMwSetTrans', 'peerMwClearTrans',
  'dbIsUnsafe', 'dbValidMask', 'dbVectorCount', 'dbVectorMask', 'dbRead', 'dbSet', 'dbClear', 'dbReadMask', 'dbSetMask', 'dbClearMask',
  'peerDbAddr', 'peerDbRead', 'peerDbSet', 'peerDbClear', 'peerDbReadMask', 'peerDbSetMask', 'peerDbClearMask',
  'spadIsUnsafe', 'spadCount', 'spadRead', 'spadWrite', 'peerSpadAddr', 'peerSpadRead', 'peerSpadWrite',
  'msgCount', 'msgInbits', 'msgOutbits', 'msgReadSts', 'msgClearSts', 'msgSetMask', 'msgClearMask', 'msgRead', 'msgWrite',
];

/** Ops that must be present together with their leader, or absent together ("both set, or both unset"). */
const GROUPS: ReadonlyArray<readonly [keyof NtbDevOps, ReadonlyArray<keyof NtbDevOps>, string]> = [
  ['portNumber', ['peerPortCount', 'peerPortNumber', 'peerPortIdx'], 'port operations are required for multiport devices'],
  ['dbVectorCount', ['dbVectorMask'], 'db_vector_count and db_vector_mask come together'],
  ['spadCount', ['spadRead', 'spadWrite', 'peerSpadRead', 'peerSpadWrite'], 'the scratchpad interface is all or nothing'],
  ['msgCount', ['msgInbits', 'msgOutbits', 'msgReadSts', 'msgClearSts', 'msgRead', 'msgWrite'], 'the message interface is all or nothing'],
  ['mwSetTrans', ['mwClearTrans'], 'mw_set_trans needs mw_clear_trans'],
  ['peerMwSetTrans', ['peerMwClearTrans'], 'peer_mw_set_trans needs peer_mw_clear_trans'],
];

/**
 * Checks an ops table like Linux `ntb_dev_ops_is_valid` (`include/linux/ntb.h`) and
 * returns it, or throws `INVALID_OPS` naming every problem: a required op missing
 * (link, window, doorbell ops), neither `mwSetTrans` nor `peerMwSetTrans`, half of a
 * pair or group (`dbVectorCount`/`dbVectorMask`, the scratchpad and message groups, the
 * port group), or a member that is not a function. Stricter than Linux where Linux
 * leaves a line commented out: `mwSetTrans` needs `mwClearTrans` (and the peer pair),
 * and `peerSpadRead` belongs to the scratchpad group.
 *
 * @public
 */
export function checkNtbDevOps(ops: NtbDevOps): NtbDevOps {
  if (typeof ops !== 'object' || ops === null) throw new TypeError('ops must be an object');
  const problems: string[] = [];
  const has = (k: keyof NtbDevOps): boolean => (ops as unknown as Record<string, unknown>)[k] !== undefined;
  for (const k of ALL) {
    const v = (ops as unknown as Record<string, unknown>)[k];
    if (v !== undefined && typeof v !== 'function') problems.push(`${k} is not a function`);
  }
  for (const k of REQUIRED) if (!has(k)) problems.push(`${k} is required`);
  if (!has('mwSetTrans') && !has('peerMwSetTrans')) problems.push('one of mwSetTrans or peerMwSetTrans is required (one or both MW interfaces)');
  for (const [lead, members, why] of GROUPS) {
    for (const m of members) {
      if (has(lead) !== has(m)) problems.push(`${has(lead) ? `${m} is missing` : `${m} without ${lead}`}: ${why}`);
    }
  }
  if (problems.length > 0) throw new NtbError('INVALID_OPS', `the NTB device ops are invalid: ${problems.join('; ')}`);
  return ops;
}

/**
 * One traced call on an {@link NtbDev} (its `trace` option): the Linux name of the
 * call and its numeric arguments. Spad reads are not traced (the handshake polls them).
 *
 * @public
 */
export interface NtbTraceEvent {
  /** `link_enable`, `link_disable`, `mw_set_trans`, `mw_clear_trans`, `spad_write`, `peer_spad_write`, `peer_db_set`, `db_event`, `link_event`. */
  readonly op: string;
  /** The arguments: indexes, values, addresses, bits. */
  readonly args: readonly number[];
}

/** A range of host memory that `dma_alloc_coherent` may hand out for this device. @public */
export interface NtbDmaRegion {
  /** First bus address. */
  readonly addr: number;
  /** Bytes. */
  readonly size: number;
}

/** Options of {@link NtbDev}. @public */
export interface NtbDevOptions {
  /** The hardware driver's ops; checked with {@link checkNtbDevOps}. */
  readonly ops: NtbDevOps;
  /**
   * The host's physical address space as its CPU sees it: its RAM and the apertures of
   * the peer memory windows (`peer_mw_get_addr`). A client maps the aperture from here
   * (its `ioremap`); accesses through an aperture whose window the peer has not
   * translated are bus errors.
   */
  readonly memory: GuestMemory;
  /** The RAM this device may allocate coherent DMA memory from; `memory.view` must cover it. */
  readonly dma: NtbDmaRegion;
  /** Name, for messages. Default `ntb`. */
  readonly name?: string;
  /** {@link NTB_TOPO}. Default `NONE`. */
  readonly topo?: number;
  /** Receives what a client callback threw (a callback must not throw; the interrupt path goes on). */
  readonly onError?: (error: unknown) => void;
  /** Receives every state-changing call and every event ({@link NtbTraceEvent}): a bring-up trace. */
  readonly trace?: (event: NtbTraceEvent) => void;
}

function checkIndex(name: string, v: number, count: number): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < 0 || v >= count) throw new RangeError(`${name} must be an integer in 0..${count - 1}, got ${v}`);
}

function checkBits(name: string, bits: number): void {
  if (typeof bits !== 'number') throw new TypeError(`${name} must be a number, got ${typeof bits}`);
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffff_ffff) throw new RangeError(`${name} must be a 32-bit mask, got ${bits}`);
}

function checkU32(name: string, v: number): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new RangeError(`${name} must be a u32, got ${v}`);
}

/**
 * An NTB device, Linux `struct ntb_dev` with the inline wrappers of
 * `include/linux/ntb.h`: the hardware driver's {@link NtbDevOps} (checked here, as
 * `ntb_register_device` does), the client's context ({@link NtbDev.setCtx}, Linux
 * `ntb_set_ctx`), and the calls a client makes (`ntb_link_is_up`, `ntb_mw_set_trans`,
 * `ntb_peer_db_set`, `ntb_spad_read`, …) with argument checks and Linux's fallbacks.
 * The hardware driver reports interrupts with {@link NtbDev.linkEvent} and
 * {@link NtbDev.dbEvent} (`ntb_link_event`, `ntb_db_event`).
 *
 * @public
 */
export class NtbDev {
  /** Name, for messages. */
  readonly name: string;
  /** The hardware driver's ops. */
  readonly ops: NtbDevOps;
  /** The topology ({@link NTB_TOPO}), Linux `ntb_dev.topo`. */
  readonly topo: number;
  /** The host's physical address space ({@link NtbDevOptions.memory}). */
  readonly memory: GuestMemory;
  /** Coherent DMA memory ({@link NtbDevOptions.dma}). */
  readonly dma: NtbDmaRegion;
  /** Why the link last went down, when the hardware driver knows more than "down" (a peer crash). */
  linkDownCause: unknown = undefined;
  #ctx: NtbCtxOps | undefined;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #trace: ((event: NtbTraceEvent) => void) | undefined;

  constructor(options: NtbDevOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.ops = checkNtbDevOps(options.ops);
    const memory = options.memory;
    if (typeof memory !== 'object' || memory === null || typeof memory.read32 !== 'function') throw new TypeError('options.memory must be a GuestMemory');
    const dma = options.dma;
    if (typeof dma !== 'object' || dma === null) throw new TypeError('options.dma must be an object');
    if (typeof dma.addr !== 'number' || typeof dma.size !== 'number') throw new TypeError('options.dma.addr and options.dma.size must be numbers');
    if (!Number.isSafeInteger(dma.addr) || dma.addr < 0 || !Number.isSafeInteger(dma.size) || dma.size < 0) {
      throw new RangeError(`options.dma must be a range of bus addresses, got 0x${dma.addr.toString(16)}+0x${dma.size.toString(16)}`);
    }
    if (!memory.contains(dma.addr, dma.size)) throw new RangeError('options.dma must lie inside options.memory');
    if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('options.onError must be a function');
    this.memory = memory;
    this.dma = Object.freeze({ addr: dma.addr, size: dma.size });
    this.name = options.name ?? 'ntb';
    this.topo = options.topo ?? -1;
    this.#onError = options.onError;
    if (options.trace !== undefined && typeof options.trace !== 'function') throw new TypeError('options.trace must be a function');
    this.#trace = options.trace;
  }

  #t(op: string, ...args: number[]): void {
    try {
      this.#trace?.({ op, args });
    } catch {
      // A tracer's failure is not the device's.
    }
  }

  /**
   * The memory that serves `[addr, addr + size)` of this host's address space (Linux
   * `ioremap` / `phys_to_virt`): the RAM or the window aperture itself when the host's
   * memory is a map of ranges, so a hot path skips the dispatch; otherwise
   * {@link NtbDev.memory}. Addresses are unchanged.
   */
  ioremap(addr: number, size: number): GuestMemory {
    const m = (this.memory as { memoryAt?: (a: number, l: number) => GuestMemory | undefined }).memoryAt?.(addr, size);
    return m ?? this.memory;
  }

  // ---- context (ntb_set_ctx / ntb_clear_ctx) and events from the hardware driver ----

  /** The client's context, or undefined. */
  get ctx(): NtbCtxOps | undefined {
    return this.#ctx;
  }

  /** `ntb_set_ctx`: attach a client's callbacks. `BUSY` when a client is attached. */
  setCtx(ctx: NtbCtxOps): void {
    if (typeof ctx !== 'object' || ctx === null) throw new TypeError('ctx must be an object');
    for (const k of ['linkEvent', 'dbEvent', 'msgEvent'] as const) {
      if (ctx[k] !== undefined && typeof ctx[k] !== 'function') throw new TypeError(`ctx.${k} must be a function`);
    }
    if (this.#ctx !== undefined) throw new NtbError('BUSY', `${this.name} already has a client context`);
    this.#ctx = ctx;
  }

  /** `ntb_clear_ctx`: detach the client; events are dropped until the next setCtx. */
  clearCtx(): void {
    this.#ctx = undefined;
  }

  /** `ntb_link_event`: the hardware driver reports a link change. */
  linkEvent(): void {
    if (this.#trace !== undefined) this.#t('link_event', this.ops.linkIsUp().up ? 1 : 0);
    const f = this.#ctx?.linkEvent;
    if (f === undefined) return;
    try {
      f.call(this.#ctx);
    } catch (e) {
      this.#onError?.(e);
    }
  }

  /** `ntb_db_event`: the hardware driver reports doorbell vector `vector`. */
  dbEvent(vector: number): void {
    if (this.#trace !== undefined) this.#t('db_event', vector);
    const f = this.#ctx?.dbEvent;
    if (f === undefined) return;
    try {
      f.call(this.#ctx, vector);
    } catch (e) {
      this.#onError?.(e);
    }
  }

  /** `ntb_msg_event`: the hardware driver reports a message. */
  msgEvent(): void {
    const f = this.#ctx?.msgEvent;
    if (f === undefined) return;
    try {
      f.call(this.#ctx);
    } catch (e) {
      this.#onError?.(e);
    }
  }

  // ---- ports ----

  /** `ntb_port_number` (0 when the device has no port ops). */
  portNumber(): number {
    return this.ops.portNumber?.() ?? 0;
  }

  /** `ntb_peer_port_count` ({@link NTB_DEF_PEER_CNT} when the device has no port ops). */
  peerPortCount(): number {
    return this.ops.peerPortCount?.() ?? NTB_DEF_PEER_CNT;
  }

  // ---- link ----

  /** `ntb_link_is_up`. */
  linkIsUp(): NtbLinkStatus {
    return this.ops.linkIsUp();
  }

  /** `ntb_link_enable`. Default speed and width: AUTO. */
  async linkEnable(maxSpeed: number = NTB_SPEED.AUTO, maxWidth: number = NTB_WIDTH.AUTO): Promise<void> {
    this.#t('link_enable', maxSpeed, maxWidth);
    await this.ops.linkEnable(maxSpeed, maxWidth);
  }

  /** `ntb_link_disable`. */
  async linkDisable(): Promise<void> {
    this.#t('link_disable');
    await this.ops.linkDisable();
  }

  // ---- memory windows ----

  /** `ntb_mw_count`. */
  mwCount(pidx: number = NTB_DEF_PEER_IDX): number {
    checkIndex('pidx', pidx, this.peerPortCount());
    return this.ops.mwCount(pidx);
  }

  /** `ntb_mw_get_align`. */
  mwGetAlign(pidx: number, widx: number): NtbMwAlign {
    checkIndex('pidx', pidx, this.peerPortCount());
    checkIndex('widx', widx, this.ops.mwCount(pidx));
    return this.ops.mwGetAlign(pidx, widx);
  }

  /**
   * `ntb_mw_set_trans`: translate inbound window `widx` onto the DMA memory from `addr`
   * for `size` bytes. `BAD_WINDOW` when the translation breaks the window's limits
   * ({@link NtbDev.mwGetAlign}) — checked here for every backend.
   */
  async mwSetTrans(pidx: number, widx: number, addr: number, size: number): Promise<void> {
    const a = this.mwGetAlign(pidx, widx);
    if (typeof addr !== 'number' || typeof size !== 'number') throw new TypeError('addr and size must be numbers');
    if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`addr and size must be integers with size > 0, got 0x${addr.toString(16)}+0x${size.toString(16)}`);
    }
    if (addr % a.addrAlign !== 0) throw new NtbError('BAD_WINDOW', `${this.name}: MW${widx} address 0x${addr.toString(16)} is not aligned to ${a.addrAlign} (mw_get_align)`);
    if (size % a.sizeAlign !== 0) throw new NtbError('BAD_WINDOW', `${this.name}: MW${widx} size 0x${size.toString(16)} is not a multiple of ${a.sizeAlign} (mw_get_align)`);
    if (size > a.sizeMax) throw new NtbError('BAD_WINDOW', `${this.name}: MW${widx} size 0x${size.toString(16)} exceeds the window's 0x${a.sizeMax.toString(16)} (mw_get_align)`);
    if (this.ops.mwSetTrans === undefined) throw new NtbError('BAD_WINDOW', `${this.name}: the device has no inbound translation (mw_set_trans)`);
    this.#t('mw_set_trans', pidx, widx, addr, size);
    await this.ops.mwSetTrans(pidx, widx, addr, size);
  }

  /** `ntb_mw_clear_trans`. */
  async mwClearTrans(pidx: number, widx: number): Promise<void> {
    checkIndex('pidx', pidx, this.peerPortCount());
    checkIndex('widx', widx, this.ops.mwCount(pidx));
    this.#t('mw_clear_trans', pidx, widx);
    await this.ops.mwClearTrans?.(pidx, widx);
  }

  /** `ntb_peer_mw_count`. */
  peerMwCount(): number {
    return this.ops.peerMwCount();
  }

  /** `ntb_peer_mw_get_addr`. */
  peerMwGetAddr(widx: number): NtbPeerMwAddr {
    checkIndex('widx', widx, this.ops.peerMwCount());
    return this.ops.peerMwGetAddr(widx);
  }

  // ---- doorbells ----

  /** `ntb_db_valid_mask`. */
  dbValidMask(): number {
    return this.ops.dbValidMask();
  }

  /** `ntb_db_vector_count` (1 when the device has no vector ops). */
  dbVectorCount(): number {
    return this.ops.dbVectorCount?.() ?? 1;
  }

  /** `ntb_db_vector_mask` (the valid mask when the device has no vector ops). */
  dbVectorMask(vector: number): number {
    if (this.ops.dbVectorMask === undefined) return this.ops.dbValidMask();
    return this.ops.dbVectorMask(vector);
  }

  /** `ntb_db_read`. */
  dbRead(): number {
    return this.ops.dbRead();
  }

  /** `ntb_db_clear`. */
  dbClear(bits: number): void {
    this.ops.dbClear(bits);
  }

  /** `ntb_db_set` (own doorbell). `BAD_DOORBELL` for bits outside the valid mask. */
  dbSet(bits: number): void {
    checkBits('bits', bits);
    this.#checkValid(bits);
    if (this.ops.dbSet === undefined) throw new NtbError('BAD_DOORBELL', `${this.name}: the device cannot set its own doorbell (db_set)`);
    this.ops.dbSet(bits);
  }

  /** `ntb_db_set_mask`. */
  dbSetMask(bits: number): void {
    checkBits('bits', bits);
    this.ops.dbSetMask(bits);
  }

  /** `ntb_db_clear_mask`. */
  dbClearMask(bits: number): void {
    checkBits('bits', bits);
    this.ops.dbClearMask(bits);
  }

  /** `ntb_peer_db_set`: ring the peer. `BAD_DOORBELL` for bits outside the valid mask. */
  peerDbSet(bits: number): void {
    if (!(bits > 0 && (bits & ~this.ops.dbValidMask()) === 0)) {
      checkBits('bits', bits);
      this.#checkValid(bits);
    }
    if (this.#trace !== undefined) this.#t('peer_db_set', bits);
    this.ops.peerDbSet(bits);
  }

  #checkValid(bits: number): void {
    const valid = this.ops.dbValidMask();
    if (bits === 0 || ((bits >>> 0) & ~valid) !== 0) {
      throw new NtbError('BAD_DOORBELL', `${this.name}: doorbell bits 0x${(bits >>> 0).toString(16)} are not within the valid mask 0x${(valid >>> 0).toString(16)}`);
    }
  }

  // ---- scratchpads ----

  /** `ntb_spad_count` (0 without scratchpads). */
  spadCount(): number {
    return this.ops.spadCount?.() ?? 0;
  }

  /** `ntb_spad_read`: own scratchpad `sidx`. */
  spadRead(sidx: number): number {
    checkIndex('sidx', sidx, this.spadCount());
    return this.ops.spadRead!(sidx) >>> 0;
  }

  /** `ntb_spad_write`: own scratchpad `sidx`. */
  spadWrite(sidx: number, val: number): void {
    checkIndex('sidx', sidx, this.spadCount());
    checkU32('val', val);
    if (this.#trace !== undefined) this.#t('spad_write', sidx, val);
    this.ops.spadWrite!(sidx, val);
  }

  /** `ntb_peer_spad_read`: the peer's scratchpad `sidx`. */
  peerSpadRead(pidx: number, sidx: number): number {
    checkIndex('pidx', pidx, this.peerPortCount());
    checkIndex('sidx', sidx, this.spadCount());
    return this.ops.peerSpadRead!(pidx, sidx) >>> 0;
  }

  /** `ntb_peer_spad_write`: the peer's scratchpad `sidx`. */
  peerSpadWrite(pidx: number, sidx: number, val: number): void {
    checkIndex('pidx', pidx, this.peerPortCount());
    checkIndex('sidx', sidx, this.spadCount());
    checkU32('val', val);
    if (this.#trace !== undefined) this.#t('peer_spad_write', pidx, sidx, val);
    this.ops.peerSpadWrite!(pidx, sidx, val);
  }
}
