import { VIRTIO_CONFIG_S } from './constants.js';
import { VirtioError } from './errors.js';

const S = VIRTIO_CONFIG_S;

/** Every bit the driver may ever write: ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | FAILED = 1+2+4+8+128 = 143. */
const DRIVER_BITS = S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK | S.FEATURES_OK | S.FAILED;

/**
 * What must already be set before each bit may be set (§3.1.1 steps 2, 3, 5, 8).
 * ACKNOWLEDGE is checked separately: it is only legal on a reset device.
 */
const PREREQ: ReadonlyArray<readonly [bit: number, needs: number, step: string]> = [
  [S.DRIVER, S.ACKNOWLEDGE, 'DRIVER needs ACKNOWLEDGE (§3.1.1 step 3)'],
  [S.FEATURES_OK, S.ACKNOWLEDGE | S.DRIVER, 'FEATURES_OK needs ACKNOWLEDGE and DRIVER (§3.1.1 step 5)'],
  [S.DRIVER_OK, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK, 'DRIVER_OK needs FEATURES_OK (§3.1.1 step 8)'],
];

function hex(v: number): string {
  return `0x${v.toString(16).padStart(2, '0')}`;
}

/**
 * Checks one write of the device status byte by the driver, from the status it last
 * wrote (`from`) to `to`, against VIRTIO 1.2 §2.1 and §3.1.1. Throws a
 * {@link VirtioError}: `DEVICE_FAILED` when FAILED is set and `to` is not a reset or the
 * same value, `BAD_STATUS_TRANSITION` for anything else illegal. Legal writes:
 *
 * - `0` (a reset) from any status;
 * - the same value again (a no-op);
 * - exactly one new bit, in order: ACKNOWLEDGE on a reset device, then DRIVER, then
 *   FEATURES_OK, then DRIVER_OK;
 * - FAILED from any status (§3.1.1: "the driver MUST set FAILED" on failure).
 *
 * Illegal: clearing a bit other than by reset, setting DEVICE_NEEDS_RESET (device-only,
 * §2.1.2), reserved bits (16 is SUSPEND in VIRTIO 1.4 only, 32 is unassigned), and
 * setting two bits in one write.
 *
 * @public
 */
export function checkStatusTransition(from: number, to: number): void {
  for (const [name, v] of [['from', from], ['to', to]] as const) {
    if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${name} must be a status byte (0..255), got ${v}`);
  }
  if (to === 0 || to === from) return;
  const bad = (why: string): never => {
    throw new VirtioError('BAD_STATUS_TRANSITION', `status ${hex(from)} -> ${hex(to)}: ${why}`);
  };
  if ((to & S.NEEDS_RESET) !== 0 && (from & S.NEEDS_RESET) === 0) bad('DEVICE_NEEDS_RESET is set by the device only (§2.1.2)');
  if ((to & ~DRIVER_BITS & ~S.NEEDS_RESET) !== 0) bad(`reserved status bit(s) ${hex(to & ~DRIVER_BITS & ~S.NEEDS_RESET)} (§2.1)`);
  if ((from & ~to) !== 0) bad(`clears ${hex(from & ~to)} without a reset (§2.1.1: the driver MUST NOT clear a status bit)`);
  const added = to & ~from;
  if ((from & S.FAILED) !== 0) {
    throw new VirtioError('DEVICE_FAILED', `status ${hex(from)} -> ${hex(to)}: FAILED is set; only a reset is accepted (§3.1.1)`);
  }
  if ((added & (added - 1)) !== 0) bad('sets more than one bit at once (§3.1.1 sets them one step at a time)');
  if (added === S.FAILED) return;
  if (added === S.ACKNOWLEDGE) {
    if (from !== 0) bad('ACKNOWLEDGE is set only on a reset device (§3.1.1 steps 1-2)');
    return;
  }
  for (const [b, needs, step] of PREREQ) {
    if (added === b && (from & needs) !== needs) bad(step);
  }
}
