import type { Worker } from 'node:worker_threads';
import { ArrayBufferMemory } from '@x/vring';
import { DOWN_REASON, PEER_STATUS_LINE, SYSTEM_STATUS, reasonWord, statusName, type DownReason, type SystemStatus } from './control.js';
import { PlatformError } from './errors.js';
import { defaultExecArgv, startWorker } from './internal/boot.js';
import { DetRuntime, Scheduler } from './internal/det-runtime.js';
import { buildPlan, type SystemPlan, type TopologyPlan } from './internal/plan.js';
import { isThenable, reviveError, type SystemMessage } from './internal/runtime.js';
import type {
  DeterministicScheduler,
  LineStats,
  StartOptions,
  SystemFunction,
  TopologyConfig,
  TopologyEvent,
  TopologyMode,
  TopologyState,
  WaitForEventOptions,
} from './types.js';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

// Node 20 has no Promise.withResolvers.
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The owner's record of one system. */
interface Slot {
  readonly plan: SystemPlan;
  worker?: Worker;
  rt?: DetRuntime;
  /** Its function has been called. */
  running: boolean;
  /** It finished, crashed, was killed or was marked stopped. */
  ended: boolean;
  /** Resolves when `ended` becomes true. */
  readonly endedGate: Deferred<void>;
}

function end(slot: Slot): boolean {
  if (slot.ended) return false;
  slot.ended = true;
  slot.endedGate.resolve();
  return true;
}

/**
 * A set of systems and the regions and lines they share, run in one of two modes with
 * the same system code: all in this thread on a {@link DeterministicScheduler}
 * (`deterministic`), or each in its own `worker_thread` (`threads`).
 *
 * The owner (whoever holds the `Topology`) is not one of the systems: it starts and
 * stops them, receives their reports, logs and crashes as {@link TopologyEvent}s, and
 * can read the shared memory and line counters like a debugger would. Systems learn
 * about each other only through the control region's status words and the peer-status
 * line.
 *
 * @public
 */
export class Topology {
  /** Where the systems run. */
  readonly mode: TopologyMode;
  /** The systems' names, in start order. */
  readonly systems: readonly string[];
  /** The deterministic scheduler, in `deterministic` mode; undefined in `threads`. */
  readonly scheduler: DeterministicScheduler | undefined;
  private readonly plan: TopologyPlan;
  private readonly sched: Scheduler | undefined;
  private readonly slots: Slot[];
  private readonly execArgv: readonly string[];
  private readonly log: TopologyEvent[] = [];
  private readonly listeners = new Set<(e: TopologyEvent) => void>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly t0 = performance.now();
  private current: TopologyState = 'new';
  private startGate: Deferred<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly stoppedGate = deferred<void>();

  constructor(config: TopologyConfig) {
    this.plan = buildPlan(config);
    this.mode = this.plan.mode;
    this.systems = this.plan.systems.map((s) => s.name);
    if (config.execArgv !== undefined && (!Array.isArray(config.execArgv) || config.execArgv.some((a) => typeof a !== 'string'))) {
      throw new PlatformError('BAD_CONFIG', 'config.execArgv must be an array of strings');
    }
    this.execArgv = config.execArgv ?? defaultExecArgv();
    this.slots = this.plan.systems.map((plan) => ({ plan, running: false, ended: false, endedGate: deferred<void>() }));
    if (this.mode === 'deterministic') {
      const sched = new Scheduler();
      sched.onError = (owner, e) => {
        const rt = this.slots[owner]?.rt;
        if (rt === undefined) throw e;
        rt.crash(e, 'threw');
      };
      this.sched = sched;
      this.scheduler = sched;
      for (const slot of this.slots) slot.rt = new DetRuntime(slot.plan, sched, (i, msg) => this.onMessage(i, msg));
    } else {
      this.sched = undefined;
      this.scheduler = undefined;
    }
  }

  /** Where the topology is in its life cycle. */
  get state(): TopologyState {
    return this.current;
  }

  /** Every event so far, in the order the owner received them. */
  get events(): readonly TopologyEvent[] {
    return this.log;
  }

  /** Calls `listener` with every event from now on. Returns a function that removes it. */
  onEvent(listener: (event: TopologyEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const l = (e: TopologyEvent): void => listener(e);
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  /**
   * Starts every system, in declaration order, and resolves once each is running (its
   * function called). Rejects with `START_TIMEOUT`, or with the `SYSTEM_CRASHED` error
   * of a system that failed before running (its module did not load, or has no such
   * function); the topology is then stopped. A crash after running is an event, not a
   * start failure.
   */
  start(options?: StartOptions): Promise<void> {
    if (this.current !== 'new') return Promise.reject(new PlatformError('BAD_STATE', `start() on a topology that is ${this.current}`));
    const timeoutMs = options?.timeoutMs ?? this.plan.startTimeoutMs;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) return Promise.reject(new RangeError(`options.timeoutMs must be a positive number, got ${String(timeoutMs)}`));
    this.current = 'starting';
    return this.doStart(timeoutMs);
  }

  private async doStart(timeoutMs: number): Promise<void> {
    const gate = (this.startGate = deferred<void>());
    gate.promise.catch(() => {}); // awaited below; may be rejected before that
    const timer = this.setTimer(() => gate.reject(new PlatformError('START_TIMEOUT', `not every system was running after ${timeoutMs} ms`)), timeoutMs);
    try {
      for (const slot of this.slots) this.plan.control.setLive(slot.plan.index, SYSTEM_STATUS.STARTING);
      if (this.mode === 'threads') {
        for (const slot of this.slots) this.spawn(slot);
      } else {
        await this.launchDeterministic();
      }
      this.checkStarted();
      await gate.promise;
      this.current = 'running';
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      this.clearTimer(timer);
      this.startGate = undefined;
    }
  }

  private async launchDeterministic(): Promise<void> {
    const fns: SystemFunction[] = [];
    for (const slot of this.slots) {
      try {
        const mod = (await import(slot.plan.entry)) as Record<string, unknown>;
        const fn = mod[slot.plan.exportName];
        if (typeof fn !== 'function') {
          throw new PlatformError('BAD_CONFIG', `module ${slot.plan.entry} has no function export '${slot.plan.exportName}'`, { system: slot.plan.name });
        }
        fns.push(fn as SystemFunction);
      } catch (e) {
        slot.rt!.crash(e, 'start-failed');
        return;
      }
    }
    for (const [i, slot] of this.slots.entries()) {
      if (this.current !== 'starting') return;
      slot.rt!.launch(fns[i]!);
    }
  }

  private spawn(slot: Slot): void {
    let w: Worker;
    try {
      w = startWorker(slot.plan, this.execArgv);
    } catch (e) {
      this.ownerCrash(slot, 'start-failed', e);
      return;
    }
    slot.worker = w;
    w.on('message', (m: unknown) => this.onMessage(slot.plan.index, m as SystemMessage));
    w.on('messageerror', (e: unknown) => this.ownerCrash(slot, 'worker-error', e));
    w.on('error', (e: unknown) => this.ownerCrash(slot, 'worker-error', e));
    w.on('exit', (code: number) => {
      if (!slot.ended) {
        if (this.current === 'stopping' || this.current === 'stopped') this.markStopped(slot);
        else this.ownerCrash(slot, 'exit-code', new Error(`worker of system '${slot.plan.name}' exited with code ${code}`), code);
      }
    });
  }

  /** A message from a system (postMessage in threads, a call in deterministic mode). */
  private onMessage(index: number, msg: SystemMessage): void {
    const slot = this.slots[index];
    if (slot === undefined || typeof msg !== 'object' || msg === null) return;
    const system = slot.plan.name;
    const at = this.now();
    switch (msg.t) {
      case 'running':
        slot.running = true;
        this.emit({ type: 'running', system, at });
        this.checkStarted();
        break;
      case 'report':
        this.emit({ type: 'report', system, at, data: msg.data });
        break;
      case 'log':
        this.emit({ type: 'log', system, at, message: String(msg.message) });
        break;
      case 'done':
        if (!end(slot)) break;
        this.emit({ type: 'exit', system, at, status: msg.status === 'stopped' ? 'stopped' : 'exited' });
        break;
      case 'crash': {
        if (!end(slot)) break;
        const cause = reviveError(msg.error);
        const error = new PlatformError('SYSTEM_CRASHED', `system '${system}' crashed (${msg.reason}): ${cause.message}`, { system, cause });
        void slot.worker?.terminate();
        if (!slot.running) this.startGate?.reject(error);
        this.emit({ type: 'crash', system, at, reason: msg.reason, error, exitCode: undefined });
        break;
      }
    }
  }

  /** The owner saw a system die (worker error or exit, kill): status word, peer ring, event. */
  private ownerCrash(slot: Slot, reason: DownReason, e: unknown, exitCode?: number): void {
    if (!end(slot)) return;
    const i = slot.plan.index;
    this.plan.control.setDown(i, SYSTEM_STATUS.CRASHED, reasonWord(reason), exitCode ?? 0);
    this.ringPeerLine();
    const system = slot.plan.name;
    const message = typeof (e as { message?: unknown })?.message === 'string' ? (e as { message: string }).message : String(e);
    const error = new PlatformError('SYSTEM_CRASHED', `system '${system}' crashed (${reason}): ${message}`, { system, cause: e });
    if (!slot.running) this.startGate?.reject(error);
    this.emit({ type: 'crash', system, at: this.now(), reason, error, exitCode });
  }

  private markStopped(slot: Slot): void {
    if (!end(slot)) return;
    this.plan.control.setDown(slot.plan.index, SYSTEM_STATUS.STOPPED, DOWN_REASON.NONE);
    this.emit({ type: 'exit', system: slot.plan.name, at: this.now(), status: 'stopped' });
  }

  /** Rings the reserved peer-status line from the owner's side. */
  private ringPeerLine(): void {
    const c = this.plan.control;
    const w = c.lineWord(PEER_STATUS_LINE);
    Atomics.add(c.i32, w, 1);
    Atomics.notify(c.i32, w);
    this.sched?.ringLine(PEER_STATUS_LINE);
    // Systems blocked in waitSync on their own lines re-check (and can read peerStatus).
    c.wakeAll();
  }

  private checkStarted(): void {
    if (this.startGate !== undefined && this.slots.every((s) => s.running)) this.startGate.resolve();
  }

  /**
   * Fault injection: the system dies at once, as a board losing power. Its worker is
   * terminated (threads) or its handlers and timers dropped (deterministic); its status
   * word becomes CRASHED with reason `killed`, its peers are rung, and the owner gets a
   * crash event.
   */
  async kill(system: string): Promise<void> {
    const slot = this.slot(system);
    if (this.current !== 'running' && this.current !== 'starting') throw new PlatformError('BAD_STATE', `kill() on a topology that is ${this.current}`);
    if (slot.ended) return;
    slot.rt?.kill();
    this.ownerCrash(slot, 'killed', new Error('killed by the topology owner'));
    await slot.worker?.terminate();
  }

  /**
   * Stops every system: sets each stop word, wakes every waiter, aborts the systems'
   * signals, waits up to `stopTimeoutMs` for them to end, terminates the workers and
   * clears the owner's timers. Idempotent: a second call returns the same promise.
   */
  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  private async doStop(): Promise<void> {
    const was = this.current;
    this.current = 'stopping';
    this.startGate?.reject(new PlatformError('STOPPED', 'the topology was stopped while starting'));
    if (was !== 'new') {
      const c = this.plan.control;
      for (const slot of this.slots) c.askStop(slot.plan.index);
      c.wakeAll();
      if (this.mode === 'threads') {
        for (const slot of this.slots) {
          try {
            slot.worker?.postMessage({ t: 'stop' });
          } catch {
            // The worker is already gone.
          }
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          // A system still loading cannot react to the stop: terminate it at once.
          Promise.all(this.slots.map((s) => (s.worker === undefined || !s.running ? undefined : s.endedGate.promise))),
          new Promise<void>((resolve) => (timer = this.setTimer(resolve, this.plan.stopTimeoutMs))),
        ]);
        if (timer !== undefined) this.clearTimer(timer);
        await Promise.all(this.slots.map((s) => s.worker?.terminate()));
      } else {
        for (const slot of this.slots) slot.rt!.requestStop();
        try {
          // Bounded: a system that ignores the stop and keeps ringing is cut off.
          await this.sched!.runUntilIdle({ maxSteps: 100_000 });
        } catch {
          // A system that keeps ringing forever is cut off here; it is marked stopped below.
        }
        for (const slot of this.slots) if (!slot.ended) slot.rt!.kill();
      }
      for (const slot of this.slots) this.markStopped(slot);
    }
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.current = 'stopped';
    this.stoppedGate.resolve();
  }

  /** A system's status, read from its status word. */
  status(system: string): SystemStatus {
    return statusName(this.plan.control.status(this.slot(system).plan.index));
  }

  /** A line's counters, read from its block of the control region. */
  lineStats(line: string): LineStats {
    const j = this.plan.lines.get(line);
    if (j === undefined) throw new PlatformError('BAD_CONFIG', `no line named '${String(line)}'`);
    return this.plan.control.lineStats(j);
  }

  /**
   * The owner's view of a region (a debugger's probe): an `ArrayBufferMemory` over the
   * whole region at `base` (default 0).
   */
  memory(region: string, base = 0): ArrayBufferMemory {
    const r = this.plan.regions.get(region);
    if (r === undefined) throw new PlatformError('BAD_CONFIG', `no region named '${String(region)}'`);
    return new ArrayBufferMemory(r.buffer, { base, name: `owner:${region}` });
  }

  /** The control region's bytes (status and line blocks; see {@link CONTROL_LAYOUT}). */
  get controlRegion(): SharedArrayBuffer {
    return this.plan.control.buffer;
  }

  /**
   * Resolves with the first event (from index `options.from`) that `predicate` accepts,
   * already received or to come. In deterministic mode it drives the scheduler (tasks,
   * then virtual time) until the event shows up, and rejects with `IDLE` if nothing is
   * left to run. Rejects with `TIMEOUT`, `ABORTED`, or `STOPPED` once the topology has
   * stopped without such an event.
   */
  waitForEvent(predicate: (event: TopologyEvent) => boolean, options?: WaitForEventOptions): Promise<TopologyEvent> {
    if (typeof predicate !== 'function') return Promise.reject(new TypeError('predicate must be a function'));
    const from = options?.from ?? 0;
    const timeoutMs = options?.timeoutMs ?? Infinity;
    if (typeof from !== 'number' || !Number.isInteger(from) || from < 0) return Promise.reject(new RangeError(`options.from must be an integer ≥ 0, got ${String(from)}`));
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) return Promise.reject(new RangeError(`options.timeoutMs must be ≥ 0, got ${String(timeoutMs)}`));
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) return Promise.reject(new TypeError('options.signal must be an AbortSignal'));
    const find = (): TopologyEvent | undefined => {
      for (let k = from; k < this.log.length; k++) if (predicate(this.log[k]!)) return this.log[k];
      return undefined;
    };
    return this.sched !== undefined ? this.driveUntil(find, timeoutMs, signal) : this.listenUntil(find, predicate, timeoutMs, signal);
  }

  private async driveUntil(find: () => TopologyEvent | undefined, timeoutMs: number, signal: AbortSignal | undefined): Promise<TopologyEvent> {
    const sched = this.sched!;
    const deadline = sched.now + timeoutMs;
    for (;;) {
      const e = find();
      if (e !== undefined) return e;
      if (signal?.aborted) throw new PlatformError('ABORTED', 'waitForEvent aborted', { cause: signal.reason });
      if (await sched.step()) continue;
      if (this.current === 'stopped') throw new PlatformError('STOPPED', 'the topology stopped without such an event');
      if (!sched.fireNext(deadline)) {
        if (sched.nextDue === undefined) throw new PlatformError('IDLE', 'nothing is left to run and no such event happened');
        throw new PlatformError('TIMEOUT', `no such event within ${timeoutMs} virtual ms`);
      }
    }
  }

  private listenUntil(
    find: () => TopologyEvent | undefined,
    predicate: (e: TopologyEvent) => boolean,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<TopologyEvent> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    if (signal?.aborted) return Promise.reject(new PlatformError('ABORTED', 'waitForEvent aborted', { cause: signal.reason }));
    if (this.current === 'stopped') return Promise.reject(new PlatformError('STOPPED', 'the topology stopped without such an event'));
    return new Promise<TopologyEvent>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        off();
        if (timer !== undefined) this.clearTimer(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const off = this.onEvent((e) => {
        if (!predicate(e)) return;
        done();
        resolve(e);
      });
      const onAbort = (): void => {
        done();
        reject(new PlatformError('ABORTED', 'waitForEvent aborted', { cause: signal!.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(timeoutMs)) {
        timer = this.setTimer(() => {
          done();
          reject(new PlatformError('TIMEOUT', `no such event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      void this.stoppedGate.promise.then(() => {
        const e = find();
        done();
        if (e !== undefined) resolve(e);
        else reject(new PlatformError('STOPPED', 'the topology stopped without such an event'));
      });
    });
  }

  private slot(system: string): Slot {
    const i = this.systems.indexOf(system);
    if (i < 0) throw new PlatformError('BAD_CONFIG', `no system named '${String(system)}'`);
    return this.slots[i]!;
  }

  private now(): number {
    return this.sched !== undefined ? this.sched.now : performance.now() - this.t0;
  }

  private emit(e: TopologyEvent): void {
    this.log.push(e);
    for (const l of [...this.listeners]) {
      const r = l(e) as unknown;
      if (isThenable(r)) r.then(undefined, () => {});
    }
  }

  private setTimer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.min(ms, 0x7fff_ffff));
    this.timers.add(t);
    return t;
  }

  private clearTimer(t: ReturnType<typeof setTimeout>): void {
    clearTimeout(t);
    this.timers.delete(t);
  }
}
