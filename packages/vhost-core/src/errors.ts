/**
 * Why a {@link VhostError} was raised. Each code names one rule of the RFC's vhost
 * model, of VIRTIO 1.2 §2.1 / §3.1, or of the configuration tree, so callers can switch
 * on it.
 *
 * @public
 */
export type VhostErrorCode =
  /** A ring was touched before the peer set DRIVER_OK, after a reset, or with no ring attached (RFC §3). */
  | 'NOT_READY'
  /** The peer's driver features include a bit the device did not offer (VIRTIO 1.2 §2.2.1, §3.1.1 step 4). */
  | 'FEATURES_NOT_OFFERED'
  /** A status write or an event broke the §2.1 / §3.1.1 order (e.g. DRIVER_OK before FEATURES_OK, a bit cleared). */
  | 'BAD_STATUS'
  /** A {@link VhostConfigOps} table lacks a required op, has half of a pair, or an op is not a function. */
  | 'INVALID_OPS'
  /** A configuration path names no item or attribute, or an item cannot be created or removed there. */
  | 'CONFIG_PATH'
  /** A configuration attribute value breaks its rule (type, range, power of two, subset of features, …). */
  | 'CONFIG_VALUE'
  /** A configuration link was refused: wrong kind of target, no such link, or the item's own rule. */
  | 'CONFIG_LINK'
  /** The thing is in use: already registered, already linked, attributes fixed while linked. */
  | 'BUSY'
  /** Unregistering a device or driver that is not registered on this bus. */
  | 'NOT_REGISTERED'
  /** The ring broke a rule of VIRTIO §2.7; the `cause` is the `VringError` from `@x/vring`. */
  | 'RING_ERROR'
  /** getInbuf found device-writable segments, or getOutbuf device-readable ones (Linux vringh: -EPROTO). */
  | 'WRONG_DIRECTION'
  /** A read or write of the peer's memory fell outside what the device can reach. */
  | 'BUS_ERROR'
  /** A driver's probe or event hook threw; the `cause` is what it threw. */
  | 'DRIVER_ERROR'
  /** The far end did not answer in time. */
  | 'TIMEOUT'
  /** An optional op the transport does not provide, with no core fallback. */
  | 'NOT_SUPPORTED';

/**
 * The one error class of `@x/vhost-core`. Configuration errors carry the `path` of the
 * item, attribute or link that broke a rule, and the message names the rule.
 *
 * @public
 */
export class VhostError extends Error {
  /** Which rule was broken. */
  readonly code: VhostErrorCode;
  /** For configuration errors: the path of the item, attribute or link concerned. */
  readonly path?: string;

  constructor(code: VhostErrorCode, message: string, options?: { cause?: unknown; path?: string }) {
    const where = options?.path === undefined ? '' : `${options.path}: `;
    super(`${code}: ${where}${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VhostError';
    this.code = code;
    if (options?.path !== undefined) this.path = options.path;
  }
}

/**
 * Structural guard: true for any {@link VhostError} (optionally with the given code),
 * including one created by another copy of this package.
 *
 * @public
 */
export function isVhostError(e: unknown, code?: VhostErrorCode): e is VhostError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'VhostError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
