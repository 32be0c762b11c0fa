/**
 * Why a {@link VringError} was raised. Each code names one rule of VIRTIO 1.2 §2.7 or
 * one memory-access rule, so callers can switch on it.
 *
 * @public
 */
export type VringErrorCode =
  /** An access fell outside every mapping of a {@link GuestMemory} (a bus error). */
  | 'BUS_ERROR'
  /** A 16/32-bit atomic index access at an address that is not naturally aligned. */
  | 'MISALIGNED'
  /** A 64-bit value read from memory is above 2^53−1 and cannot be a JS number. */
  | 'VALUE_RANGE'
  /** A descriptor's buffer lies outside the device's view of memory. */
  | 'ADDRESS_OUT_OF_RANGE'
  /** The avail ring named a head index ≥ the queue size. */
  | 'HEAD_OUT_OF_RANGE'
  /** A descriptor's `next` is ≥ the queue size (or ≥ the indirect table length). */
  | 'NEXT_OUT_OF_RANGE'
  /** Following `next` visited more descriptors than the table holds (§2.7.5.2). */
  | 'DESC_LOOP'
  /** A chain has more segments than the receiving iov can hold. */
  | 'CHAIN_TOO_LONG'
  /** The chain's total length exceeds 2^32 bytes (§2.7.5.2). */
  | 'LEN_OVERFLOW'
  /** A device-readable descriptor follows a device-writable one (§2.7.4.2). */
  | 'READABLE_AFTER_WRITABLE'
  /** An indirect table contains another INDIRECT descriptor (§2.7.5.3.1). */
  | 'NESTED_INDIRECT'
  /** A descriptor has both INDIRECT and NEXT set (§2.7.5.3.1). */
  | 'INDIRECT_WITH_NEXT'
  /** An indirect descriptor's length is zero or not a multiple of 16 (§2.7.5.3). */
  | 'INDIRECT_BAD_LEN'
  /** An INDIRECT descriptor was used but VIRTIO_RING_F_INDIRECT_DESC was not negotiated. */
  | 'INDIRECT_NOT_NEGOTIATED'
  /** avail.idx moved by more than the queue size since the device last looked (§2.7.6). */
  | 'AVAIL_IDX_JUMP'
  /** used.idx moved by more than the number of buffers in flight. */
  | 'USED_IDX_JUMP'
  /** The used ring returned an id that is not the head of a buffer in flight. */
  | 'BAD_USED_ID'
  /** The used ring reported more bytes written than the buffer's writable length. */
  | 'USED_LEN_INVALID'
  /** The queue was marked broken by an earlier error and refuses further work. */
  | 'BROKEN'
  /** A ring layout violates the alignment or size rules of §2.7. */
  | 'BAD_LAYOUT';

/**
 * The one error class of `@x/vring`. Anything read from memory the other side writes
 * that breaks a rule of the ring raises a `VringError` with a {@link VringErrorCode}.
 *
 * @public
 */
export class VringError extends Error {
  /** Which rule was broken. */
  readonly code: VringErrorCode;
  /**
   * For `USED_LEN_INVALID` only: the token of the buffer that was detached, so the
   * caller can still reclaim it.
   */
  readonly token?: unknown;

  constructor(code: VringErrorCode, message: string, options?: { cause?: unknown; token?: unknown }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VringError';
    this.code = code;
    if (options?.token !== undefined) this.token = options.token;
  }
}

/**
 * Structural guard: true for any {@link VringError}, including one created by another
 * copy of this package.
 *
 * @public
 */
export function isVringError(e: unknown, code?: VringErrorCode): e is VringError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'VringError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
