/// <reference types="node" preserve="true" />
import type { Duplex } from 'node:stream';
import type { RpmsgError } from './errors.js';
import type { RpmsgBuffer } from './transport.js';
import type { RpmsgVirtproc } from './virtproc.js';

/** One received message, as the async iterator yields it (a copy). @public */
export interface RpmsgMessage {
  /** The payload (a copy the consumer owns). */
  readonly data: Uint8Array;
  /** The sender's address (the header's src). */
  readonly src: number;
}

/**
 * A receive callback (Linux `rpmsg_rx_cb_t`, OpenAMP `rpmsg_ept_cb`). `data` is a view of
 * the RX buffer, valid until the callback returns unless it calls
 * {@link RpmsgEndpoint.holdRxBuffer}.
 *
 * @public
 */
export type RpmsgRxCallback = (data: Uint8Array, src: number, endpoint: RpmsgEndpoint) => void;

/** Options of the waiting send calls and of {@link RpmsgEndpoint.getTxBuffer}. @public */
export interface RpmsgSendOptions {
  /** Give up waiting for a TX buffer after this many ms. Default: the virtproc's (15 000, as Linux). */
  timeoutMs?: number;
  /** Stop waiting when this signal aborts (the call rejects with code ABORTED). */
  signal?: AbortSignal;
}

/** Counters of one endpoint. @public */
export interface RpmsgEndpointStats {
  /** Messages delivered to this endpoint. */
  rxMessages: number;
  /** Payload bytes delivered. */
  rxBytes: number;
  /** Messages sent from this endpoint. */
  txMessages: number;
  /** Payload bytes sent. */
  txBytes: number;
  /** Sends (and getTxBuffer calls) that had to wait for a free TX buffer. */
  txWaits: number;
  /** RX buffers this endpoint holds now (held by the callback, or queued for a reader). */
  rxHeld: number;
}

/** Options of {@link RpmsgEndpoint.createStream}. @public */
export interface RpmsgStreamOptions {
  /** Destroy the endpoint when the stream is destroyed or ends (like closing /dev/rpmsgN). Default false. */
  destroyEndpointOnClose?: boolean;
  /** Messages the readable side buffers as copies before it holds RX buffers instead. Default 16. */
  readableHighWaterMark?: number;
  /** Messages the writable side accepts before write() returns false. Default 16. */
  writableHighWaterMark?: number;
  /** Timeout of each send. Default: the virtproc's. */
  sendTimeoutMs?: number;
}

/**
 * An rpmsg endpoint (Linux `struct rpmsg_endpoint`, OpenAMP `struct rpmsg_endpoint`): a
 * local address with a receive callback, or — when created without one — a queue read
 * through the async iterator or a Duplex stream, one message per chunk like /dev/rpmsgN.
 *
 * A queued message keeps its RX buffer until it is read, so a reader that stops reading
 * stops the peer's sends (back-pressure), as the buffer pool is shared by every
 * endpoint of the link.
 *
 * @public
 */
export interface RpmsgEndpoint extends AsyncIterable<RpmsgMessage> {
  /** The local address (`ept->addr`). */
  readonly addr: number;
  /** The name given at creation (the channel's name for a channel's endpoint). */
  readonly name: string;
  /**
   * Default destination of {@link RpmsgEndpoint.send}: the endpoint's own, else its
   * channel's (`rpdev->dst`). RPMSG_ADDR_ANY until bound. Settable.
   */
  dst: number;
  /** The channel whose default endpoint this is, if any. */
  readonly channel: RpmsgChannel | undefined;
  /** The link this endpoint lives on. */
  readonly virtproc: RpmsgVirtproc;
  /** True once destroyed. */
  readonly destroyed: boolean;
  /** Counters. */
  readonly stats: RpmsgEndpointStats;

  /** Sends to {@link RpmsgEndpoint.dst}, waiting for a TX buffer (Linux `rpmsg_send`). */
  send(data: Uint8Array | string, options?: RpmsgSendOptions): Promise<void>;
  /** Sends to `dst`, waiting for a TX buffer (Linux `rpmsg_sendto`). */
  sendTo(data: Uint8Array | string, dst: number, options?: RpmsgSendOptions): Promise<void>;
  /** Sends from `src` to `dst`, waiting for a TX buffer (Linux `rpmsg_send_offchannel`). */
  sendOffchannel(src: number, dst: number, data: Uint8Array | string, options?: RpmsgSendOptions): Promise<void>;
  /** Sends to {@link RpmsgEndpoint.dst} or throws NO_BUFFER at once (Linux `rpmsg_trysend`). */
  trySend(data: Uint8Array | string): void;
  /** Sends to `dst` or throws NO_BUFFER at once (Linux `rpmsg_trysendto`). */
  trySendTo(data: Uint8Array | string, dst: number): void;
  /** Sends from `src` to `dst` or throws NO_BUFFER at once (Linux `rpmsg_trysend_offchannel`). */
  trySendOffchannel(src: number, dst: number, data: Uint8Array | string): void;

  /**
   * Zero copy: waits for a TX buffer and lends it (OpenAMP `rpmsg_get_tx_payload_buffer`
   * with wait). Fill `payload`, then {@link RpmsgEndpoint.sendNoCopy} or
   * {@link RpmsgEndpoint.releaseTxBuffer}.
   */
  getTxBuffer(options?: RpmsgSendOptions): Promise<RpmsgBuffer>;
  /** Zero copy: lends a TX buffer, or returns undefined at once when none is free. */
  tryGetTxBuffer(): RpmsgBuffer | undefined;
  /** Sends `len` payload bytes of a lent buffer to {@link RpmsgEndpoint.dst} (OpenAMP `rpmsg_send_nocopy`). */
  sendNoCopy(buf: RpmsgBuffer, len: number): void;
  /** Sends `len` payload bytes of a lent buffer to `dst` (OpenAMP `rpmsg_sendto_nocopy`). */
  sendToNoCopy(buf: RpmsgBuffer, len: number, dst: number): void;
  /** Gives back a lent TX buffer unsent (OpenAMP `rpmsg_release_tx_buffer`). */
  releaseTxBuffer(buf: RpmsgBuffer): void;
  /**
   * Inside the receive callback: keep the RX buffer behind `data` after the callback
   * returns (OpenAMP `rpmsg_hold_rx_buffer`). The peer cannot reuse it until
   * {@link RpmsgEndpoint.releaseRxBuffer}.
   */
  holdRxBuffer(data: Uint8Array): void;
  /** Gives back an RX buffer kept with holdRxBuffer (OpenAMP `rpmsg_release_rx_buffer`). */
  releaseRxBuffer(data: Uint8Array): void;

  /** Reads messages until the endpoint is destroyed (one reader at a time; none if a callback is set). */
  messages(options?: { signal?: AbortSignal }): AsyncIterableIterator<RpmsgMessage>;
  /** Same as {@link RpmsgEndpoint.messages} without options. */
  [Symbol.asyncIterator](): AsyncIterableIterator<RpmsgMessage>;
  /**
   * A Duplex stream in object mode: each written Uint8Array / string is one message to
   * {@link RpmsgEndpoint.dst}; each chunk read is one received payload (a Buffer).
   * Writes wait for TX buffers, so write() returns false when the link is full.
   */
  createStream(options?: RpmsgStreamOptions): Duplex;
  /** Removes the endpoint (Linux `rpmsg_destroy_ept`): releases held buffers, ends readers, fails its waiting sends with CLOSED. */
  destroy(): void;
}

/** Name and addresses of a channel (Linux `struct rpmsg_channel_info`). @public */
export interface RpmsgChannelInfo {
  /** Channel name, at most 31 UTF-8 bytes. */
  name: string;
  /** Local address; RPMSG_ADDR_ANY (default) lets the core allocate one from 1024 up. */
  src?: number;
  /** Remote address; RPMSG_ADDR_ANY (default) until bound by NS / AS. */
  dst?: number;
}

/**
 * An rpmsg channel (Linux `struct rpmsg_device`): a name and a pair of addresses,
 * matched to an {@link RpmsgDriver} by name. Created locally
 * ({@link RpmsgVirtproc.createChannel}) or by the peer's NS announcement.
 *
 * @public
 */
export interface RpmsgChannel {
  /** The name drivers match on. */
  readonly name: string;
  /** Local address: the default endpoint's once a driver probed. */
  readonly src: number;
  /** Remote address; RPMSG_ADDR_ANY until bound (NS, AS ASSIGN, or a first message). */
  readonly dst: number;
  /** `local` (created on this side) or `remote` (created by the peer's NS CREATE). */
  readonly origin: 'local' | 'remote';
  /** This side announces the channel to the peer (Linux `rpdev->announce`). */
  readonly announce: boolean;
  /** The driver bound to it, if any. */
  readonly driver: RpmsgDriver | undefined;
  /** The default endpoint (`rpdev->ept`), created at probe when the driver has a callback. */
  readonly endpoint: RpmsgEndpoint | undefined;
  /** The link it lives on. */
  readonly virtproc: RpmsgVirtproc;
  /** True once removed. */
  readonly removed: boolean;
  /** Driver-private data (Linux `dev_set_drvdata`). */
  data: unknown;
}

/**
 * An rpmsg driver (Linux `struct rpmsg_driver`): matched to channels by name. At probe
 * the core creates the channel's default endpoint (when `callback` is given), calls
 * `probe`, then announces the channel if it should.
 *
 * @public
 */
export interface RpmsgDriver {
  /** Driver name, for messages. */
  readonly name: string;
  /** Channel names this driver serves (Linux `id_table`). */
  readonly idTable: readonly string[];
  /** A channel was bound; throw to refuse it. */
  probe?(channel: RpmsgChannel): void;
  /** The channel is going away (or the driver is unregistered). */
  remove?(channel: RpmsgChannel): void;
  /** Receive callback of the channel's default endpoint. */
  callback?(channel: RpmsgChannel, data: Uint8Array, src: number): void;
}

/** Options of {@link RpmsgVirtproc.createEndpoint} (Linux rpmsg_ctrl `struct rpmsg_endpoint_info` plus a callback). @public */
export interface RpmsgEndpointOptions {
  /** A name for the endpoint (informational, like rpmsg_ctrl's). Default "". */
  name?: string;
  /** Local address; RPMSG_ADDR_ANY (default) allocates one from 1024 up. */
  src?: number;
  /** Default destination. Default RPMSG_ADDR_ANY. */
  dst?: number;
  /** Receive callback. Without one, messages queue for the iterator or the stream. */
  callback?: RpmsgRxCallback;
}

/** Options of {@link RpmsgVirtproc}. @public */
export interface RpmsgVirtprocOptions {
  /** A name for messages and traces. Default "virtproc". */
  name?: string;
  /** Which side of the link this is: `driver` (virtio) or `device` (vhost). Default `driver`. */
  role?: 'driver' | 'device';
  /** How long waiting sends wait for a TX buffer. Default 15 000 ms (Linux). */
  sendTimeoutMs?: number;
  /** Deliver messages whose len is 0 (Linux does; default false drops them as BAD_LENGTH). */
  acceptEmptyMessages?: boolean;
  /**
   * An endpoint whose destination is RPMSG_ADDR_ANY takes the source of the first
   * message it receives as its destination (OpenAMP `rpmsg_virtio_rx_callback`).
   * Default: true for the device role, false for the driver role (Linux).
   */
  bindOnFirstMessage?: boolean;
}

/** Options of `RpmsgVirtproc.close`. @public */
export interface RpmsgCloseOptions {
  /**
   * The link was lost rather than closed in order: `true`, or the transport's error
   * (kept as the `cause`). Waiting sends, and every later call on the virtproc and the
   * endpoints this close destroys, then fail with `LINK_DOWN` instead of `CLOSED`.
   */
  linkDown?: unknown;
}

/** Counters of one virtproc. @public */
export interface RpmsgVirtprocStats {
  /** Messages delivered to an endpoint. */
  rxMessages: number;
  /** Payload bytes delivered. */
  rxBytes: number;
  /** Messages sent. */
  txMessages: number;
  /** Payload bytes sent. */
  txBytes: number;
  /** Sends that had to wait for a TX buffer. */
  txWaits: number;
  /** Received messages dropped (each also reported as a `dropped` event). */
  dropped: number;
  /** Dropped messages by code. */
  drops: Partial<Record<RpmsgError['code'], number>>;
  /** NS DESTROY / AS FREE messages for channels already gone (normal during teardown; not reported). */
  staleControl: number;
}

/** Events of {@link RpmsgVirtproc}, as listener argument tuples. @public */
export interface RpmsgVirtprocEvents {
  /** A channel was created (locally or by the peer's NS CREATE). */
  channel: [channel: RpmsgChannel];
  /** A channel was removed. */
  channelRemoved: [channel: RpmsgChannel];
  /** A channel's remote address changed (bound by NS / AS / first message, or reset to ANY). */
  channelDst: [channel: RpmsgChannel, dst: number];
  /** A received message was dropped; the RX buffer was returned. */
  dropped: [error: RpmsgError];
  /** Something went wrong that is not a dropped message (a callback threw, an announcement could not be sent). */
  warning: [error: RpmsgError];
  /** The virtproc was closed. */
  close: [];
}
