import { Buffer } from 'node:buffer';
import { Duplex } from 'node:stream';
import type {
  RpmsgEndpoint,
  RpmsgEndpointStats,
  RpmsgMessage,
  RpmsgRxCallback,
  RpmsgSendOptions,
  RpmsgStreamOptions,
} from '../api.js';
import { RpmsgError } from '../errors.js';
import type { RpmsgBuffer } from '../transport.js';
import type { RpmsgVirtproc } from '../virtproc.js';
import { RPMSG_ADDR_ANY, RPMSG_HDR } from '../wire.js';
import type { ChannelImpl } from './channel.js';
import { checkAddr, payloadLength, type Core, type Payload } from './core.js';

const RESOLVED: Promise<void> = Promise.resolve();

/** A queued message: a held RX buffer, or a copy once the buffer had to go back. */
interface QueuedMessage {
  buf: RpmsgBuffer | undefined;
  data: Uint8Array;
  readonly src: number;
}

type Reader = { resolve(r: IteratorResult<RpmsgMessage>): void; reject(e: unknown): void };

/**
 * NO_BUFFER is an expected outcome of a streaming trySend (the ring is full; Linux
 * returns -ENOMEM), thrown once per burst: build it without a stack trace, which costs
 * more than the send itself (≈ 15 % of a polling sender's time in the two-worker bench).
 */
function noBufferError(): RpmsgError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RpmsgError('NO_BUFFER', 'no TX buffer is free');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The one implementation of {@link RpmsgEndpoint} (Linux `struct rpmsg_endpoint`).
 * Without a callback, messages queue with their RX buffers held until a reader (the
 * async iterator or the Duplex stream) takes them: that is the back-pressure.
 */
export class EndpointImpl implements RpmsgEndpoint {
  readonly addr: number;
  readonly name: string;
  readonly channel: ChannelImpl | undefined;
  readonly stats: RpmsgEndpointStats = { rxMessages: 0, rxBytes: 0, txMessages: 0, txBytes: 0, txWaits: 0, rxHeld: 0 };
  destroyed = false;
  /** The link-down record of the virtproc close that destroyed this endpoint, if that is what did. */
  private lostLink: { cause: unknown } | undefined;
  private readonly core: Core;
  private readonly callback: RpmsgRxCallback | undefined;
  private readonly autoBind: boolean;
  private ownDst: number;
  private readonly queue: QueuedMessage[] = [];
  private qHead = 0;
  private consumer: 'iterator' | EndpointStream | undefined;
  private readers: Reader[] = [];

  constructor(core: Core, addr: number, name: string, dst: number, channel: ChannelImpl | undefined, callback: RpmsgRxCallback | undefined, autoBind: boolean) {
    this.core = core;
    this.addr = addr;
    this.name = name;
    this.ownDst = dst;
    this.channel = channel;
    this.callback = callback;
    this.autoBind = autoBind;
  }

  get virtproc(): RpmsgVirtproc {
    return this.core.facade;
  }

  get dst(): number {
    if (this.ownDst !== RPMSG_ADDR_ANY || this.channel === undefined) return this.ownDst;
    return this.channel.dst;
  }

  set dst(v: number) {
    checkAddr('dst', v, true);
    if (this.channel !== undefined && !this.channel.removed) {
      this.ownDst = RPMSG_ADDR_ANY;
      this.core.setDst(this.channel, v);
    } else {
      this.ownDst = v;
    }
  }

  // ---- RX ----------------------------------------------------------------------------

  /** Called by the core for a well-formed message to this address; true = buffer retained. */
  deliver(buf: RpmsgBuffer, data: Uint8Array, src: number): boolean {
    this.stats.rxMessages++;
    this.stats.rxBytes += data.length;
    if (this.autoBind && this.dst === RPMSG_ADDR_ANY) this.dst = src;
    if (this.callback !== undefined) return this.core.runCallback(this, this.callback, buf, data, src);
    // A waiting reader takes a copy now and the buffer goes straight back.
    const reader = this.readers.shift();
    if (reader !== undefined) {
      reader.resolve({ value: { data: data.slice(), src }, done: false });
      return false;
    }
    const stream = this.consumer instanceof EndpointStream ? this.consumer : undefined;
    if (stream !== undefined && stream.wantRead && this.queued === 0) {
      stream.wantRead = stream.push(Buffer.from(data));
      return false;
    }
    this.queue.push({ buf, data, src });
    this.stats.rxHeld++;
    return true;
  }

  private get queued(): number {
    return this.queue.length - this.qHead;
  }

  /** Takes the oldest queued message as a copy and gives its RX buffer back. */
  private takeQueued(): QueuedMessage | undefined {
    if (this.qHead >= this.queue.length) return undefined;
    const m = this.queue[this.qHead]!;
    this.queue[this.qHead] = undefined as unknown as QueuedMessage;
    this.qHead++;
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    } else if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue.splice(0, this.qHead);
      this.qHead = 0;
    }
    if (m.buf !== undefined) {
      const buf = m.buf;
      m.data = m.data.slice();
      m.buf = undefined;
      this.stats.rxHeld--;
      this.core.transport.releaseRxBuffer(buf);
    }
    return m;
  }

  holdRxBuffer(data: Uint8Array): void {
    this.core.holdRx(this, data);
  }

  releaseRxBuffer(data: Uint8Array): void {
    this.core.releaseRx(this, data);
  }

  private claim(consumer: 'iterator' | EndpointStream): void {
    if (this.callback !== undefined) throw new RpmsgError('BUSY', `endpoint 0x${this.addr.toString(16)} delivers to its callback`);
    if (this.consumer !== undefined) throw new RpmsgError('BUSY', `endpoint 0x${this.addr.toString(16)} already has a reader`);
    this.consumer = consumer;
  }

  /** @internal Called when a reader goes away. */
  unclaim(consumer: 'iterator' | EndpointStream): void {
    if (this.consumer === consumer) this.consumer = undefined;
  }

  messages(options?: { signal?: AbortSignal }): AsyncIterableIterator<RpmsgMessage> {
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
    this.claim('iterator');
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener('abort', onAbort);
      this.unclaim('iterator');
      const readers = this.readers;
      this.readers = [];
      for (const r of readers) r.resolve({ value: undefined, done: true });
    };
    const onAbort = (): void => {
      const readers = this.readers;
      this.readers = [];
      finish();
      const err = new RpmsgError('ABORTED', 'the reader was aborted', { cause: signal?.reason });
      for (const r of readers) r.reject(err);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const it: AsyncIterableIterator<RpmsgMessage> = {
      next: (): Promise<IteratorResult<RpmsgMessage>> => {
        if (signal?.aborted) {
          finish();
          return Promise.reject(new RpmsgError('ABORTED', 'the reader was aborted', { cause: signal.reason }));
        }
        if (finished) return Promise.resolve({ value: undefined, done: true });
        const m = this.takeQueued();
        if (m !== undefined) return Promise.resolve({ value: { data: m.data, src: m.src }, done: false });
        if (this.destroyed) {
          finish();
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
      },
      return: (): Promise<IteratorResult<RpmsgMessage>> => {
        finish();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    if (signal?.aborted) onAbort();
    return it;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<RpmsgMessage> {
    return this.messages();
  }

  createStream(options: RpmsgStreamOptions = {}): Duplex {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const s = new EndpointStream(this, options);
    this.claim(s);
    if (this.destroyed) s.flushFrom();
    return s;
  }

  /** @internal Feeds the stream while it wants data; ends it after the endpoint is gone. */
  feed(s: EndpointStream): void {
    while (s.wantRead) {
      const m = this.takeQueued();
      if (m === undefined) break;
      s.wantRead = s.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length));
    }
    if (this.destroyed && this.queued === 0 && !s.ended) {
      s.ended = true;
      s.push(null);
    }
  }

  // ---- TX ----------------------------------------------------------------------------

  private checkSend(src: number, dst: number, data: Payload): void {
    if (this.destroyed) throw this.goneError();
    this.core.checkOpen();
    checkAddr('src', src, false);
    checkAddr('dst', dst, false);
    payloadLength(data, this.core.maxPayload);
  }

  send(data: Payload, options?: RpmsgSendOptions): Promise<void> {
    return this.sendOffchannel(this.addr, this.dst, data, options);
  }

  sendTo(data: Payload, dst: number, options?: RpmsgSendOptions): Promise<void> {
    return this.sendOffchannel(this.addr, dst, data, options);
  }

  sendOffchannel(src: number, dst: number, data: Payload, options?: RpmsgSendOptions): Promise<void> {
    const core = this.core;
    try {
      this.checkSend(src, dst, data);
      const buf = core.tryTxBuffer();
      if (buf !== undefined) {
        core.transmit(this, buf, src, dst, data);
        return RESOLVED;
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      try {
        core.waitTx(
          this,
          options,
          (b) => {
            try {
              core.transmit(this, b, src, dst, data);
              resolve();
            } catch (e) {
              reject(e);
            }
          },
          reject,
        );
      } catch (e) {
        reject(e);
      }
    });
  }

  trySend(data: Payload): void {
    this.trySendOffchannel(this.addr, this.dst, data);
  }

  trySendTo(data: Payload, dst: number): void {
    this.trySendOffchannel(this.addr, dst, data);
  }

  trySendOffchannel(src: number, dst: number, data: Payload): void {
    this.checkSend(src, dst, data);
    const buf = this.core.tryTxBuffer();
    if (buf === undefined) throw noBufferError();
    this.core.transmit(this, buf, src, dst, data);
  }

  getTxBuffer(options?: RpmsgSendOptions): Promise<RpmsgBuffer> {
    const core = this.core;
    try {
      const buf = this.tryGetTxBuffer();
      if (buf !== undefined) return Promise.resolve(buf);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<RpmsgBuffer>((resolve, reject) => {
      try {
        core.waitTx(
          this,
          options,
          (b) => {
            if (this.destroyed) {
              core.releaseTx(b);
              reject(this.goneError());
              return;
            }
            core.lent.add(b);
            resolve(b);
          },
          reject,
        );
      } catch (e) {
        reject(e);
      }
    });
  }

  tryGetTxBuffer(): RpmsgBuffer | undefined {
    if (this.destroyed) throw this.goneError();
    const buf = this.core.tryTxBuffer();
    if (buf !== undefined) this.core.lent.add(buf);
    return buf;
  }

  sendNoCopy(buf: RpmsgBuffer, len: number): void {
    this.sendToNoCopy(buf, len, this.dst);
  }

  sendToNoCopy(buf: RpmsgBuffer, len: number, dst: number): void {
    const core = this.core;
    if (!core.lent.has(buf)) throw new RpmsgError('INVALID_BUFFER', 'this buffer was not lent by getTxBuffer, or was already sent or released');
    if (typeof len !== 'number') throw new TypeError('len must be a number');
    if (!Number.isInteger(len) || len < 0 || len > buf.bytes.length - RPMSG_HDR.SIZE) {
      throw new RangeError(`len must be an integer in 0..${buf.bytes.length - RPMSG_HDR.SIZE}, got ${len}`);
    }
    if (this.destroyed) throw this.goneError();
    checkAddr('dst', dst, false);
    core.lent.delete(buf);
    let sent = false;
    try {
      core.sendFilled(this, buf, this.addr, dst, len);
      sent = true;
    } finally {
      if (!sent) core.releaseTx(buf);
    }
  }

  releaseTxBuffer(buf: RpmsgBuffer): void {
    if (!this.core.lent.delete(buf)) throw new RpmsgError('INVALID_BUFFER', 'this buffer was not lent by getTxBuffer, or was already sent or released');
    this.core.releaseTx(buf);
  }

  // ---- teardown ----------------------------------------------------------------------

  /** The error of a call on this endpoint once destroyed: LINK_DOWN when its virtproc lost the link, else CLOSED. */
  goneError(): RpmsgError {
    const what = `endpoint 0x${this.addr.toString(16)} was destroyed`;
    const d = this.lostLink;
    return d === undefined ? new RpmsgError('CLOSED', what) : new RpmsgError('LINK_DOWN', `${what}: the link went down`, { cause: d.cause });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    // Destroyed by its virtproc's close for a lost link (not by its owner): say so from now on.
    this.lostLink = this.core.linkDown;
    // Queued messages stay readable as copies; their buffers go back now.
    for (let i = this.qHead; i < this.queue.length; i++) {
      const m = this.queue[i]!;
      if (m.buf !== undefined) {
        const buf = m.buf;
        m.data = m.data.slice();
        m.buf = undefined;
        this.stats.rxHeld--;
        this.core.transport.releaseRxBuffer(buf);
      }
    }
    this.core.removeEndpoint(this);
    this.stats.rxHeld = 0;
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) r.resolve({ value: undefined, done: true });
    if (this.consumer instanceof EndpointStream) this.feed(this.consumer);
  }

  toString(): string {
    return `rpmsg endpoint 0x${this.addr.toString(16)}`;
  }
}

/**
 * The Duplex face of an endpoint (like /dev/rpmsgN): object mode, one message per
 * chunk. Writes go out with the endpoint's waiting send, so the writable side fills up
 * when the link has no TX buffer; the readable side holds RX buffers past its
 * high-water mark, so an idle reader throttles the peer.
 */
export class EndpointStream extends Duplex {
  wantRead = false;
  ended = false;
  private readonly ept: EndpointImpl;
  private readonly ac = new AbortController();
  private readonly destroyOnClose: boolean;
  private readonly timeoutMs: number | undefined;

  constructor(ept: EndpointImpl, options: RpmsgStreamOptions) {
    super({
      readableObjectMode: true,
      writableObjectMode: true,
      readableHighWaterMark: options.readableHighWaterMark ?? 16,
      writableHighWaterMark: options.writableHighWaterMark ?? 16,
      allowHalfOpen: true,
    });
    this.ept = ept;
    this.destroyOnClose = options.destroyEndpointOnClose ?? false;
    this.timeoutMs = options.sendTimeoutMs;
  }

  /** Pulls what is queued (used when the endpoint is already gone at creation). */
  flushFrom(): void {
    this.ept.feed(this);
  }

  override _read(): void {
    this.wantRead = true;
    this.ept.feed(this);
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
      callback(new TypeError('each chunk must be a Uint8Array or a string (one message)'));
      return;
    }
    const options: RpmsgSendOptions = { signal: this.ac.signal };
    if (this.timeoutMs !== undefined) options.timeoutMs = this.timeoutMs;
    this.ept.send(chunk, options).then(
      () => callback(),
      (e: unknown) => callback(e as Error),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.ac.abort();
    this.ept.unclaim(this);
    if (this.destroyOnClose) this.ept.destroy();
    callback(error);
  }
}
