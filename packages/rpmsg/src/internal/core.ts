import type {
  RpmsgChannel,
  RpmsgChannelInfo,
  RpmsgDriver,
  RpmsgEndpointOptions,
  RpmsgRxCallback,
  RpmsgSendOptions,
  RpmsgVirtprocEvents,
  RpmsgVirtprocOptions,
  RpmsgVirtprocStats,
} from '../api.js';
import { RpmsgError, type RpmsgErrorCode } from '../errors.js';
import type { RpmsgBuffer, RpmsgTransport, RpmsgTransportSink } from '../transport.js';
import type { RpmsgVirtproc } from '../virtproc.js';
import {
  RPMSG_ADDR_ANY,
  RPMSG_AS_ADDR,
  RPMSG_AS_FLAGS,
  RPMSG_AS_MSG,
  RPMSG_HDR,
  RPMSG_NS_ADDR,
  RPMSG_NS_FLAGS,
  RPMSG_NS_MSG,
  RPMSG_RESERVED_ADDRESSES,
  RPMSG_SEND_TIMEOUT_MS,
  VIRTIO_RPMSG_F,
  checkRpmsgName,
  getU16,
  getU32,
  putU16,
  putU32,
  readAsMsg,
  readNsMsg,
  writeAsMsg,
  writeNsMsg,
  type RpmsgAsMsg,
  type RpmsgNsMsg,
} from '../wire.js';
import { ChannelImpl } from './channel.js';
import { EndpointImpl } from './endpoint.js';

/** Largest address an endpoint may take (RPMSG_ADDR_ANY is the "none" value). */
const MAX_ADDR = 0xfffffffe;

const utf8 = new TextEncoder();

/** A sender parked until a TX buffer frees up (Linux `vrp->sendq`). */
interface Waiter {
  readonly ept: EndpointImpl | undefined;
  /** Takes the buffer synchronously (so FIFO order is the wire order). */
  take(buf: RpmsgBuffer): void;
  fail(err: RpmsgError): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  done: boolean;
}

/** An RX buffer being delivered to a callback, for holdRxBuffer (reused: one per nesting depth). */
interface RxFrame {
  buf: RpmsgBuffer | undefined;
  data: Uint8Array | undefined;
  held: boolean;
}

/**
 * Where the core keeps, on an RX buffer object, the payload view it last gave a callback
 * and the bytes it was cut from: the same buffer delivering the same length from the same
 * bytes again reuses it instead of allocating a view per message.
 */
const RX_DATA: unique symbol = Symbol('rpmsg.rxData');
const RX_BYTES: unique symbol = Symbol('rpmsg.rxBytes');
type RxDataCache = { [RX_DATA]?: Uint8Array; [RX_BYTES]?: Uint8Array };

/** `bytes[16, 16 + len)` as a view, reusing the one cached on `buf` when it still matches. */
function rxData(buf: RpmsgBuffer, bytes: Uint8Array, len: number): Uint8Array {
  const c = buf as RpmsgBuffer & RxDataCache;
  const d = c[RX_DATA];
  if (d !== undefined && c[RX_BYTES] === bytes && d.length === len) return d;
  const v = bytes.subarray(RPMSG_HDR.SIZE, RPMSG_HDR.SIZE + len);
  if (Object.isExtensible(buf)) {
    c[RX_DATA] = v;
    c[RX_BYTES] = bytes;
  }
  return v;
}

/** Payload data accepted by the send calls. */
export type Payload = Uint8Array | string;

/** The checks every send path shares; returns the UTF-8 / byte length of `data`. */
export function payloadLength(data: Payload, max: number): number {
  if (typeof data === 'string') {
    // 3 bytes per UTF-16 unit bounds the UTF-8 length; measure only long strings.
    const n = data.length * 3 <= max ? -1 : utf8.encode(data).length;
    if (n > max) throw new RangeError(`data is ${n} bytes; the largest payload is ${max}`);
    return n;
  }
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array or a string');
  if (data.length > max) throw new RangeError(`data is ${data.length} bytes; the largest payload is ${max}`);
  return data.length;
}

export function checkAddr(name: string, v: number, allowAny: boolean): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a u32 address, got ${v}`);
  if (!allowAny && v === RPMSG_ADDR_ANY) throw new RpmsgError('BAD_ADDRESS', `${name} is RPMSG_ADDR_ANY`);
}

function hex(v: number): string {
  return `0x${v.toString(16)}`;
}

/**
 * The rpmsg core of one link (Linux `struct virtproc_info` with `rpmsg_core.c` and
 * `rpmsg_ns.c`, OpenAMP `struct rpmsg_device`): endpoints, channels, drivers, the
 * name service at 53 and the RFC's address service at 54, TX waiting and RX dispatch.
 * Transport-independent: it sees only {@link RpmsgTransport}.
 */
export class Core {
  readonly facade: RpmsgVirtproc;
  readonly transport: RpmsgTransport;
  readonly name: string;
  readonly role: 'driver' | 'device';
  readonly features: number;
  readonly sendTimeoutMs: number;
  readonly acceptEmpty: boolean;
  readonly bindOnFirstMessage: boolean;
  readonly maxPayload: number;
  readonly stats: RpmsgVirtprocStats = {
    rxMessages: 0,
    rxBytes: 0,
    txMessages: 0,
    txBytes: 0,
    txWaits: 0,
    dropped: 0,
    drops: {},
    staleControl: 0,
  };
  closed = false;
  private closing = false;
  /** Set by a close for a lost link: every later error of this virtproc is LINK_DOWN with this cause. */
  linkDown: { cause: unknown } | undefined;

  readonly endpoints = new Map<number, EndpointImpl>();
  readonly channels: ChannelImpl[] = [];
  readonly drivers: RpmsgDriver[] = [];
  /** Zero-copy TX buffers lent to users. */
  readonly lent = new Set<RpmsgBuffer>();
  /** RX buffers held past their callback, by the data view the callback got. */
  readonly held = new Map<Uint8Array, { buf: RpmsgBuffer; ept: EndpointImpl }>();
  private nextAddr = RPMSG_RESERVED_ADDRESSES;
  private waiters: Waiter[] = [];
  private waitHead = 0;
  private txWaiting = false;
  /** Frames of the callbacks running now, innermost at rxDepth − 1 (kept for reuse above it). */
  private readonly rxStack: RxFrame[] = [];
  private rxDepth = 0;
  /** Scratch for control messages (NS 40 / AS 44 bytes). */
  private readonly ctl = new Uint8Array(RPMSG_AS_MSG.SIZE);

  constructor(facade: RpmsgVirtproc, transport: RpmsgTransport, options: RpmsgVirtprocOptions) {
    if (typeof transport !== 'object' || transport === null) throw new TypeError('transport must be an RpmsgTransport');
    for (const m of ['attach', 'detach', 'getTxBuffer', 'sendTxBuffer', 'releaseTxBuffer', 'releaseRxBuffer', 'setTxWaiting'] as const) {
      if (typeof transport[m] !== 'function') throw new TypeError(`transport.${m} must be a function`);
    }
    for (const k of ['txBufferSize', 'rxBufferSize'] as const) {
      const v = transport[k];
      if (!Number.isInteger(v) || v <= RPMSG_HDR.SIZE || v > RPMSG_HDR.SIZE + 0xffff) {
        throw new RangeError(`transport.${k} must be an integer in 17..${RPMSG_HDR.SIZE + 0xffff}, got ${v}`);
      }
    }
    const timeout = options.sendTimeoutMs ?? RPMSG_SEND_TIMEOUT_MS;
    if (typeof timeout !== 'number' || !(timeout >= 0) || timeout > 0x7fffffff) {
      throw new RangeError(`sendTimeoutMs must be a number of ms in 0..2^31-1, got ${timeout}`);
    }
    const role = options.role ?? 'driver';
    if (role !== 'driver' && role !== 'device') throw new RangeError(`role must be 'driver' or 'device', got ${String(role)}`);
    this.facade = facade;
    this.transport = transport;
    this.name = options.name ?? 'virtproc';
    this.role = role;
    this.features = transport.features >>> 0;
    this.sendTimeoutMs = timeout;
    this.acceptEmpty = options.acceptEmptyMessages ?? false;
    this.bindOnFirstMessage = options.bindOnFirstMessage ?? role === 'device';
    this.maxPayload = transport.txBufferSize - RPMSG_HDR.SIZE;
    // The NS endpoint exists only when F_NS was negotiated (Linux registers rpmsg_ns
    // then); the AS endpoint when the RFC's F_AS was (vhost_rpmsg at FINALIZE_FEATURES).
    if (this.hasFeature(VIRTIO_RPMSG_F.NS)) {
      this.createEndpoint({ name: 'rpmsg-ns', src: RPMSG_NS_ADDR, callback: (d, s) => this.onNs(d, s) }, undefined, true);
    }
    if (this.hasFeature(VIRTIO_RPMSG_F.AS)) {
      this.createEndpoint({ name: 'rpmsg-as', src: RPMSG_AS_ADDR, callback: (d, s) => this.onAs(d, s) }, undefined, true);
    }
    const sink: RpmsgTransportSink = {
      receive: (buf, len) => this.receive(buf, len),
      txReady: () => this.wakeWaiters(),
      // A transport complaining while the link is torn down (rings already reset) is noise.
      fault: (e) => {
        if (!this.closing) this.warn(new RpmsgError('RING_ERROR', `${this.name}: transport fault: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
      },
    };
    transport.attach(sink);
  }

  hasFeature(bit: number): boolean {
    return ((this.features >>> bit) & 1) === 1;
  }

  emit<K extends keyof RpmsgVirtprocEvents>(event: K, ...args: RpmsgVirtprocEvents[K]): void {
    // A throwing listener is the listener's bug; it must not leave an RX buffer unreturned
    // or a ring half-drained, so it is rethrown outside the data path.
    try {
      (this.facade.emit as (e: K, ...a: RpmsgVirtprocEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  warn(err: RpmsgError): void {
    this.emit('warning', err);
  }

  // ---- addresses and endpoints -------------------------------------------------------

  /** Lowest free address ≥ 1024 (Linux `idr_alloc(&vrp->endpoints, …, 1024, 0)`). */
  private allocAddr(): number {
    let a = this.nextAddr;
    while (this.endpoints.has(a)) {
      if (a === MAX_ADDR) throw new RpmsgError('ADDRESSES_EXHAUSTED', `${this.name}: no free endpoint address`);
      a++;
    }
    this.nextAddr = a + 1;
    return a;
  }

  createEndpoint(options: RpmsgEndpointOptions, channel: ChannelImpl | undefined, control = false): EndpointImpl {
    this.checkOpen();
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const name = options.name ?? channel?.name ?? '';
    if (typeof name !== 'string') throw new TypeError('name must be a string');
    const src = options.src ?? RPMSG_ADDR_ANY;
    const dst = options.dst ?? RPMSG_ADDR_ANY;
    checkAddr('src', src, true);
    checkAddr('dst', dst, true);
    const cb = options.callback;
    if (cb !== undefined && typeof cb !== 'function') throw new TypeError('callback must be a function');
    let addr: number;
    if (src === RPMSG_ADDR_ANY) addr = this.allocAddr();
    else {
      if (this.endpoints.has(src)) throw new RpmsgError('ADDRESS_IN_USE', `${this.name}: address ${hex(src)} already has an endpoint`);
      addr = src;
    }
    const ept = new EndpointImpl(this, addr, name, dst, channel, cb as RpmsgRxCallback | undefined, this.bindOnFirstMessage && !control);
    this.endpoints.set(addr, ept);
    return ept;
  }

  /** Called by EndpointImpl.destroy after it released its own state. */
  removeEndpoint(ept: EndpointImpl): void {
    if (this.endpoints.get(ept.addr) === ept) this.endpoints.delete(ept.addr);
    if (ept.addr >= RPMSG_RESERVED_ADDRESSES && ept.addr < this.nextAddr) this.nextAddr = ept.addr;
    for (const [data, h] of this.held) {
      if (h.ept === ept) {
        this.held.delete(data);
        this.transport.releaseRxBuffer(h.buf);
      }
    }
    // Its parked sends fail now rather than at their timeout.
    for (let i = this.waitHead; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      if (w.ept === ept && !w.done) {
        this.finishWaiter(w);
        w.fail(ept.goneError());
      }
    }
    this.compactWaiters();
  }

  checkOpen(): void {
    if (this.closed) throw this.closedError(`${this.name} is closed`);
  }

  /**
   * The error of a call that finds this virtproc (or an endpoint it destroyed) gone:
   * LINK_DOWN with the transport's cause when the link went down, CLOSED otherwise.
   */
  closedError(what: string): RpmsgError {
    const d = this.linkDown;
    return d === undefined ? new RpmsgError('CLOSED', what) : new RpmsgError('LINK_DOWN', `${what}: the link went down`, { cause: d.cause });
  }

  // ---- TX ----------------------------------------------------------------------------

  private get waiting(): number {
    return this.waiters.length - this.waitHead;
  }

  /**
   * A free TX buffer now, or undefined. Senders already parked go first, so one
   * endpoint's messages never overtake each other.
   */
  tryTxBuffer(): RpmsgBuffer | undefined {
    if (this.closed) throw this.closedError(`${this.name} is closed`);
    if (this.waiting > 0) return undefined;
    return this.transport.getTxBuffer();
  }

  /** Parks a sender until a TX buffer is free (Linux `wait_event_interruptible_timeout(vrp->sendq, …)`). */
  waitTx(ept: EndpointImpl | undefined, options: RpmsgSendOptions | undefined, take: (buf: RpmsgBuffer) => void, fail: (e: RpmsgError) => void): void {
    const signal = options?.signal;
    const timeoutMs = options?.timeoutMs ?? this.sendTimeoutMs;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || timeoutMs > 0x7fffffff) {
      throw new RangeError(`timeoutMs must be a number of ms in 0..2^31-1, got ${timeoutMs}`);
    }
    if (signal?.aborted) {
      fail(new RpmsgError('ABORTED', 'aborted before a TX buffer was free', { cause: signal.reason }));
      return;
    }
    this.stats.txWaits++;
    if (ept !== undefined) ept.stats.txWaits++;
    const w: Waiter = { ept, take, fail, timer: undefined, signal, onAbort: undefined, done: false };
    w.timer = setTimeout(() => {
      this.finishWaiter(w);
      this.compactWaiters();
      fail(new RpmsgError('TIMEOUT', `no TX buffer became free within ${timeoutMs} ms`));
    }, timeoutMs);
    if (signal !== undefined) {
      w.onAbort = () => {
        this.finishWaiter(w);
        this.compactWaiters();
        fail(new RpmsgError('ABORTED', 'aborted while waiting for a TX buffer', { cause: signal.reason }));
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
    this.waiters.push(w);
    if (!this.txWaiting) {
      this.txWaiting = true;
      this.transport.setTxWaiting(true);
    }
    // A buffer may have come back between the failed try and enabling the callback.
    this.wakeWaiters();
  }

  private finishWaiter(w: Waiter): void {
    if (w.done) return;
    w.done = true;
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.timer = undefined;
    if (w.signal !== undefined && w.onAbort !== undefined) w.signal.removeEventListener('abort', w.onAbort);
  }

  /** Drops finished waiters from the head and stops TX callbacks when nobody waits. */
  private compactWaiters(): void {
    while (this.waitHead < this.waiters.length && this.waiters[this.waitHead]!.done) this.waitHead++;
    if (this.waitHead === this.waiters.length) {
      this.waiters = [];
      this.waitHead = 0;
      if (this.txWaiting && !this.closed) {
        this.txWaiting = false;
        this.transport.setTxWaiting(false);
      }
    } else if (this.waitHead > 64 && this.waitHead * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.waitHead);
      this.waitHead = 0;
    }
  }

  /** Hands free TX buffers to parked senders in order (the TX-complete callback). */
  wakeWaiters(): void {
    if (this.closed) return;
    while (this.waitHead < this.waiters.length) {
      const w = this.waiters[this.waitHead]!;
      if (w.done) {
        this.waitHead++;
        continue;
      }
      const buf = this.transport.getTxBuffer();
      if (buf === undefined) break;
      this.finishWaiter(w);
      this.waitHead++;
      w.take(buf);
    }
    this.compactWaiters();
  }

  /**
   * Writes header and payload into `buf` and sends it (Linux
   * `rpmsg_send_offchannel_raw`). On any failure the buffer goes back to the transport.
   */
  transmit(ept: EndpointImpl | undefined, buf: RpmsgBuffer, src: number, dst: number, data: Payload): void {
    let sent = false;
    try {
      if (this.closed) throw this.closedError(`${this.name} is closed`);
      if (ept !== undefined && ept.destroyed) throw ept.goneError();
      const bytes = buf.bytes;
      const room = bytes.length - RPMSG_HDR.SIZE;
      let len: number;
      if (typeof data === 'string') {
        const r = utf8.encodeInto(data, buf.payload);
        if (r.read < data.length) throw new RpmsgError('BUFFER_TOO_SMALL', `the TX buffer holds ${room} payload bytes; the string needs more`);
        len = r.written;
      } else {
        if (data.length > room) throw new RpmsgError('BUFFER_TOO_SMALL', `the TX buffer holds ${room} payload bytes, ${data.length} given`);
        buf.payload.set(data);
        len = data.length;
      }
      this.sendFilled(ept, buf, src, dst, len);
      sent = true;
    } finally {
      if (!sent) this.releaseTx(buf);
    }
  }

  /** Gives an unsent TX buffer back and lets a parked sender have it. */
  releaseTx(buf: RpmsgBuffer): void {
    this.transport.releaseTxBuffer(buf);
    if (this.waiting > 0) this.wakeWaiters();
  }

  /** Writes the header of a filled buffer and hands it to the transport. */
  sendFilled(ept: EndpointImpl | undefined, buf: RpmsgBuffer, src: number, dst: number, len: number): void {
    const b = buf.bytes;
    putU32(b, RPMSG_HDR.SRC, src);
    putU32(b, RPMSG_HDR.DST, dst);
    // OpenAMP keeps private state in `reserved` while it holds a buffer; send 0.
    putU32(b, RPMSG_HDR.RESERVED, 0);
    putU16(b, RPMSG_HDR.LEN, len);
    putU16(b, RPMSG_HDR.FLAGS, 0);
    this.transport.sendTxBuffer(buf, RPMSG_HDR.SIZE + len);
    this.stats.txMessages++;
    this.stats.txBytes += len;
    if (ept !== undefined) {
      ept.stats.txMessages++;
      ept.stats.txBytes += len;
    }
  }

  /** Sends a control message (NS / AS) without blocking the caller; failures become warnings. */
  private sendControl(src: number, dst: number, len: number, what: string): void {
    const data = this.ctl.slice(0, len);
    const fail = (e: unknown): void => {
      this.warn(e instanceof RpmsgError ? e : new RpmsgError('RING_ERROR', `${what} could not be sent`, { cause: e }));
    };
    try {
      if (this.closed) return;
      const buf = this.tryTxBuffer();
      if (buf !== undefined) {
        this.transmit(undefined, buf, src, dst, data);
        return;
      }
      this.waitTx(undefined, undefined, (b) => {
        try {
          this.transmit(undefined, b, src, dst, data);
        } catch (e) {
          fail(e);
        }
      }, fail);
    } catch (e) {
      fail(e);
    }
  }

  // ---- RX ----------------------------------------------------------------------------

  drop(code: RpmsgErrorCode, message: string, fields?: { src?: number; dst?: number; len?: number; cause?: unknown }): void {
    this.stats.dropped++;
    this.stats.drops[code] = (this.stats.drops[code] ?? 0) + 1;
    this.emit('dropped', new RpmsgError(code, `${this.name}: ${message}`, fields));
  }

  /**
   * One received buffer (Linux `rpmsg_recv_single`). Every path gives the buffer back
   * unless an endpoint holds it; a malformed message is counted, reported and dropped.
   */
  receive(buf: RpmsgBuffer, len: number): void {
    let retained = false;
    try {
      if (this.closed) return;
      const bytes = buf.bytes;
      if (!Number.isInteger(len) || len < 0 || len > bytes.length) {
        this.drop('BAD_LENGTH', `used length ${len} exceeds the RX buffer size ${bytes.length}`, { len });
        return;
      }
      if (len < RPMSG_HDR.SIZE) {
        this.drop('TRUNCATED', `buffer of ${len} bytes is shorter than the ${RPMSG_HDR.SIZE}-byte header`, { len });
        return;
      }
      const src = getU32(bytes, RPMSG_HDR.SRC);
      const dst = getU32(bytes, RPMSG_HDR.DST);
      const mlen = getU16(bytes, RPMSG_HDR.LEN);
      // `reserved` and `flags` are ignored (OpenAMP writes private state into reserved).
      if (mlen > len - RPMSG_HDR.SIZE) {
        this.drop('BAD_LENGTH', `len ${mlen} exceeds the ${len - RPMSG_HDR.SIZE} payload bytes received`, { src, dst, len: mlen });
        return;
      }
      if (mlen === 0 && !this.acceptEmpty) {
        this.drop('BAD_LENGTH', 'len is 0', { src, dst, len: 0 });
        return;
      }
      const ept = this.endpoints.get(dst);
      if (ept === undefined) {
        this.drop('NO_ENDPOINT', `no endpoint at ${hex(dst)} (from ${hex(src)}, ${mlen} bytes)`, { src, dst, len: mlen });
        return;
      }
      this.stats.rxMessages++;
      this.stats.rxBytes += mlen;
      retained = ept.deliver(buf, rxData(buf, bytes, mlen), src);
    } finally {
      if (!retained) this.transport.releaseRxBuffer(buf);
    }
  }

  /** Runs a receive callback with `data` registered for holdRxBuffer; returns true if held. */
  runCallback(ept: EndpointImpl, cb: RpmsgRxCallback, buf: RpmsgBuffer, data: Uint8Array, src: number): boolean {
    const depth = this.rxDepth;
    let frame = this.rxStack[depth];
    if (frame === undefined) {
      frame = { buf: undefined, data: undefined, held: false };
      this.rxStack.push(frame);
    }
    frame.buf = buf;
    frame.data = data;
    frame.held = false;
    this.rxDepth = depth + 1;
    try {
      cb(data, src, ept);
    } catch (e) {
      this.warn(new RpmsgError('CALLBACK_FAILED', `${this.name}: callback of endpoint ${hex(ept.addr)} threw: ${(e as Error)?.message ?? String(e)}`, { cause: e, src, dst: ept.addr, len: data.length }));
    } finally {
      this.rxDepth = depth;
      frame.buf = undefined;
      frame.data = undefined;
    }
    if (frame.held) {
      if (ept.destroyed || this.closed) {
        this.held.delete(data);
        return false;
      }
      return true;
    }
    return false;
  }

  holdRx(ept: EndpointImpl, data: Uint8Array): void {
    const frame = this.rxDepth > 0 ? this.rxStack[this.rxDepth - 1] : undefined;
    if (frame === undefined || frame.data !== data || frame.buf === undefined) {
      throw new RpmsgError('INVALID_BUFFER', 'holdRxBuffer takes the data of the message being delivered, inside its callback');
    }
    if (frame.held) return;
    frame.held = true;
    this.held.set(data, { buf: frame.buf, ept });
    ept.stats.rxHeld++;
  }

  releaseRx(ept: EndpointImpl, data: Uint8Array): void {
    const h = this.held.get(data);
    if (h === undefined || h.ept !== ept) throw new RpmsgError('INVALID_BUFFER', 'this data is not a held RX buffer of this endpoint');
    this.held.delete(data);
    ept.stats.rxHeld--;
    // Released inside the callback that held it: the receive path returns it.
    const frame = this.rxDepth > 0 ? this.rxStack[this.rxDepth - 1] : undefined;
    if (frame !== undefined && frame.data === data) {
      frame.held = false;
      return;
    }
    this.transport.releaseRxBuffer(h.buf);
  }

  // ---- channels and drivers ----------------------------------------------------------

  /** Linux `rpmsg_device_match`: RPMSG_ADDR_ANY in `info` is a wildcard. */
  private matches(ch: ChannelImpl, name: string, src: number, dst: number): boolean {
    return ch.name === name && (src === RPMSG_ADDR_ANY || src === ch.src) && (dst === RPMSG_ADDR_ANY || dst === ch.dst);
  }

  findChannel(info: RpmsgChannelInfo): ChannelImpl | undefined {
    const src = info.src ?? RPMSG_ADDR_ANY;
    const dst = info.dst ?? RPMSG_ADDR_ANY;
    return this.channels.find((c) => this.matches(c, info.name, src, dst));
  }

  /** Linux `rpmsg_create_channel` / `virtio_rpmsg_create_channel`. */
  createChannel(info: RpmsgChannelInfo, origin: 'local' | 'remote', announce: boolean): ChannelImpl {
    this.checkOpen();
    if (typeof info !== 'object' || info === null) throw new TypeError('info must be an object');
    checkRpmsgName(info.name);
    const src = info.src ?? RPMSG_ADDR_ANY;
    const dst = info.dst ?? RPMSG_ADDR_ANY;
    checkAddr('src', src, true);
    checkAddr('dst', dst, true);
    if (this.findChannel({ name: info.name, src, dst }) !== undefined) {
      throw new RpmsgError('CHANNEL_EXISTS', `${this.name}: channel ${info.name}:${hex(src)}:${hex(dst)} already exists`);
    }
    const ch = new ChannelImpl(this, info.name, src, dst, origin, announce);
    this.channels.push(ch);
    this.emit('channel', ch);
    const drv = this.drivers.find((d) => d.idTable.includes(ch.name));
    if (drv !== undefined) this.bind(ch, drv);
    return ch;
  }

  /** Linux `rpmsg_unregister_device`: unbinds the driver (announcing the removal) and forgets the channel. */
  removeChannel(ch: ChannelImpl, announce: boolean): void {
    if (ch.removed) return;
    if (ch.driver !== undefined) this.unbind(ch, announce);
    const i = this.channels.indexOf(ch);
    if (i >= 0) this.channels.splice(i, 1);
    ch.removed = true;
    this.emit('channelRemoved', ch);
  }

  setDst(ch: ChannelImpl, dst: number): void {
    if (ch.dst === dst) return;
    ch.dst = dst;
    this.emit('channelDst', ch, dst);
  }

  registerDriver(drv: RpmsgDriver): void {
    this.checkOpen();
    if (typeof drv !== 'object' || drv === null) throw new TypeError('driver must be an object');
    if (typeof drv.name !== 'string') throw new TypeError('driver.name must be a string');
    if (!Array.isArray(drv.idTable) || !drv.idTable.every((n) => typeof n === 'string')) throw new TypeError('driver.idTable must be an array of channel names');
    for (const k of ['probe', 'remove', 'callback'] as const) {
      if (drv[k] !== undefined && typeof drv[k] !== 'function') throw new TypeError(`driver.${k} must be a function`);
    }
    if (this.drivers.includes(drv)) throw new RpmsgError('BUSY', `driver ${drv.name} is already registered`);
    this.drivers.push(drv);
    for (const ch of [...this.channels]) {
      if (ch.driver === undefined && !ch.removed && drv.idTable.includes(ch.name)) this.bind(ch, drv);
    }
  }

  unregisterDriver(drv: RpmsgDriver): void {
    const i = this.drivers.indexOf(drv);
    if (i < 0) throw new RpmsgError('NOT_FOUND', `driver ${String(drv?.name)} is not registered`);
    this.drivers.splice(i, 1);
    for (const ch of [...this.channels]) if (ch.driver === drv) this.unbind(ch, true);
  }

  /** Linux `rpmsg_dev_probe`: default endpoint, probe, then announce. */
  private bind(ch: ChannelImpl, drv: RpmsgDriver): void {
    let ept: EndpointImpl | undefined;
    try {
      if (drv.callback !== undefined) {
        const cb = drv.callback;
        ept = this.createEndpoint({ name: ch.name, src: ch.src, callback: (data, src) => cb.call(drv, ch, data, src) }, ch);
        ch.src = ept.addr;
        ch.endpoint = ept;
      }
      ch.driver = drv;
      drv.probe?.(ch);
    } catch (e) {
      ch.driver = undefined;
      ch.endpoint = undefined;
      ept?.destroy();
      this.warn(new RpmsgError('PROBE_FAILED', `${this.name}: driver ${drv.name} refused channel ${ch.name}: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
      return;
    }
    this.announceCreate(ch);
  }

  /** Linux `rpmsg_dev_remove`: announce, driver remove, destroy the endpoint. */
  private unbind(ch: ChannelImpl, announce: boolean): void {
    const drv = ch.driver;
    if (announce) this.announceDestroy(ch);
    try {
      drv?.remove?.(ch);
    } catch (e) {
      this.warn(new RpmsgError('CALLBACK_FAILED', `${this.name}: remove of ${drv?.name} threw: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
    }
    ch.driver = undefined;
    const ept = ch.endpoint;
    ch.endpoint = undefined;
    ept?.destroy();
  }

  // ---- name service (53) and address service (54) -----------------------------------

  /**
   * Announces a channel after its probe (Linux `virtio_rpmsg_announce_create`, RFC
   * patch 10). Our own channel: NS CREATE, with AS_ANNOUNCE when F_AS was negotiated
   * so the peer answers with the address it binds. A channel the peer announced with
   * AS_ANNOUNCE: AS ASSIGN to 54 (F_AS), then NS CREATE to 53 (F_NS), as the RFC's
   * virtio side does.
   */
  private announceCreate(ch: ChannelImpl): void {
    const ept = ch.endpoint;
    if (!ch.announce || ept === undefined || this.closed) return;
    const ns = this.hasFeature(VIRTIO_RPMSG_F.NS);
    const as = this.hasFeature(VIRTIO_RPMSG_F.AS);
    if (ch.origin === 'remote') {
      if (as && ch.dst !== RPMSG_ADDR_ANY) {
        writeAsMsg(this.ctl, 0, ch.name, ept.addr, ch.dst, RPMSG_AS_FLAGS.ASSIGN);
        this.sendControl(ept.addr, RPMSG_AS_ADDR, RPMSG_AS_MSG.SIZE, `AS ASSIGN for ${ch.name}`);
      }
      if (ns) {
        writeNsMsg(this.ctl, 0, ch.name, ept.addr, RPMSG_NS_FLAGS.CREATE);
        this.sendControl(ept.addr, RPMSG_NS_ADDR, RPMSG_NS_MSG.SIZE, `NS CREATE for ${ch.name}`);
      }
    } else if (ns) {
      writeNsMsg(this.ctl, 0, ch.name, ept.addr, RPMSG_NS_FLAGS.CREATE | (as ? RPMSG_NS_FLAGS.AS_ANNOUNCE : 0));
      this.sendControl(ept.addr, RPMSG_NS_ADDR, RPMSG_NS_MSG.SIZE, `NS CREATE for ${ch.name}`);
    }
  }

  /** Linux `virtio_rpmsg_announce_destroy`; for an AS-bound channel, AS FREE first (RFC). */
  private announceDestroy(ch: ChannelImpl): void {
    const ept = ch.endpoint;
    if (!ch.announce || ept === undefined || this.closed) return;
    if (ch.origin === 'remote' && this.hasFeature(VIRTIO_RPMSG_F.AS) && ch.dst !== RPMSG_ADDR_ANY) {
      writeAsMsg(this.ctl, 0, ch.name, ept.addr, ch.dst, RPMSG_AS_FLAGS.FREE);
      this.sendControl(ept.addr, RPMSG_AS_ADDR, RPMSG_AS_MSG.SIZE, `AS FREE for ${ch.name}`);
    }
    if (this.hasFeature(VIRTIO_RPMSG_F.NS)) {
      writeNsMsg(this.ctl, 0, ch.name, ept.addr, RPMSG_NS_FLAGS.DESTROY);
      this.sendControl(ept.addr, RPMSG_NS_ADDR, RPMSG_NS_MSG.SIZE, `NS DESTROY for ${ch.name}`);
    }
  }

  /** The NS endpoint's callback (Linux `rpmsg_ns_cb`, OpenAMP `rpmsg_virtio_ns_callback`). */
  private onNs(data: Uint8Array, src: number): void {
    let msg: RpmsgNsMsg;
    try {
      msg = readNsMsg(data, 0, data.length);
    } catch (e) {
      const err = e as RpmsgError;
      this.drop(err.code, `NS message from ${hex(src)}: ${err.message}`, { src, dst: RPMSG_NS_ADDR, len: data.length });
      return;
    }
    if ((msg.flags & RPMSG_NS_FLAGS.DESTROY) !== 0) this.nsDestroy(msg);
    else this.nsCreate(msg);
  }

  private nsCreate(msg: RpmsgNsMsg): void {
    if (msg.addr === RPMSG_ADDR_ANY) {
      this.drop('BAD_ADDRESS', `NS CREATE for ${msg.name} announces RPMSG_ADDR_ANY`, { dst: RPMSG_NS_ADDR, len: RPMSG_NS_MSG.SIZE });
      return;
    }
    // A channel of ours waiting for its peer is bound, not duplicated (OpenAMP does the
    // same). This is also the fix for the RFC's vhost side, which had no endpoint at 53
    // for the virtio side's NS CREATE.
    const local = this.channels.find((c) => c.origin === 'local' && c.name === msg.name && (c.dst === RPMSG_ADDR_ANY || c.dst === msg.addr));
    if (local !== undefined) {
      this.setDst(local, msg.addr);
      return;
    }
    if (this.channels.some((c) => c.origin === 'remote' && c.name === msg.name && c.dst === msg.addr)) {
      this.warn(new RpmsgError('CHANNEL_EXISTS', `${this.name}: NS CREATE for ${msg.name}:${hex(msg.addr)}, which exists`));
      return;
    }
    const announce = (msg.flags & RPMSG_NS_FLAGS.AS_ANNOUNCE) !== 0;
    this.createChannel({ name: msg.name, src: RPMSG_ADDR_ANY, dst: msg.addr }, 'remote', announce);
  }

  private nsDestroy(msg: RpmsgNsMsg): void {
    const remote = this.channels.find((c) => c.origin === 'remote' && c.name === msg.name && c.dst === msg.addr);
    if (remote !== undefined) {
      this.removeChannel(remote, true);
      return;
    }
    // The peer let go of one of our channels: unbind it (OpenAMP), keep it for the next peer.
    const local = this.channels.find((c) => c.origin === 'local' && c.name === msg.name && c.dst === msg.addr);
    if (local !== undefined) {
      this.setDst(local, RPMSG_ADDR_ANY);
      return;
    }
    this.stats.staleControl++;
  }

  /** The AS endpoint's callback (RFC patch 10, `rpmsg_as_cb` of vhost_rpmsg_bus.c). */
  private onAs(data: Uint8Array, src: number): void {
    let msg: RpmsgAsMsg;
    try {
      msg = readAsMsg(data, 0, data.length);
    } catch (e) {
      const err = e as RpmsgError;
      this.drop(err.code, `AS message from ${hex(src)}: ${err.message}`, { src, dst: RPMSG_AS_ADDR, len: data.length });
      return;
    }
    const ch = this.channels.find((c) => c.name === msg.name && c.src === msg.src);
    if (msg.flags === RPMSG_AS_FLAGS.ASSIGN) {
      if (ch === undefined) {
        this.drop('NO_CHANNEL', `AS ASSIGN for ${msg.name}:${hex(msg.src)}, which does not exist`, { src, dst: RPMSG_AS_ADDR, len: data.length });
      } else if (msg.dst === RPMSG_ADDR_ANY) {
        this.drop('BAD_ADDRESS', `AS ASSIGN for ${msg.name} assigns RPMSG_ADDR_ANY`, { src, dst: RPMSG_AS_ADDR, len: data.length });
      } else if (ch.dst === RPMSG_ADDR_ANY || ch.dst === msg.dst) {
        this.setDst(ch, msg.dst);
      } else {
        this.drop('BUSY', `AS ASSIGN ${hex(msg.dst)} for ${msg.name}, already bound to ${hex(ch.dst)}`, { src, dst: RPMSG_AS_ADDR, len: data.length });
      }
    } else if (msg.flags === RPMSG_AS_FLAGS.FREE) {
      if (ch === undefined) this.stats.staleControl++;
      else this.setDst(ch, RPMSG_ADDR_ANY);
    } else {
      this.drop('BAD_FLAGS', `AS message with flags ${msg.flags}`, { src, dst: RPMSG_AS_ADDR, len: data.length });
    }
  }

  // ---- teardown ----------------------------------------------------------------------

  /** `linkDown`: the link was lost (not closed in order): pending and later calls fail with LINK_DOWN and this cause. */
  close(linkDown?: { cause: unknown }): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.linkDown = linkDown;
    for (const ch of [...this.channels]) this.removeChannel(ch, false);
    for (const ept of [...this.endpoints.values()]) ept.destroy();
    this.closed = true;
    for (let i = this.waitHead; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      if (w.done) continue;
      this.finishWaiter(w);
      w.fail(this.closedError(`${this.name} was closed`));
    }
    this.waiters = [];
    this.waitHead = 0;
    this.lent.clear();
    this.held.clear();
    this.transport.detach();
    this.emit('close');
  }
}

