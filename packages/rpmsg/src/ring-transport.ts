import { setImmediate } from 'node:timers';
import { VringIov, isVringError, type GuestMemory, type Virtqueue, type Vringh } from '@x/vring';
import { RpmsgError } from './errors.js';
import type { RpmsgBuffer, RpmsgTransport, RpmsgTransportSink } from './transport.js';
import { RPMSG_BUF_SIZE, RPMSG_HDR, RPMSG_NUM_BUFS } from './wire.js';

/**
 * A drain that stopped at its bound with more to read goes on in a microtask this many
 * times in a row before it waits for the next event-loop turn (Linux vhost: a worker
 * that exceeds its weight requeues itself). Bounded, so a peer that never stops sending
 * still lets timers and I/O run every few rings' worth of messages; and not every time
 * a macrotask, which a thread that polls its doorbell runs only between poll budgets.
 */
const DRAIN_CHAIN = 8;

/** Runs a transport's drain later: soon (a microtask) while it has work left, within DRAIN_CHAIN. */
class DrainScheduler {
  private scheduled = false;
  /** Drains run in a row as microtasks. */
  private chained = 0;
  private readonly fire = (): void => {
    this.scheduled = false;
    this.drain();
  };

  constructor(private readonly drain: () => void) {}

  /** `more`: the last drain stopped with work left (may go on in a microtask). */
  schedule(more = false): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (more && this.chained < DRAIN_CHAIN) {
      this.chained++;
      queueMicrotask(this.fire);
    } else {
      this.chained = 0;
      setImmediate(this.fire);
    }
  }

  /** A drain ended with nothing left: the next one that stops early starts a new chain. */
  idle(): void {
    if (!this.scheduled) this.chained = 0;
  }
}

/** Queue index of the driver's receive queue (Linux `vrp->rvq`, "input"). @public */
export const RPMSG_RX_QUEUE = 0;
/** Queue index of the driver's send queue (Linux `vrp->svq`, "output"). @public */
export const RPMSG_TX_QUEUE = 1;

function checkBufSize(name: string, v: number): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(v) || v <= RPMSG_HDR.SIZE || v > RPMSG_HDR.SIZE + 0xffff) {
    throw new RangeError(`${name} must be an integer in ${RPMSG_HDR.SIZE + 1}..${RPMSG_HDR.SIZE + 0xffff}, got ${v}`);
  }
}

/** A buffer of the driver's pool: fixed address, fixed size. */
class PoolBuffer implements RpmsgBuffer {
  readonly bytes: Uint8Array;
  readonly payload: Uint8Array;
  /** True when `bytes` is a private copy that must be written to / read from memory. */
  readonly bounce: boolean;
  constructor(
    readonly slot: number,
    readonly addr: number,
    size: number,
    view: Uint8Array | undefined,
  ) {
    this.bounce = view === undefined;
    this.bytes = view ?? new Uint8Array(size);
    this.payload = this.bytes.subarray(RPMSG_HDR.SIZE);
  }
}

/** Options of {@link RpmsgVirtqueueTransport}. @public */
export interface RpmsgVirtqueueTransportOptions {
  /**
   * vq0, the receive queue ("input"); its tokens are buffer slots. Its callback must
   * call {@link RpmsgVirtqueueTransport.rxDone}.
   */
  rvq: Virtqueue<number>;
  /** vq1, the send queue ("output"). Its callback must call {@link RpmsgVirtqueueTransport.txDone}. */
  svq: Virtqueue<number>;
  /**
   * Bus address of the buffer block: `numRxBufs` RX buffers, then `numTxBufs` TX
   * buffers, each `bufSize` bytes (Linux: one coherent block, first half RX).
   */
  bufferBase: number;
  /**
   * The block's bytes, when the driver can see them directly (a `VirtioBuffer`'s
   * view): buffers are then zero-copy. Give this or `memory`.
   */
  bufferView?: Uint8Array;
  /** The driver's memory holding the block: zero-copy where it gives views, copies otherwise. */
  memory?: GuestMemory;
  /** Bytes per buffer, header included. Default 512. */
  bufSize?: number;
  /** RX buffers, at most vq0's size. Default min(256, vq0 size). */
  numRxBufs?: number;
  /** TX buffers, at most vq1's size. Default min(256, vq1 size). */
  numTxBufs?: number;
  /** Negotiated rpmsg feature bits. */
  features: number;
}

/**
 * The driver-role (virtio) side of an rpmsg link over two split virtqueues, as Linux
 * `virtio_rpmsg_bus.c` runs them: every RX buffer posted on vq0 at start, TX buffers
 * taken lazily (never-used ones first, then those the device returned on vq1), vq1
 * callbacks on only while a sender waits, and RX drained with vq0 callbacks off and one
 * kick per batch (RFC patch 8). Buffers are zero-copy views when the memory gives them.
 *
 * The owner wires the queues' notify to its doorbell, calls each queue's `interrupt()`
 * when the device signals it, and makes vq0's callback call
 * {@link RpmsgVirtqueueTransport.rxDone} and vq1's {@link RpmsgVirtqueueTransport.txDone}.
 *
 * @public
 */
export class RpmsgVirtqueueTransport implements RpmsgTransport {
  /** {@inheritDoc RpmsgTransport.features} */
  readonly features: number;
  /** {@inheritDoc RpmsgTransport.txBufferSize} */
  readonly txBufferSize: number;
  /** {@inheritDoc RpmsgTransport.rxBufferSize} */
  readonly rxBufferSize: number;
  /** Bytes of the buffer block: (numRxBufs + numTxBufs) × bufSize. */
  readonly poolSize: number;
  private readonly rvq: Virtqueue<number>;
  private readonly svq: Virtqueue<number>;
  private readonly memory: GuestMemory | undefined;
  private readonly rx: PoolBuffer[];
  private readonly tx: PoolBuffer[];
  private readonly freeTx: number[] = [];
  private lastSbuf = 0;
  private sink: RpmsgTransportSink | undefined;
  private draining = false;
  private rxKickNeeded = false;
  /** RX buffers re-posted in this drain and not yet published (see releaseRxBuffer). */
  private rxUnpublished = 0;
  /** Re-posted RX buffers published together during a drain: a quarter of them, 1..16. */
  private readonly rxPublishBatch: number;
  private rxPending = false;
  private readonly later = new DrainScheduler(() => this.rxDone());
  private waiting = false;

  constructor(options: RpmsgVirtqueueTransportOptions) {
    const { rvq, svq } = options;
    const bufSize = options.bufSize ?? RPMSG_BUF_SIZE;
    checkBufSize('bufSize', bufSize);
    const numRx = options.numRxBufs ?? Math.min(RPMSG_NUM_BUFS, rvq.num);
    const numTx = options.numTxBufs ?? Math.min(RPMSG_NUM_BUFS, svq.num);
    if (!Number.isInteger(numRx) || numRx < 1 || numRx > rvq.num) throw new RangeError(`numRxBufs must be in 1..${rvq.num} (vq0 size), got ${numRx}`);
    if (!Number.isInteger(numTx) || numTx < 1 || numTx > svq.num) throw new RangeError(`numTxBufs must be in 1..${svq.num} (vq1 size), got ${numTx}`);
    this.features = options.features >>> 0;
    this.txBufferSize = bufSize;
    this.rxBufferSize = bufSize;
    this.rvq = rvq;
    this.svq = svq;
    this.poolSize = (numRx + numTx) * bufSize;
    const base = options.bufferBase;
    if (typeof base !== 'number' || !Number.isInteger(base) || base < 0 || base + this.poolSize > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`bufferBase must be a bus address with room for ${this.poolSize} bytes, got ${base}`);
    }
    const { bufferView, memory } = options;
    if (bufferView !== undefined) {
      if (!(bufferView instanceof Uint8Array)) throw new TypeError('bufferView must be a Uint8Array');
      if (bufferView.length < this.poolSize) throw new RangeError(`bufferView holds ${bufferView.length} bytes; ${this.poolSize} are needed`);
    } else {
      if (memory === undefined) throw new TypeError('give bufferView or memory');
      if (!memory.contains(base, this.poolSize)) throw new RangeError(`bufferBase: ${this.poolSize} bytes of buffers do not fit the memory at 0x${base.toString(16)}`);
    }
    this.memory = memory;
    const viewAt = (off: number): Uint8Array | undefined =>
      bufferView !== undefined ? bufferView.subarray(off, off + bufSize) : memory!.view?.(base + off, bufSize);
    this.rxPublishBatch = Math.max(1, Math.min(16, numRx >> 2));
    this.rx = [];
    for (let i = 0; i < numRx; i++) this.rx.push(new PoolBuffer(i, base + i * bufSize, bufSize, viewAt(i * bufSize)));
    this.tx = [];
    for (let i = 0; i < numTx; i++) this.tx.push(new PoolBuffer(i, base + (numRx + i) * bufSize, bufSize, viewAt((numRx + i) * bufSize)));
    // "suppress tx callback"; enabled only while a sender sleeps (Linux probe).
    svq.disableCb();
    // Every RX buffer goes to the device now; start() publishes them with one kick.
    for (const b of this.rx) rvq.addInbuf(b.addr, bufSize, b.slot);
  }

  /**
   * Publishes the posted RX buffers and notifies the device. Call after DRIVER_OK
   * (Linux kicks vq0 after `virtio_device_ready`).
   */
  start(): void {
    this.rvq.kick();
  }

  /** {@inheritDoc RpmsgTransport.attach} */
  attach(sink: RpmsgTransportSink): void {
    if (this.sink !== undefined) throw new RpmsgError('BUSY', 'transport already attached');
    this.sink = sink;
    // Anything that arrived before the core existed is drained once the caller is done.
    this.later.schedule();
  }

  /** {@inheritDoc RpmsgTransport.detach} */
  detach(): void {
    this.sink = undefined;
    this.svq.disableCb();
  }

  private fault(e: unknown): void {
    this.sink?.fault(e);
  }


  /**
   * vq0's callback (Linux `rpmsg_recv_done`, with RFC patch 8): drains the used RX
   * buffers into the core and re-posts them with one kick.
   */
  rxDone(): void {
    if (this.sink === undefined || this.draining) {
      this.rxPending = true;
      return;
    }
    this.rxPending = false;
    const rvq = this.rvq;
    this.draining = true;
    try {
      // Patch 8: callbacks off while draining, then re-enable and look once more; work
      // is bounded (two passes), a peer that keeps sending gets a fresh turn later.
      rvq.disableCb();
      this.drainOnce();
      if (!rvq.enableCb()) {
        rvq.disableCb();
        this.drainOnce();
        if (!rvq.enableCb()) this.later.schedule(true);
      }
    } finally {
      this.draining = false;
      if (this.rxKickNeeded) {
        this.rxKickNeeded = false;
        this.rxUnpublished = 0;
        // "tell the remote processor we added another available rx buffer"
        rvq.kick();
      }
    }
    if (this.rxPending) this.later.schedule(true);
    else this.later.idle();
  }

  private drainOnce(): void {
    const rvq = this.rvq;
    for (let n = 0; n < this.rx.length; n++) {
      if (this.sink === undefined || rvq.isBroken) return;
      let slot: number | undefined;
      try {
        slot = rvq.getBuf();
      } catch (e) {
        this.fault(e);
        // A too-long used length names the buffer: take it back and go on.
        if (isVringError(e, 'USED_LEN_INVALID') && typeof e.token === 'number') this.releaseRxBuffer(this.rx[e.token]!);
        continue;
      }
      if (slot === undefined) return;
      const b = this.rx[slot]!;
      const len = rvq.lastLen;
      if (b.bounce) this.memory!.read(b.addr, b.bytes, 0, Math.min(len, b.bytes.length));
      this.sink.receive(b, len);
    }
  }

  /** {@inheritDoc RpmsgTransport.releaseRxBuffer} */
  releaseRxBuffer(buf: RpmsgBuffer): void {
    const b = buf as PoolBuffer;
    if (this.rx[b.slot] !== b) throw new RpmsgError('INVALID_BUFFER', 'not an RX buffer of this transport');
    if (this.rvq.isBroken) return;
    this.rvq.addInbuf(b.addr, b.bytes.length, b.slot);
    if (!this.draining) {
      this.rvq.kick();
      return;
    }
    // One kick per drain (RFC patch 8), but the buffers themselves must reach the device
    // during the drain, as Linux's virtqueue_add_inbuf makes each one visible at once: a
    // callback that answers each message can get the reply back within the same drain,
    // and a drain that re-posted all its buffers unpublished would leave the device none
    // for the next reply (it fails NO_BUFFER; a request-response stream then stops).
    this.rxKickNeeded = true;
    if (++this.rxUnpublished >= this.rxPublishBatch) {
      this.rxUnpublished = 0;
      this.rvq.publish();
    }
  }

  /** vq1's callback (Linux `rpmsg_xmit_done`): the device returned TX buffers while a sender waited. */
  txDone(): void {
    this.sink?.txReady();
  }

  /** {@inheritDoc RpmsgTransport.getTxBuffer} */
  getTxBuffer(): RpmsgBuffer | undefined {
    const free = this.freeTx.pop();
    if (free !== undefined) return this.tx[free];
    // Never-used buffers first (Linux `vrp->last_sbuf`), then the ones the device returned.
    if (this.lastSbuf < this.tx.length) return this.tx[this.lastSbuf++];
    for (let n = 0; n < this.tx.length; n++) {
      try {
        const slot = this.svq.getBuf();
        return slot === undefined ? undefined : this.tx[slot];
      } catch (e) {
        this.fault(e);
        if (isVringError(e, 'USED_LEN_INVALID') && typeof e.token === 'number') return this.tx[e.token];
        return undefined;
      }
    }
    return undefined;
  }

  /** {@inheritDoc RpmsgTransport.sendTxBuffer} */
  sendTxBuffer(buf: RpmsgBuffer, len: number): void {
    const b = buf as PoolBuffer;
    if (this.tx[b.slot] !== b) throw new RpmsgError('INVALID_BUFFER', 'not a TX buffer of this transport');
    if (b.bounce) this.memory!.write(b.addr, b.bytes, 0, len);
    let added: boolean;
    try {
      added = this.svq.addOutbuf(b.addr, len, b.slot);
    } catch (e) {
      throw new RpmsgError('RING_ERROR', 'vq1 refused the buffer', { cause: e });
    }
    if (!added) throw new RpmsgError('RING_ERROR', 'vq1 is full');
    // "tell the remote processor it has a pending message to read"
    this.svq.kick();
  }

  /** {@inheritDoc RpmsgTransport.releaseTxBuffer} */
  releaseTxBuffer(buf: RpmsgBuffer): void {
    const b = buf as PoolBuffer;
    if (this.tx[b.slot] !== b) throw new RpmsgError('INVALID_BUFFER', 'not a TX buffer of this transport');
    this.freeTx.push(b.slot);
  }

  /** {@inheritDoc RpmsgTransport.setTxWaiting} */
  setTxWaiting(waiting: boolean): void {
    if (waiting === this.waiting) return;
    this.waiting = waiting;
    if (!waiting) {
      this.svq.disableCb();
      return;
    }
    // enableCb answers false when buffers came back meanwhile: no interrupt will say so.
    if (!this.svq.enableCb()) queueMicrotask(() => this.txDone());
  }
}

/**
 * The device half of one queue, as {@link RpmsgVringhTransport} uses it. `@x/vhost-core`'s
 * `VhostVirtqueue` has exactly this shape; {@link vringhDeviceQueue} makes one from a
 * bare `Vringh`.
 *
 * @public
 */
export interface RpmsgDeviceQueue {
  /** Queue size (bounds the work of one pass). */
  readonly num: number;
  /** Takes the next chain (readable segments into `riov`, writable into `wiov`); -1 when empty. Throws for a malformed chain. */
  getBuf(riov: VringIov, wiov: VringIov): number;
  /** Copies from `riov` at its cursor into `dst`. */
  pull(riov: VringIov, dst: Uint8Array, dstOffset?: number, length?: number): number;
  /** Copies `src` into `wiov` at its cursor. */
  push(wiov: VringIov, src: Uint8Array, srcOffset?: number, length?: number): number;
  /** Returns one chain with `len` bytes written. */
  putBuf(head: number, len: number): void;
  /** Returns `count` chains with one used-index update. */
  putBufs(heads: ArrayLike<number>, lens: ArrayLike<number>, count?: number): void;
  /** Raises the used-buffer interrupt if the driver wants one for what was returned since the last call. */
  notify(): boolean;
  /** Asks the driver for kicks again; false when chains arrived meanwhile. */
  enableCb(): boolean;
  /** Asks the driver not to kick. */
  disableCb(): void;
}

/**
 * A {@link RpmsgDeviceQueue} over a bare `Vringh` (`@x/vring`); `raise` delivers the
 * used-buffer interrupt.
 *
 * @public
 */
export function vringhDeviceQueue(vrh: Vringh, raise: () => void): RpmsgDeviceQueue {
  if (typeof raise !== 'function') throw new TypeError('raise must be a function');
  return {
    num: vrh.num,
    getBuf: (riov, wiov) => vrh.getDesc(riov, wiov),
    pull: (riov, dst, dstOffset, length) => vrh.pull(riov, dst, dstOffset, length),
    push: (wiov, src, srcOffset, length) => vrh.push(wiov, src, srcOffset, length),
    putBuf: (head, len) => vrh.complete(head, len),
    putBufs: (heads, lens, count) => vrh.completeMany(heads, lens, count),
    notify: () => {
      if (!vrh.needNotify()) return false;
      raise();
      return true;
    },
    enableCb: () => vrh.notifyEnable(),
    disableCb: () => vrh.notifyDisable(),
  };
}

/**
 * Most read messages the device side returns to the driver with one used-index update
 * during a drain (a quarter of the ring when that is less): large enough to make the
 * update rare, small enough that the driver, which sends with those same buffers,
 * never runs dry while the device is still reading.
 */
const RX_DONE_BATCH = 32;

/** A descriptor chain of the driver's, held by the device while a message is in it. */
class ChainBuffer implements RpmsgBuffer {
  bytes: Uint8Array = new Uint8Array(0);
  payload: Uint8Array = this.bytes;
  /** The chain's segments (writable ones for TX, readable ones for RX), own copy. */
  readonly iov: VringIov;
  bounce = false;
  private bounceBuf: Uint8Array | undefined;
  private viewAddr = -1;
  private viewLen = -1;
  constructor(
    readonly head: number,
    capacity: number,
  ) {
    this.iov = new VringIov(capacity);
  }

  /**
   * Keeps the segments of `from` and points `bytes` at the first `size` bytes. With
   * `stable`, a view already held for the same address and size is kept as it is.
   */
  load(from: VringIov, size: number, view: ((addr: number, len: number) => Uint8Array | undefined) | undefined, maxSize: number, stable: boolean): void {
    const iov = this.iov;
    iov.reset();
    for (let i = 0; i < from.count; i++) {
      iov.addr[i] = from.addr[i]!;
      iov.len[i] = from.len[i]!;
    }
    iov.count = from.count;
    iov.totalLen = from.totalLen;
    if (stable && from.count === 1 && !this.bounce && this.viewAddr === from.addr[0]! && this.viewLen === size) return;
    const v = from.count === 1 && view !== undefined ? view(from.addr[0]!, size) : undefined;
    if (v !== undefined) {
      this.bounce = false;
      if (this.viewAddr !== from.addr[0]! || this.viewLen !== size || this.bytes.buffer !== v.buffer) {
        this.bytes = v;
        this.payload = v.subarray(RPMSG_HDR.SIZE);
        this.viewAddr = from.addr[0]!;
        this.viewLen = size;
      }
      return;
    }
    this.bounce = true;
    this.viewAddr = -1;
    this.bounceBuf ??= new Uint8Array(maxSize);
    if (this.bytes.buffer !== this.bounceBuf.buffer || this.bytes.length !== size) {
      this.bytes = this.bounceBuf.subarray(0, size);
      this.payload = this.bytes.subarray(RPMSG_HDR.SIZE);
    }
  }
}

/** Options of {@link RpmsgVringhTransport}. @public */
export interface RpmsgVringhTransportOptions {
  /** vq0 as the device sees it: the driver's RX buffers, which the device fills (its TX). */
  txQueue: RpmsgDeviceQueue;
  /** vq1 as the device sees it: the driver's messages, which the device reads (its RX). */
  rxQueue: RpmsgDeviceQueue;
  /**
   * A zero-copy view of the driver's memory at a device bus address, when there is one
   * (e.g. `vq.vringh.memory.view`); without it, messages are copied through the queue.
   */
  view?: (addr: number, len: number) => Uint8Array | undefined;
  /**
   * The views `view` gives stay valid while the link is up: nothing remaps the driver's
   * memory under an address (a fixed carveout or shared mapping, not a window that is
   * mapped per access). The transport then keeps each chain's view while the chain
   * comes back at the same address and length, as the driver's fixed buffer pool does,
   * instead of asking `view` for every message. Default false.
   */
  stableViews?: boolean;
  /** Largest buffer used, header included: longer driver buffers are used up to this, longer messages dropped. Default 512. */
  bufSize?: number;
  /**
   * Event-loop turns the device keeps looking at vq1 with the driver's kicks still off
   * after it has read everything, before it asks for kicks again (vhost-net's
   * `busyloop_timeout`, counted in turns). A turn that finds messages starts the count
   * again, so a driver that keeps streaming is read without a kick per burst. Costs a
   * `setImmediate` per turn while idle. Helps a sleeping doorbell, where each kick
   * wakes a sleeper; a polling listener that runs immediates only now and then should
   * keep the default. Default 0.
   */
  busyTurns?: number;
  /** Most segments one chain may have. Default 8. */
  maxSegments?: number;
  /** Negotiated rpmsg feature bits. */
  features: number;
}

/**
 * The device-role (vhost) side of an rpmsg link, as the RFC's `vhost_rpmsg_bus.c` and
 * OpenAMP's remote role run it: it sends by filling the driver's posted RX buffers
 * from vq0 and reads the driver's messages from vq1, through the device half of each
 * ring ({@link RpmsgDeviceQueue}: a vhost-core `VhostVirtqueue`, or a `Vringh`). Both
 * rings are hostile: a malformed chain is reported and that ring is not used again; a
 * buffer too short for a header goes back empty.
 *
 * The owner calls {@link RpmsgVringhTransport.kick} when the driver notifies a queue.
 *
 * @public
 */
export class RpmsgVringhTransport implements RpmsgTransport {
  /** {@inheritDoc RpmsgTransport.features} */
  readonly features: number;
  /** {@inheritDoc RpmsgTransport.txBufferSize} */
  readonly txBufferSize: number;
  /** {@inheritDoc RpmsgTransport.rxBufferSize} */
  readonly rxBufferSize: number;
  private readonly txq: RpmsgDeviceQueue;
  private readonly rxq: RpmsgDeviceQueue;
  private readonly view: ((addr: number, len: number) => Uint8Array | undefined) | undefined;
  private readonly stableViews: boolean;
  private readonly maxSegments: number;
  private readonly riov: VringIov;
  private readonly wiov: VringIov;
  private readonly txSlots: Array<ChainBuffer | undefined>;
  private readonly rxSlots: Array<ChainBuffer | undefined>;
  private readonly stash: ChainBuffer[] = [];
  /** Completions of one RX pass, returned with one used-index update. */
  private readonly doneHeads: Uint32Array;
  private readonly doneLens: Uint32Array;
  private doneCount = 0;
  /** Chains returned mid-drain whose interrupt the drain's last flush still owes. */
  private unnotified = false;
  /** Completions returned with one used-index update, at most (see {@link RpmsgVringhTransport.done}). */
  private readonly doneBatch: number;
  private sink: RpmsgTransportSink | undefined;
  private waiting = false;
  private draining = false;
  private rxPending = false;
  private readonly later = new DrainScheduler(() => this.rxDrain());
  private readonly busyTurns: number;
  /** Turns left to look at vq1 with kicks off (see {@link RpmsgVringhTransportOptions.busyTurns}). */
  private busyLeft = 0;
  private txBroken = false;
  private rxBroken = false;

  constructor(options: RpmsgVringhTransportOptions) {
    const bufSize = options.bufSize ?? RPMSG_BUF_SIZE;
    checkBufSize('bufSize', bufSize);
    const maxSegments = options.maxSegments ?? 8;
    if (!Number.isInteger(maxSegments) || maxSegments < 1 || maxSegments > 1024) throw new RangeError(`maxSegments must be in 1..1024, got ${maxSegments}`);
    for (const k of ['txQueue', 'rxQueue'] as const) {
      const q = options[k];
      if (typeof q !== 'object' || q === null || typeof q.getBuf !== 'function') throw new TypeError(`${k} must be an RpmsgDeviceQueue`);
    }
    if (options.view !== undefined && typeof options.view !== 'function') throw new TypeError('view must be a function');
    this.features = options.features >>> 0;
    this.txBufferSize = bufSize;
    this.rxBufferSize = bufSize;
    this.txq = options.txQueue;
    this.rxq = options.rxQueue;
    this.view = options.view;
    this.stableViews = options.stableViews === true;
    const busyTurns = options.busyTurns ?? 0;
    if (!Number.isInteger(busyTurns) || busyTurns < 0 || busyTurns > 1_000_000) throw new RangeError(`busyTurns must be an integer in 0..1000000, got ${busyTurns}`);
    this.busyTurns = busyTurns;
    this.maxSegments = maxSegments;
    this.riov = new VringIov(maxSegments);
    this.wiov = new VringIov(maxSegments);
    this.txSlots = new Array<ChainBuffer | undefined>(this.txq.num).fill(undefined);
    this.rxSlots = new Array<ChainBuffer | undefined>(this.rxq.num).fill(undefined);
    this.doneHeads = new Uint32Array(this.rxq.num);
    this.doneLens = new Uint32Array(this.rxq.num);
    this.doneBatch = Math.max(1, Math.min(RX_DONE_BATCH, this.rxq.num >>> 2));
    // No kicks for vq0 unless a sender waits for the driver's RX buffers.
    this.txq.disableCb();
  }

  /** {@inheritDoc RpmsgTransport.attach} */
  attach(sink: RpmsgTransportSink): void {
    if (this.sink !== undefined) throw new RpmsgError('BUSY', 'transport already attached');
    this.sink = sink;
    this.later.schedule();
  }

  /** {@inheritDoc RpmsgTransport.detach} */
  detach(): void {
    this.sink = undefined;
  }

  /**
   * The driver notified queue `index` (its doorbell): 1 means messages to read, 0
   * means RX buffers were posted (which only matters while a sender waits).
   */
  kick(index: number): void {
    if (index === RPMSG_TX_QUEUE) this.rxDrain();
    else if (index === RPMSG_RX_QUEUE && this.waiting) this.sink?.txReady();
  }

  private fault(e: unknown): void {
    this.sink?.fault(e);
  }


  private slot(slots: Array<ChainBuffer | undefined>, head: number): ChainBuffer | undefined {
    if (!(head >= 0 && head < slots.length)) return undefined;
    let s = slots[head];
    if (s === undefined) {
      s = new ChainBuffer(head, this.maxSegments);
      slots[head] = s;
    }
    return s;
  }

  /** Reads the driver's messages (the RFC's vhost_rpmsg rx loop), one ring's worth per pass. */
  private rxDrain(): void {
    if (this.sink === undefined || this.draining) {
      this.rxPending = true;
      return;
    }
    if (this.rxBroken) return;
    this.rxPending = false;
    const q = this.rxq;
    const riov = this.riov;
    const wiov = this.wiov;
    let more = false;
    this.draining = true;
    try {
      q.disableCb();
      let got = 0;
      for (let n = 0; ; n++) {
        if (this.sink === undefined) return;
        if (n === q.num) {
          // A ring's worth read and more may be there: go on soon (bounded, DRAIN_CHAIN).
          this.rxPending = true;
          more = true;
          break;
        }
        let head: number;
        try {
          head = q.getBuf(riov, wiov);
        } catch (e) {
          this.rxBroken = true;
          this.fault(e);
          return;
        }
        if (head < 0) {
          if (this.busyTurns > 0) {
            if (got > 0) this.busyLeft = this.busyTurns;
            if (this.busyLeft > 0) {
              // Look again on the next turn, kicks still off (a scheduled drain).
              this.busyLeft--;
              this.rxPending = true;
              break;
            }
          }
          if (q.enableCb()) break;
          q.disableCb();
          continue;
        }
        const b = this.slot(this.rxSlots, head);
        if (b === undefined) {
          this.rxBroken = true;
          this.fault(new RpmsgError('RING_ERROR', `vq1 gave head ${head} beyond its size ${q.num}`));
          return;
        }
        const len = riov.totalLen;
        const size = Math.min(len, this.rxBufferSize);
        try {
          b.load(riov, size, this.view, this.rxBufferSize, this.stableViews);
          if (b.bounce) q.pull(b.iov, b.bytes, 0, size);
        } catch (e) {
          // The chain could not be read after all: return it empty.
          this.fault(e);
          this.done(head);
          continue;
        }
        got++;
        this.sink.receive(b, len);
      }
    } finally {
      this.draining = false;
      this.flushRx();
    }
    // A busy turn (nothing known to read) waits for the next event-loop turn.
    if (this.rxPending) this.later.schedule(more);
    else this.later.idle();
  }

  private done(head: number): void {
    this.doneHeads[this.doneCount] = head;
    this.doneLens[this.doneCount] = 0;
    this.doneCount++;
    // A drain lasts as long as the driver keeps sending (up to a ring's worth): holding
    // every read message until its end would starve the driver of TX buffers, since
    // they are the very buffers it sends with. Return them in bounded batches.
    // The interrupt (if the driver wants one) waits for the drain's end, as before.
    if (this.doneCount >= this.doneBatch) this.flushRx(this.draining === false);
  }

  private flushRx(notify = true): void {
    const n = this.doneCount;
    if (n === 0 && !(notify && this.unnotified)) return;
    this.doneCount = 0;
    try {
      if (n > 0) {
        this.rxq.putBufs(this.doneHeads, this.doneLens, n);
        this.unnotified = true;
      }
      if (notify) {
        this.unnotified = false;
        this.rxq.notify();
      }
    } catch (e) {
      this.fault(e);
    }
  }

  /** {@inheritDoc RpmsgTransport.releaseRxBuffer} */
  releaseRxBuffer(buf: RpmsgBuffer): void {
    const b = buf as ChainBuffer;
    if (this.rxSlots[b.head] !== b) throw new RpmsgError('INVALID_BUFFER', 'not an RX chain of this transport');
    // Nothing was written into the driver's message buffer: used length 0.
    this.done(b.head);
    if (!this.draining) this.flushRx();
  }

  /** {@inheritDoc RpmsgTransport.getTxBuffer} */
  getTxBuffer(): RpmsgBuffer | undefined {
    const s = this.stash.pop();
    if (s !== undefined) return s;
    if (this.txBroken) return undefined;
    const q = this.txq;
    for (let n = 0; n < q.num; n++) {
      let head: number;
      try {
        head = q.getBuf(this.riov, this.wiov);
      } catch (e) {
        this.txBroken = true;
        this.fault(e);
        return undefined;
      }
      if (head < 0) return undefined;
      const wiov = this.wiov;
      const b = this.slot(this.txSlots, head);
      if (b === undefined) {
        this.txBroken = true;
        this.fault(new RpmsgError('RING_ERROR', `vq0 gave head ${head} beyond its size ${q.num}`));
        return undefined;
      }
      if (wiov.totalLen < RPMSG_HDR.SIZE + 1) {
        // Too short for any message: give it back empty rather than keep it forever.
        this.fault(new RpmsgError('BUFFER_TOO_SMALL', `vq0 chain ${head} has ${wiov.totalLen} writable bytes`));
        this.putTx(head, 0);
        continue;
      }
      b.load(wiov, Math.min(wiov.totalLen, this.txBufferSize), this.view, this.txBufferSize, this.stableViews);
      return b;
    }
    return undefined;
  }

  private putTx(head: number, len: number): void {
    this.txq.putBuf(head, len);
    this.txq.notify();
  }

  /** {@inheritDoc RpmsgTransport.sendTxBuffer} */
  sendTxBuffer(buf: RpmsgBuffer, len: number): void {
    const b = buf as ChainBuffer;
    if (this.txSlots[b.head] !== b) throw new RpmsgError('INVALID_BUFFER', 'not a TX chain of this transport');
    try {
      if (b.bounce) {
        b.iov.index = 0;
        b.iov.offset = 0;
        this.txq.push(b.iov, b.bytes, 0, len);
      }
      this.putTx(b.head, len);
    } catch (e) {
      throw new RpmsgError('RING_ERROR', 'vq0 refused the buffer', { cause: e });
    }
  }

  /** {@inheritDoc RpmsgTransport.releaseTxBuffer} */
  releaseTxBuffer(buf: RpmsgBuffer): void {
    const b = buf as ChainBuffer;
    if (this.txSlots[b.head] !== b) throw new RpmsgError('INVALID_BUFFER', 'not a TX chain of this transport');
    // The chain left the avail ring already; keep it for the next send.
    this.stash.push(b);
  }

  /** {@inheritDoc RpmsgTransport.setTxWaiting} */
  setTxWaiting(waiting: boolean): void {
    if (waiting === this.waiting) return;
    this.waiting = waiting;
    if (!waiting) {
      this.txq.disableCb();
      return;
    }
    if (!this.txq.enableCb()) queueMicrotask(() => this.kick(RPMSG_RX_QUEUE));
  }
}
