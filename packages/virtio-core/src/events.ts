import type { VirtioDevice } from './device.js';
import type { VirtioDriver } from './driver.js';
import type { VirtioError } from './errors.js';

/** A driver was bound to a device: the §3.1 sequence reached DRIVER_OK. @public */
export interface VirtioProbeEvent {
  /** Event kind. */
  readonly type: 'probe';
  /** The device. */
  readonly device: VirtioDevice;
  /** The driver now bound to it. */
  readonly driver: VirtioDriver;
}

/** Binding failed; the device was left with FAILED set and no driver. @public */
export interface VirtioProbeFailedEvent {
  /** Event kind. */
  readonly type: 'probe-failed';
  /** The device. */
  readonly device: VirtioDevice;
  /** The driver that was being bound. */
  readonly driver: VirtioDriver;
  /** Why: FEATURES_NOT_ACCEPTED, DRIVER_ERROR, TRANSPORT, TIMEOUT, … */
  readonly error: VirtioError;
}

/** A driver was unbound from a device (driver.remove ran, the device was reset). @public */
export interface VirtioRemoveEvent {
  /** Event kind. */
  readonly type: 'remove';
  /** The device. */
  readonly device: VirtioDevice;
  /** The driver that was bound. */
  readonly driver: VirtioDriver;
}

/**
 * The device set DEVICE_NEEDS_RESET (§2.1.2); core is removing the driver, resetting the
 * device and probing the driver again. A `remove` and a `probe` (or `probe-failed`)
 * event follow.
 *
 * @public
 */
export interface VirtioNeedsResetEvent {
  /** Event kind. */
  readonly type: 'needs-reset';
  /** The device. */
  readonly device: VirtioDevice;
  /** The driver that was bound. */
  readonly driver: VirtioDriver;
}

/**
 * Something failed where no caller is waiting: a driver's remove or configChanged, a
 * queue callback, a reset during teardown, or a device that keeps needing resets.
 *
 * @public
 */
export interface VirtioErrorEvent {
  /** Event kind. */
  readonly type: 'error';
  /** The device. */
  readonly device: VirtioDevice;
  /** What failed. */
  readonly error: VirtioError;
}

/**
 * What a {@link VirtioBus} reports through `onEvent` (instead of an EventEmitter).
 *
 * @public
 */
export type VirtioBusEvent = VirtioProbeEvent | VirtioProbeFailedEvent | VirtioRemoveEvent | VirtioNeedsResetEvent | VirtioErrorEvent;
