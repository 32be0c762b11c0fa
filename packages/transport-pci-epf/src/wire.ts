import { LocalLine } from '@x/platform';

// The clock and the in-thread line are @x/platform's; they keep their names here.
export { LocalLine, systemClock, type Clock as PciClock } from '@x/platform';

/**
 * How a receiver waits for a ring (the wait modes of `@x/platform`'s `Line.listen`;
 * an in-thread line ignores them).
 *
 * @public
 */
export interface PciLineListenOptions {
  /** `sleep` (Atomics.waitAsync), `poll` (busy, lowest latency) or `adaptive` (spin, then sleep). */
  readonly mode?: 'sleep' | 'poll' | 'adaptive';
  /** `adaptive`: microseconds to spin before sleeping. */
  readonly spinUs?: number;
  /** `poll`: microseconds of polling between two yields to the event loop. */
  readonly budgetUs?: number;
}

/** A registered line handler. @public */
export interface PciLineListener {
  /** Stops calling the handler. Idempotent. */
  close(): void;
}

/**
 * One interrupt / doorbell wire between the two sides of a link: ringing it wakes the
 * listener on the other side, which then reads what happened from shared bytes (the
 * model's pending-interrupt and doorbell words). Rings may coalesce; none is lost.
 *
 * `@x/platform`'s `Line` has exactly this shape (a superset), so a system in a
 * topology passes `ctx.line(name)`; `LocalLine` is the in-thread implementation.
 * Only numbers cross a line, never an object of the other side.
 *
 * @public
 */
export interface PciLine {
  /** Rings the line (an MSI write, a doorbell write, a completion TLP). */
  ring(): void;
  /** Calls `handler` each time the line was rung since it last looked, with how many rings that covers. */
  listen(handler: (rings: number) => void | Promise<void>, options?: PciLineListenOptions): PciLineListener;
}

/**
 * The two wires of one root-complex ↔ endpoint link. Both sides get the same pair:
 * the endpoint rings `toRc` and listens to `toEp`; the root complex the reverse.
 *
 * @public
 */
export interface PciEpfLines {
  /** EP → RC: MSI / MSI-X / INTx, completions of emulated-register reads, link and command events. */
  readonly toRc: PciLine;
  /** RC → EP: doorbell writes and emulated-register requests. */
  readonly toEp: PciLine;
}


/** Makes the two in-thread wires of one link. @public */
export function createLocalLines(): PciEpfLines & { readonly toRc: LocalLine; readonly toEp: LocalLine } {
  return { toRc: new LocalLine('to-rc'), toEp: new LocalLine('to-ep') };
}
