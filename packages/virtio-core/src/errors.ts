/**
 * Why a {@link VirtioError} was raised. Each code names one rule of VIRTIO 1.2 §2–§3
 * or one rule of the transport contract, so callers can switch on it.
 *
 * @public
 */
export type VirtioErrorCode =
  /** A transport's {@link VirtioConfigOps} failed validation at registration. */
  | 'INVALID_OPS'
  /** The device or driver is already registered on a bus. */
  | 'ALREADY_REGISTERED'
  /** The device or driver is not registered (or was unregistered). */
  | 'NOT_REGISTERED'
  /** A feature the device did not offer was to be accepted (§2.2.1). */
  | 'FEATURES_NOT_OFFERED'
  /** The device cleared FEATURES_OK after the driver set it (§3.1.1 step 6). */
  | 'FEATURES_NOT_ACCEPTED'
  /** A status write that §2.1 / §3.1.1 forbids: out of order, clearing a bit, a device-only bit. */
  | 'BAD_STATUS_TRANSITION'
  /** An operation that the current device status does not allow (e.g. findVqs before FEATURES_OK). */
  | 'BAD_STATE'
  /** The driver set FAILED; nothing but a reset is accepted. */
  | 'DEVICE_FAILED'
  /** The device set DEVICE_NEEDS_RESET (§2.1.2), or keeps setting it after recovery. */
  | 'NEEDS_RESET'
  /** The configuration generation kept changing for every allowed retry (§2.5.1). */
  | 'CONFIG_UNSTABLE'
  /** The buffer pool (the transport's, or core's over the DMA region) is exhausted. */
  | 'NO_BUFFER_SPACE'
  /** A buffer that this device did not allocate, or that was already freed. */
  | 'BAD_BUFFER'
  /** A driver callback (validate, probe, remove, configChanged, a queue callback) threw. */
  | 'DRIVER_ERROR'
  /** A transport op did not answer within the bus's `opTimeoutMs`. */
  | 'TIMEOUT'
  /** A transport op threw, or answered with a value that breaks the contract. */
  | 'TRANSPORT';

/**
 * The one error class of `@x/virtio-core`. The message starts with the code.
 *
 * @public
 */
export class VirtioError extends Error {
  /** Which rule was broken. */
  readonly code: VirtioErrorCode;

  constructor(code: VirtioErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VirtioError';
    this.code = code;
  }
}

/**
 * Structural guard: true for any {@link VirtioError} (optionally of one code),
 * including one created by another copy of this package.
 *
 * @public
 */
export function isVirtioError(e: unknown, code?: VirtioErrorCode): e is VirtioError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'VirtioError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
