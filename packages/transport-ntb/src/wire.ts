import { LocalLine as LocalNtbLine, type Clock as NtbClock } from '@x/platform';

// The clock and the in-thread line are @x/platform's; they keep their NTB names here.
export { LocalLine as LocalNtbLine, systemClock, type Clock as NtbClock } from '@x/platform';

// Interrupt wires and clocks. Two hosts meet only in bytes and in interrupt lines: a
// line is a counter somebody rings and somebody listens to. `@x/platform`'s `Line` has
// this shape, so a system in a topology passes `ctx.line(name)`; `SharedNtbLine` is the
// same protocol over a word of a SharedArrayBuffer (a plain worker needs nothing else),
// and `LocalNtbLine` is the in-thread one.

/**
 * How a receiver waits for a ring (the wait modes of `@x/platform`'s `Line.listen`).
 *
 * @public
 */
export interface NtbLineListenOptions {
  /** `sleep` (Atomics.waitAsync), `poll` (busy, lowest latency) or `adaptive` (spin, then sleep). Default `sleep`. */
  readonly mode?: 'sleep' | 'poll' | 'adaptive';
  /** `adaptive`: microseconds to spin before sleeping. Default 50. */
  readonly spinUs?: number;
  /** `poll`: microseconds of polling between two yields to the event loop. Default 100. */
  readonly budgetUs?: number;
}

/** A registered line handler. @public */
export interface NtbLineListener {
  /** Stops calling the handler. Idempotent. */
  close(): void;
}

/**
 * One interrupt wire into a host (an MSI vector, the NTB's interrupt): ringing it wakes
 * the listener, which then reads what happened from shared bytes (doorbell, link and
 * pending-vector registers). Rings may coalesce; none is lost. Only a number crosses a
 * line, never an object of the other side.
 *
 * @public
 */
export interface NtbLine {
  /** Rings the line (a doorbell write that raises an interrupt, an MSI write). */
  ring(): void;
  /** Calls `handler` each time the line was rung since it last looked, with how many rings that covers. */
  listen(handler: (rings: number) => void | Promise<void>, options?: NtbLineListenOptions): NtbLineListener;
}


// Atomics.waitAsync is ES2024; Node 20 has it, the ES2022 lib does not declare it.
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): WaitAsyncResult }).waitAsync;

/** Upper bound of one sleep before a listener re-checks its word (a lost notify cannot hang it). */
const RECHECK_MS = 1000;
/** Busy rounds a listener runs before it yields one macrotask turn. */
const YIELD_EVERY = 64;

/**
 * An {@link NtbLine} over one `Int32` word of a `SharedArrayBuffer`: ringing is
 * `Atomics.add` + `Atomics.notify`; a listener compares the word with the value it last
 * handled and waits with `Atomics.waitAsync` (or polls / spins, {@link NtbLineListenOptions}),
 * so a ring can never fall between a check and a sleep. Works across workers (each
 * side wraps the same buffer) and in one thread. A handler that throws or rejects is
 * recorded in {@link SharedNtbLine.errors}.
 *
 * @public
 */
export class SharedNtbLine implements NtbLine {
  /** The line's name, for messages. */
  readonly name: string;
  /** Handler failures, oldest first. */
  readonly errors: unknown[] = [];
  readonly #word: Int32Array;

  /**
   * @param buffer - the shared buffer holding the word
   * @param byteOffset - the word's offset, a multiple of 4
   * @param name - for messages
   */
  constructor(buffer: SharedArrayBuffer, byteOffset: number, name = 'line') {
    if (!(buffer instanceof SharedArrayBuffer)) throw new TypeError('buffer must be a SharedArrayBuffer');
    if (typeof byteOffset !== 'number') throw new TypeError(`byteOffset must be a number, got ${typeof byteOffset}`);
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0 || byteOffset + 4 > buffer.byteLength) {
      throw new RangeError(`byteOffset must be a multiple of 4 inside the buffer, got ${byteOffset}`);
    }
    this.#word = new Int32Array(buffer, byteOffset, 1);
    this.name = name;
  }

  /** Rings so far, modulo 2^32. */
  get count(): number {
    return Atomics.load(this.#word, 0) >>> 0;
  }

  /** {@inheritDoc NtbLine.ring} */
  ring(): void {
    Atomics.add(this.#word, 0, 1);
    Atomics.notify(this.#word, 0);
  }

  /** {@inheritDoc NtbLine.listen} */
  listen(handler: (rings: number) => void | Promise<void>, options: NtbLineListenOptions = {}): NtbLineListener {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    const mode = options.mode ?? 'sleep';
    if (mode !== 'sleep' && mode !== 'poll' && mode !== 'adaptive') throw new RangeError(`options.mode must be sleep, poll or adaptive, got ${String(mode)}`);
    const spinMs = (options.spinUs ?? 50) / 1000;
    const budgetMs = (options.budgetUs ?? 100) / 1000;
    const word = this.#word;
    const state = { closed: false };
    const loop = async (): Promise<void> => {
      // Latched: rings made before the listener existed are seen once.
      let seen = 0;
      let busy = 0;
      while (!state.closed) {
        let cur = Atomics.load(word, 0);
        if (cur === seen && mode !== 'sleep') {
          // Spin (adaptive) or poll (poll) for a while before sleeping / yielding.
          const until = performance.now() + (mode === 'poll' ? budgetMs : spinMs);
          while ((cur = Atomics.load(word, 0)) === seen && performance.now() < until) {
            // busy wait: the lowest-latency way to see the peer's ring
          }
          if (cur === seen && mode === 'poll') {
            await new Promise<void>((r) => setImmediate(r));
            continue;
          }
        }
        if (cur !== seen) {
          const n = (cur - seen) >>> 0;
          seen = cur;
          try {
            const r = handler(n);
            if (r !== undefined && typeof (r as Promise<void>).then === 'function') await r;
          } catch (e) {
            this.errors.push(e);
          }
          if (++busy >= YIELD_EVERY) {
            busy = 0;
            await new Promise<void>((r) => setImmediate(r));
          }
          continue;
        }
        busy = 0;
        const w = waitAsync(word, 0, seen, RECHECK_MS);
        if (w.async) await w.value;
      }
    };
    loop().catch((e: unknown) => this.errors.push(e));
    return {
      close: () => {
        if (state.closed) return;
        state.closed = true;
        // Wake the sleeping waiter so it sees `closed` now rather than after RECHECK_MS.
        Atomics.notify(word, 0);
      },
    };
  }
}

/** Resolves after `ms` on `clock`; rejects with `abort()`'s reason when `signal` aborts. */
export function clockSleep(clock: NtbClock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(signal!.reason);
    };
    const cancel = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
