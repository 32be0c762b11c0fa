import type { WaitModeOptions } from './types.js';

/**
 * A side's clock: pollers, command waits and timeouts of a transport use nothing else,
 * so the same code runs on wall time ({@link systemClock}) or on the clock of a system
 * in a {@link Topology} (`SystemContext` has this shape: virtual time in deterministic
 * mode).
 *
 * @public
 */
export interface Clock {
  /** Milliseconds on this clock. */
  now(): number;
  /** Calls `callback` after `ms` milliseconds (0: as soon as the event loop turns). Returns a cancel function. */
  setTimer(ms: number, callback: () => void): () => void;
}

/** A registered {@link LocalLine} handler. @public */
export interface LocalLineListener {
  /** Stops calling the handler. Idempotent. */
  close(): void;
}

/**
 * Wall-clock {@link Clock}: `performance.now()`, `setImmediate` for 0 ms and
 * `setTimeout` otherwise. Timers keep the process alive while pending (a side that
 * polls keeps running until it is closed, like a driver until unbound).
 *
 * @public
 */
export const systemClock: Clock = Object.freeze({
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
 * An in-thread line (the shape of `Line.ring` / `Line.listen`, without a control region): a ring counter whose listeners run as queued tasks
 * (`setImmediate`), after the code that rang returns — never inside it, as an
 * interrupt is never taken inside the instruction that raised it. A handler that throws
 * or rejects is recorded in {@link LocalLine.errors}, not rethrown.
 *
 * @public
 */
export class LocalLine {
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

  /** Rings the line; listeners run later, as queued tasks. */
  ring(): void {
    this.#count = (this.#count + 1) >>> 0;
    for (const l of this.#listeners) this.#schedule(l);
  }

  /** Calls `handler` each time the line was rung since it last looked, with how many rings that covers. Wait-mode options are accepted and ignored: an in-thread line never waits. */
  listen(handler: (rings: number) => void | Promise<void>, _options?: WaitModeOptions): LocalLineListener {
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
