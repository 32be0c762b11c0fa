/**
 * Why a {@link PciEpfError} was raised. Each code names one rule of the PCIe model or
 * of the RFC's command protocol (rfc-protocol §2.1–2.4), so callers can switch on it.
 *
 * @public
 */
export type PciEpfErrorCode =
  /** A command was not answered within the command timeout (RFC §2.2: -ETIMEDOUT). */
  | 'TIMEOUT'
  /** The endpoint answered a command with ERROR (RFC §2.2: -EINVAL). */
  | 'COMMAND_FAILED'
  /** A non-posted read of an emulated register got no completion in time (a PCIe completion timeout). */
  | 'COMPLETION_TIMEOUT'
  /** The link is down: the endpoint is not started, was stopped, or its system went away. */
  | 'LINK_DOWN'
  /** Every outbound window is in use (`pci_epc_mem_alloc_addr` fails). */
  | 'NO_FREE_WINDOW'
  /** The aligned mapping is larger than one outbound window (`pci_epc_map_addr`: -EINVAL). */
  | 'WINDOW_TOO_SMALL'
  /** A raw mapping whose bus address or size is not aligned to the window alignment. */
  | 'MISALIGNED'
  /** An access to an address nothing answers (an Unsupported Request on the link). */
  | 'BUS_ERROR'
  /** No free BAR is left for the function (`pci_epc_get_first_free_bar` < 0). */
  | 'NO_FREE_BAR'
  /** The root complex found no function, or no BAR holding the register block (discovery). */
  | 'NOT_FOUND'
  /** An interrupt type the host did not enable, or a vector outside what it enabled. */
  | 'IRQ_NOT_ENABLED'
  /** The controller lacks a feature (doorbell, register emulation, DMA, an interrupt type). */
  | 'NOT_SUPPORTED'
  /** An operation in a state that does not allow it (a queue already enabled, a closed side). */
  | 'BAD_STATE'
  /** A DMA transfer failed (its cause is the bus error). */
  | 'DMA_ERROR'
  /** A link configuration or option is invalid. */
  | 'BAD_CONFIG';

/**
 * The one error class of `@x/transport-pci-epf`.
 *
 * @public
 */
export class PciEpfError extends Error {
  /** Which rule was broken. */
  readonly code: PciEpfErrorCode;

  constructor(code: PciEpfErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PciEpfError';
    this.code = code;
  }
}

/**
 * Structural guard: true for any {@link PciEpfError} (optionally of one code),
 * including one created by another copy of this package or copied across a worker.
 *
 * @public
 */
export function isPciEpfError(e: unknown, code?: PciEpfErrorCode): e is PciEpfError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'PciEpfError' &&
    typeof (e as { code?: unknown }).code === 'string' &&
    (code === undefined || (e as { code: string }).code === code)
  );
}
