/**
 * Why an {@link NtbError} was raised. Each code names one rule of the NTB hardware
 * interface (Linux `include/linux/ntb.h`), of the RFC's scratchpad protocol
 * (rfc-protocol §2.6) or of the NTB endpoint-function control region (§2.11).
 *
 * @public
 */
export type NtbErrorCode =
  /** An {@link NtbDevOps} table failed validation (Linux `ntb_dev_ops_is_valid`). */
  | 'INVALID_OPS'
  /** The link is down, or went down while the operation waited. */
  | 'LINK_DOWN'
  /** The peer host (or the bridge) stopped: its worker crashed, exited or was killed. */
  | 'PEER_DOWN'
  /** A command, a handshake step or the hardware did not answer in time. */
  | 'TIMEOUT'
  /** A memory-window translation breaks the window's alignment or size limits (`mw_get_align`), or lies outside memory. */
  | 'BAD_WINDOW'
  /** A scratchpad index outside `spad_count`. */
  | 'BAD_SPAD'
  /** Doorbell bits outside the valid mask, or a vector that does not exist. */
  | 'BAD_DOORBELL'
  /** The peer answered a command with ERROR (rfc-protocol §2.2 / §2.11 command status). */
  | 'COMMAND_FAILED'
  /** A value the peer wrote breaks the protocol (a type word, a queue size, a window size). */
  | 'PROTOCOL'
  /** Not enough memory: the DMA region, the memory window below BUFFER_OFFSET, a BAR. */
  | 'NO_MEMORY'
  /** A link description (shared buffers and sizes) is malformed or of another version. */
  | 'BAD_LINK'
  /** A second context, client or side on something that takes only one. */
  | 'BUSY'
  /** The object was closed. */
  | 'CLOSED'
  /** The caller's AbortSignal ended the wait. */
  | 'ABORTED';

/**
 * The one error class of `@x/transport-ntb`, with a {@link NtbErrorCode} and an optional
 * `cause`.
 *
 * @public
 */
export class NtbError extends Error {
  /** Which rule was broken. */
  readonly code: NtbErrorCode;

  constructor(code: NtbErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NtbError';
    this.code = code;
  }
}

/**
 * Structural guard: true for any {@link NtbError} (also one made by another copy of
 * this package, or one that crossed a worker boundary as plain data with its `name` and
 * `code`), optionally of one `code`.
 *
 * @public
 */
export function isNtbError(e: unknown, code?: NtbErrorCode): e is NtbError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'NtbError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
