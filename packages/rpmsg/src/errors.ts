/**
 * Why an {@link RpmsgError} was raised or a received message was dropped. Send-side
 * codes mirror the errno values Linux `virtio_rpmsg_bus.c` returns; receive-side codes
 * name the rule a message from the other side broke (it is hostile input).
 *
 * @public
 */
export type RpmsgErrorCode =
  /** No TX buffer was free and the call does not wait (Linux `rpmsg_trysend*` → -ENOMEM). */
  | 'NO_BUFFER'
  /** No TX buffer became free in time (Linux `rpmsg_send*` after 15 s → -ERESTARTSYS). */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired while the call waited. */
  | 'ABORTED'
  /** The endpoint, channel or virtproc was closed or destroyed. */
  | 'CLOSED'
  /**
   * The link to the other side was lost (an NTB link down, a surprise removal): the
   * virtproc went away under the call. `cause` is the transport's error (e.g. the NTB
   * transport's `LINK_DOWN`). Nothing was sent; after the link comes back up a new
   * virtproc carries traffic (Linux: the rpmsg device is removed, sends fail -ENODEV).
   */
  | 'LINK_DOWN'
  /** A source or destination address is RPMSG_ADDR_ANY where a real address is needed (Linux -EINVAL). */
  | 'BAD_ADDRESS'
  /** The requested local address already has an endpoint (Linux idr_alloc -ENOSPC). */
  | 'ADDRESS_IN_USE'
  /** No free address is left in the endpoint address space. */
  | 'ADDRESSES_EXHAUSTED'
  /** The TX buffer the peer gave is smaller than this message (the peer posted short buffers). */
  | 'BUFFER_TOO_SMALL'
  /** A zero-copy buffer was not lent by this virtproc, or was already sent or released. */
  | 'INVALID_BUFFER'
  /** Busy: a second link of a configured channel, a second consumer of an endpoint, or an AS ASSIGN for a channel already bound (RFC patch 9 / 10: -EBUSY). */
  | 'BUSY'
  /** A channel with the same name, source and destination already exists. */
  | 'CHANNEL_EXISTS'
  /** The named channel, item or endpoint does not exist. */
  | 'NOT_FOUND'
  /** The operation needs a feature bit (VIRTIO_RPMSG_F_NS / _AS) that was not negotiated. */
  | 'FEATURE_NOT_NEGOTIATED'
  /** A received buffer is shorter than the 16-byte rpmsg header. */
  | 'TRUNCATED'
  /** A received header's len is zero, exceeds the used length − 16, or the buffer is larger than the RX buffer size. */
  | 'BAD_LENGTH'
  /** A received message names a destination address with no endpoint. */
  | 'NO_ENDPOINT'
  /** A name-service or address-service message has the wrong size (NS is 40 bytes, AS 44). */
  | 'MALFORMED'
  /** A name in an NS or AS message has no NUL terminator within its 32 bytes. */
  | 'NAME_UNTERMINATED'
  /** An AS message's flags are neither ASSIGN nor FREE. */
  | 'BAD_FLAGS'
  /** An AS message names a channel (name, local address) this side does not have. */
  | 'NO_CHANNEL'
  /** An endpoint or driver callback threw; the message counts as delivered and the buffer was returned. */
  | 'CALLBACK_FAILED'
  /** A driver's probe threw; the channel stays without a driver. */
  | 'PROBE_FAILED'
  /** The transport's ring broke (a `VringError` is the cause); the link needs a reset. */
  | 'RING_ERROR';

/**
 * The one error class of `@x/rpmsg`. Anything a call cannot do, and every message the
 * other side sent that breaks a rule, is an `RpmsgError` with an {@link RpmsgErrorCode}.
 * Dropped messages also carry the header fields that could be read.
 *
 * @public
 */
export class RpmsgError extends Error {
  /** What went wrong. */
  readonly code: RpmsgErrorCode;
  /** For a received message: its header's source address, when it could be read. */
  readonly src?: number;
  /** For a received message: its header's destination address, when it could be read. */
  readonly dst?: number;
  /** For a received message: the header's len field, or the used length for TRUNCATED. */
  readonly len?: number;

  constructor(
    code: RpmsgErrorCode,
    message: string,
    options?: { cause?: unknown; src?: number; dst?: number; len?: number },
  ) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RpmsgError';
    this.code = code;
    if (options?.src !== undefined) this.src = options.src;
    if (options?.dst !== undefined) this.dst = options.dst;
    if (options?.len !== undefined) this.len = options.len;
  }
}

/**
 * Structural guard: true for any {@link RpmsgError} (also one created by another copy
 * of this package), optionally of one `code`.
 *
 * @public
 */
export function isRpmsgError(e: unknown, code?: RpmsgErrorCode): e is RpmsgError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'RpmsgError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
