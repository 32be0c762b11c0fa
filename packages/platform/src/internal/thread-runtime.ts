// A system in its own worker_thread. Doorbells are futex-style: the ringer adds 1 to the
// line's counter and notifies; a receiver compares the counter with the value it last
// handled and, if equal, waits on the word *with that value*, so a ring that lands
// between the check and the wait makes the wait return at once: no lost wake-up. A
// receiver about to sleep counts itself in the line's waiters word first, and a ringer
// notifies only when that word is not 0 (see CONTROL_LAYOUT.LINE_WAITERS): a ring that
// lands while the receiver spins or works costs an add and a load, not a notify.
import type { MessagePort } from 'node:worker_threads';
import { CONTROL_LAYOUT as L } from '../control.js';
import type { LineHandler, ListenOptions, Listener, WaitOptions, WaitSyncOptions, WaitSyncResult } from '../types.js';
import type { SystemPlan } from './plan.js';
import {
  BaseRuntime,
  LineBase,
  abortedError,
  checkSeen,
  checkSignal,
  checkTimeout,
  modeSettings,
  stoppedError,
  timeoutError,
  type ModeSettings,
  type Resource,
  type SystemMessage,
} from './runtime.js';

type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
// Atomics.waitAsync is ES2024; Node 20 has it, the ES2022 lib does not declare it.
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): WaitAsyncResult }).waitAsync;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Loads of the counter between two microtask checkpoints of a 'poll' wait. */
const POLL_BATCH = 64;

/** How one wait ended. */
type End = 'ok' | 'timed-out' | 'stopped' | 'aborted' | 'closed';

/** An Atomics.waitAsync in progress, as the runtime's re-check sweep sees it. */
interface Sleeper {
  /** Int32 index of the counter word it sleeps on. */
  readonly word: number;
  /** The counter value it sleeps with. */
  readonly seen: number;
  /** Sweeps that found the counter moved while it still slept. */
  stale: number;
  /** Woken by the sweep for a ring whose notify never came. */
  recovered: boolean;
}

export class ThreadLine extends LineBase {
  declare protected readonly rt: ThreadRuntime;
  /** Int32 index of the waiters word. */
  private readonly waiters = this.word + (L.LINE_WAITERS >>> 2);

  ring(): void {
    if (this.rt.dead) return;
    Atomics.add(this.i32, this.word, 1);
    if (Atomics.load(this.i32, this.waiters) !== 0) Atomics.notify(this.i32, this.word);
  }

  /** Rings regardless of the system's state (its last word: the peer-status ring). */
  ringAlways(): void {
    Atomics.add(this.i32, this.word, 1);
    if (Atomics.load(this.i32, this.waiters) !== 0) Atomics.notify(this.i32, this.word);
  }

  /**
   * Waits until the counter differs from `seen` (an Int32), in the given mode, up to
   * `deadline` (performance.now() milliseconds), re-checking `check()` whenever it wakes.
   * Every sleep is bounded by recheckMs, so even a notify that never comes (a bug, or a
   * hostile peer) costs at most that long, and is counted as a recovery.
   */
  async awaitChange(seen: number, m: ModeSettings, deadline: number, check: () => End | undefined): Promise<End> {
    const a = this.i32;
    const w = this.word;
    if (Atomics.load(a, w) !== seen) {
      this.bump(L.LINE_SPIN_HITS);
      return 'ok';
    }
    if (m.mode === 'poll') {
      let until = performance.now() + m.budgetMs;
      for (;;) {
        for (let i = 0; i < POLL_BATCH; i++) {
          if (Atomics.load(a, w) !== seen) {
            this.bump(L.LINE_SPIN_HITS);
            return 'ok';
          }
        }
        // What we wait for is often the answer to work this thread has queued as promise
        // continuations (a handler resolved a promise whose continuation sends the next
        // message), and a synchronous spin would hold them back for the whole budget:
        // let them run between two batches of loads. Macrotasks (immediates, timers,
        // messages) run at the end of each budget, below.
        await null;
        const t = performance.now();
        if (t >= until) {
          await yieldToLoop();
          if (Atomics.load(a, w) !== seen) {
            this.bump(L.LINE_SPIN_HITS);
            return 'ok';
          }
          const c = check();
          if (c !== undefined) return c;
          if (performance.now() >= deadline) return 'timed-out';
          until = performance.now() + m.budgetMs;
        }
      }
    }
    if (m.mode === 'adaptive' && m.spinMs > 0) {
      // A spin blocks this thread's event loop. What we wait for is often the answer to
      // something this thread has queued but not yet run (a promise continuation or an
      // immediate that sends the next message), so let the loop run that first: spinning
      // before it would only burn the whole spin and then sleep. The spin itself yields
      // every budgetMs for the same reason.
      await yieldToLoop();
      const until = Math.min(performance.now() + m.spinMs, deadline);
      let slice = performance.now() + m.budgetMs;
      for (;;) {
        if (Atomics.load(a, w) !== seen) {
          this.bump(L.LINE_SPIN_HITS);
          return 'ok';
        }
        const t = performance.now();
        if (t >= until) break;
        if (t >= slice) {
          await yieldToLoop();
          const c = check();
          if (c !== undefined) return c;
          slice = performance.now() + m.budgetMs;
        }
      }
    }
    const rt = this.rt;
    const recheckMs = rt.recheckMs;
    let sleeper: Sleeper | undefined;
    for (;;) {
      const c = check();
      if (c !== undefined) return c;
      const now = performance.now();
      if (now >= deadline) return 'timed-out';
      // Counted before the wait checks the counter, so a ringer that does not see us has
      // rung before that check, which then fails: no sleep, no lost wake-up.
      Atomics.add(a, this.waiters, 1);
      // No timeout unless the deadline is near: a waitAsync timeout costs a timer task
      // per sleep in Node (µs on every wake-up). The runtime's sweep bounds every sleep
      // instead (it wakes each sleeper every recheckMs to re-check), and when the
      // deadline comes within that, the wait takes the exact timeout.
      const left = deadline - now;
      const r = waitAsync(a, w, seen, left <= recheckMs ? left : undefined);
      if (!r.async) {
        Atomics.sub(a, this.waiters, 1);
        if (r.value === 'not-equal') {
          this.bump(L.LINE_SPIN_HITS);
          return 'ok';
        }
        continue;
      }
      this.bump(L.LINE_SLEEPS);
      sleeper ??= { word: w, seen, stale: 0, recovered: false };
      rt.sleepers.add(sleeper);
      let v: 'ok' | 'timed-out';
      try {
        v = await r.value;
      } finally {
        Atomics.sub(a, this.waiters, 1);
        rt.sleepers.delete(sleeper);
      }
      if (Atomics.load(a, w) !== seen) {
        if (v === 'timed-out' || sleeper.recovered) this.bump(L.LINE_RECOVERIES);
        return 'ok';
      }
    }
  }

  listen(handler: LineHandler, options?: ListenOptions): Listener {
    this.checkHandler(handler);
    const m = modeSettings(options, 'options');
    const signal = checkSignal('options.signal', options?.signal);
    let seen = options?.seen === undefined ? 0 : checkSeen(options.seen);
    const rt = this.rt;
    const line = this;
    let closed = false;
    const onAbort = (): void => listener.close();
    const listener: Listener & Resource = {
      get closed() {
        return closed;
      },
      close() {
        if (closed) return;
        closed = true;
        rt.resources.delete(listener);
        signal?.removeEventListener('abort', onAbort);
        // Wake the loop if it sleeps, so it sees `closed` and ends now.
        Atomics.notify(line.i32, line.word);
      },
    };
    if (signal?.aborted || rt.dead) {
      closed = true;
      return listener;
    }
    rt.resources.add(listener);
    signal?.addEventListener('abort', onAbort, { once: true });
    // A listener lives until closed or until its system ends (not merely until a stop is
    // asked: a system may still take interrupts while it shuts down).
    const check = (): End | undefined => (closed ? 'closed' : undefined);
    const loop = async (): Promise<void> => {
      await null; // never run a handler inside listen()
      let ranSince = performance.now();
      while (!closed) {
        const end = await this.awaitChange(seen, m, Infinity, check);
        if (end !== 'ok' || closed) break;
        const v = Atomics.load(this.i32, this.word);
        const rings = (v - seen) >>> 0;
        seen = v;
        if (!this.callHandler(handler, rings)) break;
        // Rings arriving back to back never sleep; yield now and then so the rest of
        // the event loop (messages, timers, other listeners) still runs.
        if (performance.now() - ranSince > m.budgetMs) {
          await yieldToLoop();
          ranSince = performance.now();
        }
      }
    };
    loop().catch((e: unknown) => rt.crash(e, 'threw'));
    return listener;
  }

  async wait(seen: number, options?: WaitOptions): Promise<number> {
    const s = checkSeen(seen);
    const m = modeSettings(options, 'options');
    const timeoutMs = checkTimeout('options.timeoutMs', options?.timeoutMs);
    const signal = checkSignal('options.signal', options?.signal);
    const rt = this.rt;
    if (rt.stopping) throw stoppedError(rt.name);
    if (signal?.aborted) throw abortedError(rt.name, signal);
    // Already rung: nothing to set up (the common case of a busy link).
    if (Atomics.load(this.i32, this.word) !== s) {
      this.bump(L.LINE_SPIN_HITS);
      this.bump(L.LINE_WAKEUPS);
      return this.count();
    }
    const deadline = performance.now() + timeoutMs;
    let cancelled = false;
    // A stop needs no listener here: onStopAsked() notifies every line word of the system.
    const wake = signal === undefined ? undefined : (): number => Atomics.notify(this.i32, this.word);
    const i32 = this.i32;
    const word = this.word;
    const res: Resource = {
      close() {
        cancelled = true;
        Atomics.notify(i32, word); // end a sleep now (the sweep stops with the system)
      },
    };
    rt.resources.add(res);
    if (wake !== undefined) signal!.addEventListener('abort', wake, { once: true });
    try {
      const end = await this.awaitChange(s, m, deadline, () =>
        cancelled ? 'closed' : rt.stopping ? 'stopped' : signal?.aborted ? 'aborted' : undefined,
      );
      if (end === 'ok') {
        this.bump(L.LINE_WAKEUPS);
        return this.count();
      }
      if (end === 'closed') return new Promise<number>(() => {}); // the system is gone
      if (end === 'stopped') throw stoppedError(rt.name);
      if (end === 'aborted') throw abortedError(rt.name, signal!);
      throw timeoutError(rt.name, this.name, timeoutMs);
    } finally {
      rt.resources.delete(res);
      if (wake !== undefined) signal!.removeEventListener('abort', wake);
    }
  }

  waitSync(seen: number, options?: WaitSyncOptions): WaitSyncResult {
    const s = checkSeen(seen);
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('options must be an object');
    const timeoutMs = checkTimeout('options.timeoutMs', options?.timeoutMs);
    const spinMs = modeSettings({ spinUs: options?.spinUs ?? 0 }, 'options').spinMs;
    const a = this.i32;
    const w = this.word;
    const start = performance.now();
    const deadline = start + timeoutMs;
    if (Atomics.load(a, w) !== s) return this.woke(L.LINE_SPIN_HITS);
    if (spinMs > 0) {
      const until = Math.min(start + spinMs, deadline);
      do {
        if (Atomics.load(a, w) !== s) return this.woke(L.LINE_SPIN_HITS);
      } while (performance.now() < until);
    }
    for (;;) {
      if (this.rt.stopping) return 'stopped';
      const now = performance.now();
      if (now >= deadline) return 'timed-out';
      Atomics.add(a, this.waiters, 1);
      const r = Atomics.wait(a, w, s, Math.min(deadline - now, this.rt.recheckMs));
      Atomics.sub(a, this.waiters, 1);
      if (r === 'not-equal') return this.woke(L.LINE_SPIN_HITS);
      this.bump(L.LINE_SLEEPS);
      if (Atomics.load(a, w) !== s) {
        if (r === 'timed-out') this.bump(L.LINE_RECOVERIES);
        return this.woke(-1);
      }
    }
  }

  private woke(field: number): 'ok' {
    if (field >= 0) this.bump(field);
    this.bump(L.LINE_WAKEUPS);
    return 'ok';
  }
}

/** The runtime of a system inside its worker. */
export class ThreadRuntime extends BaseRuntime {
  readonly recheckMs: number;
  /** Waits asleep in Atomics.waitAsync (see {@link ThreadRuntime.sweep}). */
  readonly sleepers = new Set<Sleeper>();
  private readonly port: MessagePort;
  private readonly onMessage: (m: unknown) => void;
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(plan: SystemPlan, port: MessagePort) {
    super(plan);
    this.recheckMs = plan.recheckMs;
    this.port = port;
    this.sweeper = setInterval(() => this.sweep(), Math.min(Math.max(this.recheckMs, 1), 0x7fff_ffff));
    this.sweeper.unref();
    // The listener also keeps the worker alive while the system runs: a pending
    // Atomics.waitAsync does not.
    this.onMessage = (m: unknown) => {
      if ((m as { t?: unknown } | null)?.t === 'stop') this.requestStop();
    };
    port.on('message', this.onMessage);
  }

  protected makeLine(name: string, index: number): ThreadLine {
    return new ThreadLine(this, name, index);
  }

  /**
   * The bounded re-check of every sleep, one timer for the whole system (instead of a
   * timeout on each Atomics.waitAsync): every recheckMs it wakes each sleeper so it
   * re-checks its deadline, its system and its word. A sleeper whose counter has moved
   * gets one more period for the ring's notify to arrive; if it still sleeps at the next
   * sweep, the notify was lost: it is woken and counts a recovery.
   */
  private sweep(): void {
    const a = this.control.i32;
    for (const s of this.sleepers) {
      if (Atomics.load(a, s.word) !== s.seen) {
        if (s.stale++ === 0) continue;
        s.recovered = true;
      }
      Atomics.notify(a, s.word);
    }
  }

  protected post(msg: SystemMessage): void {
    this.port.postMessage(msg);
  }

  protected onStopAsked(): void {
    for (const l of this.ownLines) Atomics.notify(this.control.i32, this.control.lineWord(l.index));
  }

  protected ringPeers(): void {
    (this.peerLine as ThreadLine).ringAlways();
  }

  now(): number {
    return performance.now();
  }

  setTimer(ms: number, callback: () => void): () => void {
    const t = checkTimeout('ms', ms);
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    if (this.dead) return () => {};
    const res: Resource = { close: () => clearTimeout(h) };
    // setTimeout takes at most 2^31−1 ms; a longer timer is a timer that never fires.
    const h = setTimeout(
      () => {
        this.resources.delete(res);
        try {
          callback();
        } catch (e) {
          this.crash(e, 'threw');
        }
      },
      Math.min(t, 0x7fff_ffff),
    );
    this.resources.add(res);
    return () => {
      clearTimeout(h);
      this.resources.delete(res);
    };
  }

  protected override dispose(): void {
    super.dispose();
    clearInterval(this.sweeper);
    this.port.off('message', this.onMessage);
  }
}
