/**
 * Why a {@link LoopbackError} was raised. Each code names one rule of the loopback
 * wire (virtio-mmio registers, VIRTIO 1.2 §4.2.2, plus the doorbell page), so callers
 * can switch on it.
 *
 * @public
 */
export type LoopbackErrorCode =
  /** The other side did not acknowledge a register write, or did not appear, in time. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired while waiting. */
  | 'ABORTED'
  /** The device side is not attached to the link (never was, or closed). */
  | 'NO_DEVICE'
  /** `MagicValue` does not read 0x74726976 ("virt", VIRTIO 1.2 §4.2.2). */
  | 'BAD_MAGIC'
  /** `Version` does not read 2 (the non-legacy interface, VIRTIO 1.2 §4.2.2). */
  | 'BAD_VERSION'
  /** A register read a value that breaks virtio-mmio (e.g. QueueNumMax above 32768, a queue live before setup). */
  | 'BAD_REGISTER'
  /** The selected queue does not exist (`QueueNumMax` reads 0, VIRTIO 1.2 §4.2.3.2). */
  | 'NO_QUEUE'
  /** The device did not set `QueueReady` after the driver wrote 1: it refused the ring. */
  | 'QUEUE_REFUSED'
  /** That side of the link is already attached (one driver and one device per link). */
  | 'ALREADY_ATTACHED'
  /** The transport was closed. */
  | 'CLOSED';

/**
 * The one error class of `@x/transport-loopback`. The message starts with the code.
 *
 * @public
 */
export class LoopbackError extends Error {
  /** Which rule was broken. */
  readonly code: LoopbackErrorCode;

  constructor(code: LoopbackErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LoopbackError';
    this.code = code;
  }
}

/**
 * Structural guard: true for any {@link LoopbackError} (optionally of one code),
 * including one created by another copy of this package.
 *
 * @public
 */
export function isLoopbackError(e: unknown, code?: LoopbackErrorCode): e is LoopbackError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'LoopbackError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
