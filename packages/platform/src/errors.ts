/**
 * Why a {@link PlatformError} was raised, so callers can switch on it.
 *
 * @public
 */
export type PlatformErrorCode =
  /** A topology declaration or a name asked of a system's context is invalid. */
  | 'BAD_CONFIG'
  /** A call was made in a state that does not allow it (e.g. `start()` twice). */
  | 'BAD_STATE'
  /** Not every system reported running within the start timeout. */
  | 'START_TIMEOUT'
  /** A system threw, its worker failed or exited, or it was killed. */
  | 'SYSTEM_CRASHED'
  /** The system (or the topology) is stopping; the wait was ended by the stop. */
  | 'STOPPED'
  /** A bounded wait ran out of time. */
  | 'TIMEOUT'
  /** The caller's `AbortSignal` ended the wait. */
  | 'ABORTED'
  /** The operation cannot run in this mode (a blocking wait in the one-thread mode). */
  | 'UNSUPPORTED'
  /** The deterministic scheduler has nothing left to run and the awaited thing never happened. */
  | 'IDLE'
  /** The deterministic scheduler ran more steps than allowed (a livelock guard). */
  | 'STEP_LIMIT';

/** Options of the {@link PlatformError} constructor. @public */
export interface PlatformErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** The system the error is about, when there is one. */
  system?: string;
}

/**
 * The one error class of `@x/platform`. Its {@link PlatformError.code} says what went
 * wrong; `cause` carries the original error (for a crashed worker: a copy of the error
 * the worker threw, with its `name`, `message`, `stack` and `code`).
 *
 * @public
 */
export class PlatformError extends Error {
  /** What went wrong. */
  readonly code: PlatformErrorCode;
  /** The system the error is about, when there is one. */
  readonly system?: string;

  constructor(code: PlatformErrorCode, message: string, options?: PlatformErrorOptions) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PlatformError';
    this.code = code;
    if (options?.system !== undefined) this.system = options.system;
  }
}

/**
 * Structural guard: true for any {@link PlatformError} (optionally of one code),
 * including one created by another copy of this package or in another realm.
 *
 * @public
 */
export function isPlatformError(e: unknown, code?: PlatformErrorCode): e is PlatformError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'PlatformError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
