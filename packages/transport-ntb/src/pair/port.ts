import { ArrayBufferMemory } from '@x/vring';
import { NtbError } from '../errors.js';
import {
  NTB_SPEED,
  NTB_WIDTH,
  NtbDev,
  type NtbDevOps,
  type NtbLinkStatus,
  type NtbMwAlign,
  type NtbPeerMwAddr,
  type NtbTraceEvent,
} from '../ntb-dev.js';
import { BusMap } from '../internal/bus-map.js';
import { hex } from '../internal/util.js';
import { NtbWindowMemory, NTB_XLAT, writeNtbXlat } from '../window.js';
import { SharedNtbLine, type NtbLine, type NtbLineListener, type NtbLineListenOptions } from '../wire.js';
import { NTB_PAIR_LINK as LS, NTB_PAIR_REG as R, checkPairLink, pairSideOffset, pairXlatOffset, type NtbPairLink } from './link.js';

/** The two interrupt lines a pair host uses, when they are not the link's own words. @public */
export interface NtbPairLines {
  /** This host's interrupt line (it listens). */
  readonly irq: NtbLine;
  /** The peer host's interrupt line (it rings). */
  readonly peerIrq: NtbLine;
}

/**
 * What a peer-crash watcher reports: `@x/platform`'s `PeerDownEvent` has this shape, so
 * a system passes `ctx.onPeerDown.bind(ctx)` as {@link NtbPairPortOptions.watchPeer}.
 *
 * @public
 */
export interface NtbPeerDownInfo {
  /** The peer's name. */
  readonly peer: string;
  /** How it ended. */
  readonly status: string;
  /** Why (a crash reason), when known. */
  readonly reason?: string | undefined;
}

/** Subscribes to peer-down reports; returns the unsubscribe function (`ctx.onPeerDown`'s shape). @public */
export type NtbPeerWatch = (listener: (info: NtbPeerDownInfo) => void) => () => void;

/** Options of {@link NtbPairPort}. @public */
export interface NtbPairPortOptions {
  /** The interrupt lines. Default: the link's own words ({@link SharedNtbLine}). */
  readonly lines?: NtbPairLines;
  /** How this host waits on its interrupt line. */
  readonly listen?: NtbLineListenOptions;
  /** Reports the peer host's crash; the port then takes the link down with `PEER_DOWN`. */
  readonly watchPeer?: NtbPeerWatch;
  /** Only peers of these names count (a topology may have more systems). Default: any. */
  readonly peerNames?: readonly string[];
  /** Name of the NTB device. Default `ntb-host1` / `ntb-host2`. */
  readonly name?: string;
  /** Receives what a client callback threw. */
  readonly onError?: (error: unknown) => void;
  /** Receives the device's trace (`NtbDevOptions.trace`). */
  readonly trace?: (event: NtbTraceEvent) => void;
}

/**
 * One host's end of a direct NTB pair: the hardware driver (an {@link NtbDevOps}) over
 * the pair's shared register file, with the {@link NtbDev} it registers. Everything it
 * touches is bytes: the register file, its own RAM, and — through its window apertures,
 * translated by the peer's `mw_set_trans` — the peer's RAM. Interrupts arrive on its
 * line; link changes and doorbells are read from the register file when it rings.
 *
 * Side 0 is HOST1, side 1 HOST2. Doorbell vector v reports bit v (one vector per bit).
 * The link is up when both hosts enabled it and neither was lost; a session number
 * that grows at each link-up lets a host that missed a down-up flap between two
 * interrupts still report both edges.
 *
 * @public
 */
export class NtbPairPort implements NtbDevOps {
  /** Which side: 0 = HOST1, 1 = HOST2. */
  readonly side: 0 | 1;
  /** The link description. */
  readonly link: NtbPairLink;
  /** The NTB device (clients attach here). */
  readonly dev: NtbDev;
  /** This host's RAM. */
  readonly ram: ArrayBufferMemory;
  readonly #i32: Int32Array;
  readonly #ownDb: number;
  readonly #ownMask: number;
  readonly #peerDb: number;
  readonly #ownSpad: number;
  readonly #peerSpad: number;
  readonly #ownXlat: Int32Array[];
  readonly #valid: number;
  readonly #irq: NtbLine;
  readonly #peerIrq: NtbLine;
  readonly #listener: NtbLineListener;
  readonly #unwatch: (() => void) | undefined;
  readonly #myEnable: number;
  readonly #peerEnable: number;
  readonly #peerLost: number;
  readonly #myLost: number;
  #reportedUp = false;
  #reportedSession = -1;
  #closed = false;

  constructor(link: NtbPairLink, side: 0 | 1, options: NtbPairPortOptions = {}) {
    checkPairLink(link);
    if (side !== 0 && side !== 1) throw new RangeError(`side must be 0 (HOST1) or 1 (HOST2), got ${String(side)}`);
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.side = side;
    this.link = link;
    const c = link.config;
    const peer = (1 - side) as 0 | 1;
    this.#i32 = new Int32Array(link.registers);
    const own = pairSideOffset(c.spadCount, side);
    const other = pairSideOffset(c.spadCount, peer);
    this.#ownDb = (own + R.SIDE_DB) >> 2;
    this.#ownMask = (own + R.SIDE_DB_MASK) >> 2;
    this.#peerDb = (other + R.SIDE_DB) >> 2;
    this.#ownSpad = (own + R.SIDE_SPAD) >> 2;
    this.#peerSpad = (other + R.SIDE_SPAD) >> 2;
    this.#valid = c.dbCount >= 31 ? 0x7fff_ffff : (1 << c.dbCount) - 1;
    this.#myEnable = side === 0 ? LS.ENABLE0 : LS.ENABLE1;
    this.#peerEnable = side === 0 ? LS.ENABLE1 : LS.ENABLE0;
    this.#myLost = side === 0 ? LS.LOST0 : LS.LOST1;
    this.#peerLost = side === 0 ? LS.LOST1 : LS.LOST0;
    this.#ownXlat = [];
    for (let w = 0; w < c.mwCount; w++) this.#ownXlat.push(new Int32Array(link.registers, pairXlatOffset(c.spadCount, side, w), NTB_XLAT.WORDS));

    const me = c.hosts[side];
    const them = c.hosts[peer];
    this.ram = new ArrayBufferMemory(link.memory[side], { base: me.ramBase, name: `HOST${side + 1} RAM` });
    // The hardware's path to the peer's RAM: used only behind the window apertures.
    const peerRam = new ArrayBufferMemory(link.memory[peer], { base: them.ramBase, name: `HOST${peer + 1} RAM` });
    const bus = new BusMap(`HOST${side + 1} bus`, [{ base: me.ramBase, size: me.ramSize, memory: this.ram }]);
    for (let w = 0; w < c.mwCount; w++) {
      const xlat = new Int32Array(link.registers, pairXlatOffset(c.spadCount, peer, w), NTB_XLAT.WORDS);
      const base = me.mwBase + w * c.mwSize;
      bus.add({ base, size: c.mwSize, memory: new NtbWindowMemory({ xlat, base, size: c.mwSize, target: peerRam, name: `HOST${side + 1} MW${w} aperture` }) });
    }
    this.dev = new NtbDev({
      ops: this,
      memory: bus,
      dma: { addr: me.ramBase, size: me.ramSize },
      name: options.name ?? `ntb-host${side + 1}`,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      ...(options.trace === undefined ? {} : { trace: options.trace }),
    });
    const lines = options.lines;
    this.#irq = lines?.irq ?? new SharedNtbLine(link.registers, own + R.SIDE_IRQ, `HOST${side + 1} irq`);
    this.#peerIrq = lines?.peerIrq ?? new SharedNtbLine(link.registers, other + R.SIDE_IRQ, `HOST${peer + 1} irq`);
    // A previous instance of this side may have left its enable bit (it crashed):
    // the link is not up for a host that has not enabled it.
    this.#update((s) => s & ~this.#myEnable);
    this.#listener = this.#irq.listen(() => this.#onIrq(), options.listen);
    const watch = options.watchPeer;
    const names = options.peerNames;
    this.#unwatch =
      watch === undefined
        ? undefined
        : watch((info) => {
            if (names !== undefined && !names.includes(info.peer)) return;
            this.peerLost(new NtbError('PEER_DOWN', `${info.peer} went down (${info.status}${info.reason === undefined ? '' : `, ${info.reason}`})`));
          });
  }

  /** Link-state word. */
  #state(): number {
    return Atomics.load(this.#i32, R.LINK_STATE >> 2);
  }

  /** CAS-updates the link state; recomputes UP and the session; rings both hosts on a change. */
  #update(f: (s: number) => number): void {
    const idx = R.LINK_STATE >> 2;
    for (;;) {
      const old = Atomics.load(this.#i32, idx);
      let s = f(old) & ~LS.UP;
      const up = (s & (LS.ENABLE0 | LS.ENABLE1)) === (LS.ENABLE0 | LS.ENABLE1) && (s & (LS.LOST0 | LS.LOST1)) === 0;
      if (up) s |= LS.UP;
      if (up && (old & LS.UP) === 0) s = (s & 0xff) | ((((old >>> LS.SESSION_SHIFT) + 1) & 0xff_ffff) << LS.SESSION_SHIFT);
      if (s === old) return;
      if (Atomics.compareExchange(this.#i32, idx, old, s) !== old) continue;
      if ((s & LS.UP) !== (old & LS.UP)) {
        this.#irq.ring();
        this.#peerIrq.ring();
      }
      return;
    }
  }

  /** The interrupt handler: link edges first, then the pending doorbell vectors. */
  #onIrq(): void {
    if (this.#closed) return;
    const s = this.#state();
    const up = (s & LS.UP) !== 0;
    const session = s >>> LS.SESSION_SHIFT;
    if (up !== this.#reportedUp || (up && session !== this.#reportedSession)) {
      if (this.#reportedUp) {
        // A down edge, real or hidden inside a down-up flap between two interrupts.
        this.#reportedUp = false;
        this.dev.linkEvent();
      }
      if (up) {
        this.#reportedUp = true;
        this.#reportedSession = session;
        this.dev.linkDownCause = undefined;
        this.dev.linkEvent();
      }
    }
    let pending = Atomics.load(this.#i32, this.#ownDb) & ~Atomics.load(this.#i32, this.#ownMask) & this.#valid;
    while (pending !== 0) {
      const low = pending & -pending;
      this.dev.dbEvent(31 - Math.clz32(low));
      pending &= pending - 1;
    }
  }

  /**
   * The peer host is gone (its worker crashed or was killed): take the link down, as a
   * surprise removal does, with `cause` in {@link NtbDev.linkDownCause}.
   */
  peerLost(cause: unknown = new NtbError('PEER_DOWN', `HOST${2 - this.side} is gone`)): void {
    if (this.#closed) return;
    this.dev.linkDownCause = cause;
    this.#update((s) => s | this.#peerLost);
    // The peer cannot ring us any more; make sure this host sees the edge.
    this.#irq.ring();
  }

  /** Stops listening and takes the link down (link_disable). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#update((s) => s & ~this.#myEnable);
    this.#closed = true;
    this.#listener.close();
    this.#unwatch?.();
    this.dev.clearCtx();
  }

  #up(): boolean {
    return (this.#state() & LS.UP) !== 0;
  }

  // ---- NtbDevOps ----

  /** {@inheritDoc NtbDevOps.linkIsUp} */
  linkIsUp(): NtbLinkStatus {
    return this.#reportedUp ? { up: true, speed: NTB_SPEED.GEN3, width: NTB_WIDTH.X4 } : { up: false, speed: NTB_SPEED.NONE, width: NTB_WIDTH.NONE };
  }

  /** {@inheritDoc NtbDevOps.linkEnable} */
  linkEnable(_maxSpeed: number, _maxWidth: number): void {
    if (this.#closed) throw new NtbError('CLOSED', `${this.dev.name} is closed`);
    // Enabling again also ends a "lost" mark left for this side by a crashed predecessor.
    this.#update((s) => (s | this.#myEnable) & ~this.#myLost);
  }

  /** {@inheritDoc NtbDevOps.linkDisable} */
  linkDisable(): void {
    this.#update((s) => s & ~this.#myEnable);
  }

  /** {@inheritDoc NtbDevOps.mwCount} */
  mwCount(_pidx: number): number {
    return this.link.config.mwCount;
  }

  /** {@inheritDoc NtbDevOps.mwGetAlign} */
  mwGetAlign(_pidx: number, _widx: number): NtbMwAlign {
    const c = this.link.config;
    return { addrAlign: c.addrAlign, sizeAlign: c.sizeAlign, sizeMax: c.mwSize };
  }

  /** {@inheritDoc NtbDevOps.mwSetTrans} */
  mwSetTrans(_pidx: number, widx: number, addr: number, size: number): void {
    if (!this.ram.contains(addr, size)) {
      throw new NtbError('BAD_WINDOW', `${this.dev.name}: MW${widx} translation ${hex(addr)}+${hex(size)} is outside this host's RAM`);
    }
    writeNtbXlat(this.#ownXlat[widx]!, addr, size);
  }

  /** {@inheritDoc NtbDevOps.mwClearTrans} */
  mwClearTrans(_pidx: number, widx: number): void {
    writeNtbXlat(this.#ownXlat[widx]!, 0, 0);
  }

  /** {@inheritDoc NtbDevOps.peerMwCount} */
  peerMwCount(): number {
    return this.link.config.mwCount;
  }

  /** {@inheritDoc NtbDevOps.peerMwGetAddr} */
  peerMwGetAddr(widx: number): NtbPeerMwAddr {
    const c = this.link.config;
    return { base: c.hosts[this.side].mwBase + widx * c.mwSize, size: c.mwSize };
  }

  /** {@inheritDoc NtbDevOps.dbValidMask} */
  dbValidMask(): number {
    return this.#valid;
  }

  /** {@inheritDoc NtbDevOps.dbVectorCount} */
  dbVectorCount(): number {
    return this.link.config.dbCount;
  }

  /** {@inheritDoc NtbDevOps.dbVectorMask} */
  dbVectorMask(vector: number): number {
    return vector >= 0 && vector < this.link.config.dbCount ? 1 << vector : 0;
  }

  /** {@inheritDoc NtbDevOps.dbRead} */
  dbRead(): number {
    return Atomics.load(this.#i32, this.#ownDb) >>> 0;
  }

  /** {@inheritDoc NtbDevOps.dbSet} */
  dbSet(bits: number): void {
    Atomics.or(this.#i32, this.#ownDb, bits & this.#valid);
    this.#irq.ring();
  }

  /** {@inheritDoc NtbDevOps.dbClear} */
  dbClear(bits: number): void {
    Atomics.and(this.#i32, this.#ownDb, ~bits);
  }

  /** {@inheritDoc NtbDevOps.dbReadMask} */
  dbReadMask(): number {
    return Atomics.load(this.#i32, this.#ownMask) >>> 0;
  }

  /** {@inheritDoc NtbDevOps.dbSetMask} */
  dbSetMask(bits: number): void {
    Atomics.or(this.#i32, this.#ownMask, bits & this.#valid);
  }

  /** {@inheritDoc NtbDevOps.dbClearMask} */
  dbClearMask(bits: number): void {
    Atomics.and(this.#i32, this.#ownMask, ~bits);
    // Unmasking bits that are pending raises the interrupt now (level semantics).
    if ((Atomics.load(this.#i32, this.#ownDb) & bits) !== 0) this.#irq.ring();
  }

  /** {@inheritDoc NtbDevOps.peerDbSet} */
  peerDbSet(bits: number): void {
    // A doorbell write does not cross a link that is down.
    if (!this.#up()) return;
    Atomics.or(this.#i32, this.#peerDb, bits & this.#valid);
    this.#peerIrq.ring();
  }

  /** {@inheritDoc NtbDevOps.peerDbRead} */
  peerDbRead(): number {
    return Atomics.load(this.#i32, this.#peerDb) >>> 0;
  }

  /** {@inheritDoc NtbDevOps.spadCount} */
  spadCount(): number {
    return this.link.config.spadCount;
  }

  /** {@inheritDoc NtbDevOps.spadRead} */
  spadRead(sidx: number): number {
    return Atomics.load(this.#i32, this.#ownSpad + sidx) >>> 0;
  }

  /** {@inheritDoc NtbDevOps.spadWrite} */
  spadWrite(sidx: number, val: number): void {
    Atomics.store(this.#i32, this.#ownSpad + sidx, val | 0);
  }

  /** `peer_spad_read`: one of the peer's scratchpads; all-ones across a link that is down, as a PCIe read that gets no completion. */
  peerSpadRead(_pidx: number, sidx: number): number {
    if (!this.#up()) return 0xffff_ffff;
    return Atomics.load(this.#i32, this.#peerSpad + sidx) >>> 0;
  }

  /** `peer_spad_write`: one of the peer's scratchpads; a write across a link that is down is dropped. */
  peerSpadWrite(_pidx: number, sidx: number, val: number): void {
    if (!this.#up()) return;
    Atomics.store(this.#i32, this.#peerSpad + sidx, val | 0);
  }
}

/** Makes the pair port of `side` (HOST1 = 0, HOST2 = 1). @public */
export function openNtbPairPort(link: NtbPairLink, side: 0 | 1, options?: NtbPairPortOptions): NtbPairPort {
  return new NtbPairPort(link, side, options);
}

