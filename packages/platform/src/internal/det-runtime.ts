// All systems in the owner's thread. A ring still adds 1 to the line's counter word in
// the control region; instead of a futex wake-up it queues one delivery task per
// registered receiver on a FIFO queue, and the receiver reads the counter when the task
// runs. Timers run on a virtual clock. Nothing runs until the test steps the scheduler,
// so the order of everything is a function of the systems' code alone.
import { CONTROL_LAYOUT as L } from '../control.js';
import { PlatformError } from '../errors.js';
import type { DeterministicScheduler, LineHandler, ListenOptions, Listener, RunOptions, WaitOptions, WaitSyncResult } from '../types.js';
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
  type Resource,
  type SystemMessage,
} from './runtime.js';

/** A receiver on a line: a listener or a pending wait. */
export interface Watcher {
  /** Index of the system it belongs to (errors in its task crash that system). */
  readonly owner: number;
  /** True while a delivery task for it is in the queue: rings coalesce. */
  queued: boolean;
  deliver(): void;
}

interface Task {
  readonly owner: number;
  readonly run: () => void;
}

interface Timer {
  readonly due: number;
  readonly seq: number;
  readonly owner: number;
  readonly run: () => void;
  cancelled: boolean;
}

const DEFAULT_MAX_STEPS = 10_000_000;

/** Lets every pending promise reaction run: one turn of the real event loop. */
const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function maxSteps(options: RunOptions | undefined): number {
  const n = options?.maxSteps ?? DEFAULT_MAX_STEPS;
  if (typeof n !== 'number') throw new TypeError(`options.maxSteps must be a number, got ${typeof n}`);
  if (!(n >= 1)) throw new RangeError(`options.maxSteps must be ≥ 1, got ${n}`);
  return n;
}

export class Scheduler implements DeterministicScheduler {
  /** Called with the owning system's index when a task throws. */
  onError: (owner: number, e: unknown) => void = (_owner, e) => {
    throw e;
  };
  private queue: Task[] = [];
  private head = 0;
  private readonly timerList: Timer[] = [];
  private readonly watchers = new Map<number, Set<Watcher>>();
  private seq = 0;
  private clock = 0;
  private ran = 0;

  get now(): number {
    return this.clock;
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  get timers(): number {
    return this.timerList.length;
  }

  get steps(): number {
    return this.ran;
  }

  /** Due time of the earliest timer, or undefined. */
  get nextDue(): number | undefined {
    return this.timerList[0]?.due;
  }

  enqueue(owner: number, run: () => void): void {
    this.queue.push({ owner, run });
  }

  addWatcher(line: number, w: Watcher): void {
    let set = this.watchers.get(line);
    if (set === undefined) this.watchers.set(line, (set = new Set()));
    set.add(w);
  }

  removeWatcher(line: number, w: Watcher): void {
    this.watchers.get(line)?.delete(w);
  }

  /** Queues one delivery for `w` unless one is already queued. */
  poke(line: number, w: Watcher): void {
    if (w.queued) return;
    w.queued = true;
    this.enqueue(w.owner, () => {
      w.queued = false;
      // Closed since it was queued: nothing to deliver.
      if (this.watchers.get(line)?.has(w)) w.deliver();
    });
  }

  /** A ring of `line`: one delivery per registered receiver, in registration order. */
  ringLine(line: number): void {
    const set = this.watchers.get(line);
    if (set === undefined) return;
    for (const w of set) this.poke(line, w);
  }

  setTimer(owner: number, ms: number, run: () => void): () => void {
    const t: Timer = { due: this.clock + ms, seq: this.seq++, owner, run, cancelled: false };
    // Keep the list sorted by (due, seq): equal times fire in the order they were set.
    let i = this.timerList.length;
    while (i > 0 && this.timerList[i - 1]!.due > t.due) i--;
    this.timerList.splice(i, 0, t);
    return () => {
      if (t.cancelled) return;
      t.cancelled = true;
      const k = this.timerList.indexOf(t);
      if (k >= 0) this.timerList.splice(k, 1);
    };
  }

  /** Runs one ready task synchronously. */
  private runOne(): boolean {
    if (this.head >= this.queue.length) return false;
    const t = this.queue[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.ran++;
    try {
      t.run();
    } catch (e) {
      this.onError(t.owner, e);
    }
    return true;
  }

  async step(): Promise<boolean> {
    await drain();
    const ran = this.runOne();
    if (ran) await drain();
    return ran;
  }

  async runUntilIdle(options?: RunOptions): Promise<number> {
    const max = maxSteps(options);
    let n = 0;
    await drain();
    while (this.runOne()) {
      if (++n >= max && this.pending > 0) throw new PlatformError('STEP_LIMIT', `still busy after ${n} tasks`);
      await drain();
    }
    return n;
  }

  /** Fires the earliest timer if it is due by `limit`: moves the clock to it and queues it. */
  fireNext(limit: number): boolean {
    const t = this.timerList[0];
    if (t === undefined || t.due > limit) return false;
    this.timerList.shift();
    t.cancelled = true;
    if (t.due > this.clock) this.clock = t.due;
    this.enqueue(t.owner, t.run);
    return true;
  }

  async advance(ms: number, options?: RunOptions): Promise<number> {
    if (typeof ms !== 'number') throw new TypeError(`ms must be a number, got ${typeof ms}`);
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`ms must be a finite number ≥ 0, got ${ms}`);
    const max = maxSteps(options);
    const target = this.clock + ms;
    let n = await this.runUntilIdle({ maxSteps: max });
    while (this.fireNext(target)) {
      n += await this.runUntilIdle({ maxSteps: max });
      if (n >= max) throw new PlatformError('STEP_LIMIT', `still busy after ${n} tasks`);
    }
    this.clock = target;
    return n;
  }
}

export class DetLine extends LineBase {
  declare protected readonly rt: DetRuntime;

  ring(): void {
    if (this.rt.dead) return;
    this.ringAlways();
  }

  ringAlways(): void {
    Atomics.add(this.i32, this.word, 1);
    this.rt.sched.ringLine(this.index);
  }

  listen(handler: LineHandler, options?: ListenOptions): Listener {
    this.checkHandler(handler);
    modeSettings(options, 'options'); // checked for parity with threads; every mode is a queued task here
    const signal = checkSignal('options.signal', options?.signal);
    let seen = options?.seen === undefined ? 0 : checkSeen(options.seen);
    const rt = this.rt;
    const sched = rt.sched;
    let closed = false;
    const watcher: Watcher = {
      owner: rt.index,
      queued: false,
      deliver: () => {
        const v = Atomics.load(this.i32, this.word);
        if (v === seen || closed) return;
        const rings = (v - seen) >>> 0;
        seen = v;
        this.bump(L.LINE_SPIN_HITS); // nothing sleeps in this mode: every wake-up is found by looking
        this.callHandler(handler, rings);
      },
    };
    const onAbort = (): void => listener.close();
    const listener: Listener & Resource = {
      get closed() {
        return closed;
      },
      close: () => {
        if (closed) return;
        closed = true;
        sched.removeWatcher(this.index, watcher);
        rt.resources.delete(listener);
        signal?.removeEventListener('abort', onAbort);
      },
    };
    if (signal?.aborted || rt.dead) {
      closed = true;
      return listener;
    }
    sched.addWatcher(this.index, watcher);
    rt.resources.add(listener);
    signal?.addEventListener('abort', onAbort, { once: true });
    // Rings made before the listener existed (a latched doorbell) are delivered once.
    if (Atomics.load(this.i32, this.word) !== seen) sched.poke(this.index, watcher);
    return listener;
  }

  wait(seen: number, options?: WaitOptions): Promise<number> {
    let s: number;
    let timeoutMs: number;
    let signal: AbortSignal | undefined;
    try {
      s = checkSeen(seen);
      modeSettings(options, 'options');
      timeoutMs = checkTimeout('options.timeoutMs', options?.timeoutMs);
      signal = checkSignal('options.signal', options?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
    const rt = this.rt;
    if (rt.stopping) return Promise.reject(stoppedError(rt.name));
    if (signal?.aborted) return Promise.reject(abortedError(rt.name, signal));
    if (Atomics.load(this.i32, this.word) !== s) {
      this.bump(L.LINE_SPIN_HITS);
      this.bump(L.LINE_WAKEUPS);
      return Promise.resolve(this.count());
    }
    const sched = rt.sched;
    return new Promise<number>((resolve, reject) => {
      let cancelTimer: (() => void) | undefined;
      const cleanup = (): void => {
        sched.removeWatcher(this.index, watcher);
        cancelTimer?.();
        rt.resources.delete(res);
        rt.signal.removeEventListener('abort', onStop);
        signal?.removeEventListener('abort', onAbort);
      };
      const watcher: Watcher = {
        owner: rt.index,
        queued: false,
        deliver: () => {
          if (Atomics.load(this.i32, this.word) === s) return;
          cleanup();
          this.bump(L.LINE_SPIN_HITS);
          this.bump(L.LINE_WAKEUPS);
          resolve(this.count());
        },
      };
      const onStop = (): void => {
        cleanup();
        reject(stoppedError(rt.name));
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortedError(rt.name, signal!));
      };
      // The system ended: its wait neither resolves nor rejects (its code is gone).
      const res: Resource = { close: cleanup };
      sched.addWatcher(this.index, watcher);
      rt.resources.add(res);
      rt.signal.addEventListener('abort', onStop, { once: true });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(timeoutMs)) {
        cancelTimer = sched.setTimer(rt.index, timeoutMs, () => {
          cleanup();
          reject(timeoutError(rt.name, this.name, timeoutMs));
        });
      }
    });
  }

  waitSync(): WaitSyncResult {
    throw new PlatformError('UNSUPPORTED', `waitSync would block the one thread all systems share (line '${this.name}', system '${this.rt.name}'); use wait() or listen()`, {
      system: this.rt.name,
    });
  }
}

/** The runtime of one system in deterministic mode. */
export class DetRuntime extends BaseRuntime {
  readonly sched: Scheduler;
  private readonly deliver: (index: number, msg: SystemMessage) => void;

  constructor(plan: SystemPlan, sched: Scheduler, deliver: (index: number, msg: SystemMessage) => void) {
    super(plan);
    this.sched = sched;
    this.deliver = deliver;
  }

  protected makeLine(name: string, index: number): DetLine {
    return new DetLine(this, name, index);
  }

  protected post(msg: SystemMessage): void {
    // Copied as postMessage would: no object of a system reaches the owner.
    this.deliver(this.index, msg.t === 'report' ? { t: 'report', data: structuredClone(msg.data) } : msg);
  }

  protected onStopAsked(): void {
    // Pending waits listen to this.signal and reject at once; nothing else to wake.
  }

  protected ringPeers(): void {
    (this.peerLine as DetLine).ringAlways();
  }

  now(): number {
    return this.sched.now;
  }

  setTimer(ms: number, callback: () => void): () => void {
    const t = checkTimeout('ms', ms);
    if (typeof callback !== 'function') throw new TypeError('callback must be a function');
    if (this.dead) return () => {};
    const cancel = this.sched.setTimer(this.index, t, () => {
      this.resources.delete(res);
      callback();
    });
    const res: Resource = { close: cancel };
    this.resources.add(res);
    return () => {
      cancel();
      this.resources.delete(res);
    };
  }
}
