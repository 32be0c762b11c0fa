/**
 * The two sides of a mediated device: `local` is the mediated local virtio device and
 * its driver; `remote` is the peer's driver, reached through the vhost device.
 *
 * @public
 */
export type MediatorSide = 'local' | 'remote';

/**
 * Why a {@link MediatorError} was raised. Each code names one rule the mediator
 * enforces between its two rings, so callers can switch on it.
 *
 * @public
 */
export type MediatorErrorCode =
  /** A ring of one side broke a rule of VIRTIO 1.2 §2.7; the `cause` is the `VringError` / `VhostError`. */
  | 'RING_ERROR'
  /** A chain had the wrong direction for its queue (device-writable where data was to be read, or the reverse). */
  | 'WRONG_DIRECTION'
  /** The local driver asked for a queue the device type does not have. */
  | 'NO_QUEUE'
  /** The local device could not be registered on the local bus; the `cause` says why. */
  | 'LOCAL_REGISTRATION'
  /** An operation the local device's state does not allow (e.g. findVqs while queues exist). */
  | 'BAD_STATE';

/**
 * The one error class of `@x/virtio-mediator`. The message starts with the code.
 *
 * @public
 */
export class MediatorError extends Error {
  /** Which rule was broken. */
  readonly code: MediatorErrorCode;
  /** The side whose ring or driver broke it, when there is one. */
  readonly side?: MediatorSide;

  constructor(code: MediatorErrorCode, message: string, options?: { cause?: unknown; side?: MediatorSide }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MediatorError';
    this.code = code;
    if (options?.side !== undefined) this.side = options.side;
  }
}

/**
 * Structural guard: true for any {@link MediatorError} (optionally of one code),
 * including one created by another copy of this package.
 *
 * @public
 */
export function isMediatorError(e: unknown, code?: MediatorErrorCode): e is MediatorError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'MediatorError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
