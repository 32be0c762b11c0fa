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
 * topology passes `ctx.line(name)`; {@link LocalLine} is the in-thread implementation.
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

/**
 * A side's clock: its pollers, command waits and timeouts use nothing else, so a side
 * runs on wall time ({@link systemClock}) or on the clock of an `@x/platform` system
 * (`SystemContext` has this shape: virtual time in its deterministic mode).
 *
 * @public
 */
export interface PciClock {
  /** Milliseconds on this clock. */
  now(): number;
  /** Calls `callback` after `ms` milliseconds (0: as soon as the event loop turns). Returns a cancel function. */
  setTimer(ms: number, callback: () => void): () => void;
}

/**
 * Wall-clock {@link PciClock}: `performance.now()`, `setImmediate` for 0 ms and
 * `setTimeout` otherwise. Timers keep the process alive while pending (a side that
 * polls keeps running until it is closed, like a driver until unbound).
 *
 * @public
 */
export const systemClock: PciClock = Object.freeze({
  now: () => performance.now(),
  setTimer(ms: number, callback: () => void): () => void {
    if (!(ms > 0)) {
      const i = setImmediate(callback);
      return () => clearImmediate(i);
    }
    const t = setTimeout(callback, ms);
    return () => clearTimeout(t);
  },
});

interface LocalListener {
  readonly handler: (rings: number) => void | Promise<void>;
  seen: number;
  closed: boolean;
  scheduled: ReturnType<typeof setImmediate> | undefined;
  running: boolean;
}

/**
 * An in-thread {@link PciLine}: a ring counter whose listeners run as queued tasks
 * (`setImmediate`), after the code that rang returns — never inside it, as an
 * interrupt is never taken inside the instruction that raised it. A handler that throws
 * or rejects is recorded in {@link LocalLine.errors}, not rethrown.
 *
 * @public
 */
export class LocalLine implements PciLine {
  /** The line's name, for messages. */
  readonly name: string;
  /** Handler failures, oldest first. */
  readonly errors: unknown[] = [];
  #count = 0;
  readonly #listeners = new Set<LocalListener>();

  constructor(name = 'line') {
    this.name = name;
  }

  /** Rings so far, modulo 2^32. */
  get count(): number {
    return this.#count;
  }

  /** True when no delivery is queued or running. */
  get idle(): boolean {
    for (const l of this.#listeners) if (l.scheduled !== undefined || l.running) return false;
    return true;
  }

  /** {@inheritDoc PciLine.ring} */
  ring(): void {
    this.#count = (this.#count + 1) >>> 0;
    for (const l of this.#listeners) this.#schedule(l);
  }

  /** {@inheritDoc PciLine.listen} */
  listen(handler: (rings: number) => void | Promise<void>, _options?: PciLineListenOptions): PciLineListener {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    // Rings made before the listener existed are seen once, as a latched doorbell bit is.
    const l: LocalListener = { handler, seen: 0, closed: false, scheduled: undefined, running: false };
    this.#listeners.add(l);
    if (this.#count !== 0) this.#schedule(l);
    return {
      close: () => {
        l.closed = true;
        if (l.scheduled !== undefined) clearImmediate(l.scheduled);
        l.scheduled = undefined;
        this.#listeners.delete(l);
      },
    };
  }

  #schedule(l: LocalListener): void {
    if (l.scheduled !== undefined || l.closed || l.running) return;
    l.scheduled = setImmediate(() => this.#run(l));
  }

  #run(l: LocalListener): void {
    l.scheduled = undefined;
    if (l.closed) return;
    const n = (this.#count - l.seen) >>> 0;
    if (n === 0) return;
    l.seen = this.#count;
    l.running = true;
    const done = (): void => {
      l.running = false;
      if (!l.closed && l.seen !== this.#count) this.#schedule(l);
    };
    try {
      const r = l.handler(n);
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).then(done, (e: unknown) => {
          this.errors.push(e);
          done();
        });
        return;
      }
    } catch (e) {
      this.errors.push(e);
    }
    done();
  }
}

/** Makes the two in-thread wires of one link. @public */
export function createLocalLines(): PciEpfLines & { readonly toRc: LocalLine; readonly toEp: LocalLine } {
  return { toRc: new LocalLine('to-rc'), toEp: new LocalLine('to-ep') };
}
