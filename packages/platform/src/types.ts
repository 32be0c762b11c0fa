import type { ArrayBufferMemory, GuestMemory } from '@x/vring';
import type { DownReason, SystemStatus } from './control.js';
import type { PlatformError, PlatformErrorCode } from './errors.js';

/**
 * Where a topology runs its systems: all in the owner's thread on a deterministic
 * scheduler, or each in its own `worker_thread`.
 *
 * @public
 */
export type TopologyMode = 'deterministic' | 'threads';

/**
 * How a receiver waits for a doorbell (threads mode; the deterministic mode delivers
 * every ring as a queued task whatever the mode).
 *
 * - `sleep`: `Atomics.waitAsync`; the event loop is never blocked.
 * - `poll`: checks the word in a loop for up to `budgetUs` µs of wall time, then yields
 *   to the event loop (`setImmediate`) and goes on: lowest latency, one busy core. The
 *   thread's promise continuations run between batches of checks (so a handler's
 *   follow-up that sends the next message is not held back); immediates, timers and
 *   messages run at each yield.
 * - `adaptive`: spins for `spinUs` µs (wall time), then sleeps as `sleep` does. A spin
 *   blocks the thread's event loop, so before it the wait yields once (`setImmediate`) to
 *   let already-queued work run (often that work sends what the awaited ring answers),
 *   and it yields again every `budgetUs` µs while it spins.
 *
 * @public
 */
export type WaitMode = 'sleep' | 'poll' | 'adaptive';

/** A named shared memory region a topology creates. @public */
export interface RegionSpec {
  /** Unique name. */
  readonly name: string;
  /** Bytes (a positive integer). */
  readonly size: number;
  /**
   * Alignment (a power of two) of every base address a system may see the region at,
   * as a BAR or carveout is aligned to its size class. Default 1.
   */
  readonly align?: number;
}

/** How one system sees a region: at which bus address, and which part of it. @public */
export interface RegionAttachment {
  /** The region's name. */
  readonly region: string;
  /** The bus address at which this system sees byte `offset` of the region. */
  readonly base: number;
  /** First byte of the region this system sees. Default 0. */
  readonly offset?: number;
  /** Bytes this system sees. Default: the rest of the region. */
  readonly size?: number;
}

/** One system of a topology. @public */
export interface SystemSpec {
  /** Unique name. */
  readonly name: string;
  /**
   * URL of the module that holds the system's function (`file:` URL or a path). A
   * `.ts` module runs in a worker through tsx (an optional peer dependency).
   */
  readonly entry: URL | string;
  /** Name of the export that is the {@link SystemFunction}. Default `default`. */
  readonly export?: string;
  /** The regions this system sees, each at its own bus address. */
  readonly regions?: readonly RegionAttachment[];
  /** Names of the lines this system can ring and listen to. */
  readonly lines?: readonly string[];
  /** Plain data handed to the system as `ctx.config` (structured-cloned; no functions). */
  readonly config?: unknown;
}

/** The declaration of a topology. @public */
export interface TopologyConfig {
  /** Where the systems run. */
  readonly mode: TopologyMode;
  /** Shared memory regions. */
  readonly regions?: readonly RegionSpec[];
  /** Doorbell / interrupt lines, by name. */
  readonly lines?: readonly string[];
  /** The systems, started in this order. */
  readonly systems: readonly SystemSpec[];
  /** Milliseconds `start()` waits for every system to be running. Default 20 000. */
  readonly startTimeoutMs?: number;
  /** Milliseconds `stop()` lets systems end on their own before terminating workers. Default 2 000. */
  readonly stopTimeoutMs?: number;
  /**
   * Period, in milliseconds, of the safety-net re-check of every sleep on a line: a
   * sleeper is woken at least this often to re-check its word, deadline and system,
   * and a ring whose notify never arrived is found within two periods (counted as a
   * recovery, see {@link LineStats.recoveries}). Default 1 000.
   */
  readonly recheckMs?: number;
  /**
   * Node options of the workers. Default: `--conditions=@x/source` when this package
   * runs from its TypeScript sources or the owner was started with that condition.
   */
  readonly execArgv?: readonly string[];
}

/**
 * Counters of one line, read from its block of the control region. Each wraps at
 * 2^32.
 *
 * @public
 */
export interface LineStats {
  /** Rings (the doorbell counter). */
  readonly rings: number;
  /** Times a receiver saw the counter move (handler runs, wait returns). */
  readonly wakeups: number;
  /** Wake-ups seen without sleeping: while spinning or polling, or already moved. */
  readonly spinHits: number;
  /** Times a receiver blocked in `Atomics.waitAsync` or `Atomics.wait`. */
  readonly sleeps: number;
  /** Wake-ups found only by the bounded re-check after a sleep timed out (lost notifies). */
  readonly recoveries: number;
}

/** Spin and poll settings shared by the waiting calls of a {@link Line}. @public */
export interface WaitModeOptions {
  /** How to wait. Default `sleep`. */
  readonly mode?: WaitMode;
  /** `adaptive`: microseconds to spin before sleeping. Default 50. */
  readonly spinUs?: number;
  /**
   * `poll`: microseconds of polling between two yields to the event loop. Also bounds
   * how long a listener runs handlers back to back before yielding. Default 100.
   */
  readonly budgetUs?: number;
}

/** Options of {@link Line.listen}. @public */
export interface ListenOptions extends WaitModeOptions {
  /**
   * The counter value already handled. Default 0 (the counter's reset value), so rings
   * made before the listener existed are seen once, as a latched doorbell bit is.
   */
  readonly seen?: number;
  /** Closes the listener when aborted. */
  readonly signal?: AbortSignal;
}

/** Options of {@link Line.wait}. @public */
export interface WaitOptions extends WaitModeOptions {
  /** Milliseconds before the wait rejects with `TIMEOUT`. Default: no limit. */
  readonly timeoutMs?: number;
  /** Rejects the wait with `ABORTED` when aborted. */
  readonly signal?: AbortSignal;
}

/** Options of {@link Line.waitSync}. @public */
export interface WaitSyncOptions {
  /** Milliseconds before returning `timed-out`. Default: no limit. */
  readonly timeoutMs?: number;
  /** Microseconds to spin before blocking. Default 0. */
  readonly spinUs?: number;
}

/**
 * What {@link Line.waitSync} ended with: the counter moved (`ok`), the time ran out,
 * or the system is being stopped.
 *
 * @public
 */
export type WaitSyncResult = 'ok' | 'timed-out' | 'stopped';

/**
 * A line's handler: called each time the counter moved since it last looked, with how
 * many rings that covers (≥ 1; rings coalesce, none is lost). A returned promise that
 * rejects crashes the system, as a throw does.
 *
 * @public
 */
export type LineHandler = (rings: number) => void | Promise<void>;

/** A registered {@link LineHandler}. @public */
export interface Listener {
  /** True once closed. */
  readonly closed: boolean;
  /** Stops calling the handler. Idempotent. */
  close(): void;
}

/**
 * One system's end of a doorbell / interrupt line: a counter word in the control
 * region. Ringing adds 1 to it and wakes sleepers (`Atomics.add`, then `Atomics.notify`
 * when a receiver sleeps on it);
 * a receiver acts whenever the counter differs from the value it last handled, so
 * rings may coalesce but are never lost. The futex pattern: read {@link Line.count}
 * before checking your condition, then wait with that value.
 *
 * @public
 */
export interface Line {
  /** The line's name. */
  readonly name: string;
  /** The line's index in the control region. */
  readonly index: number;
  /** The counter (rings so far, modulo 2^32). */
  count(): number;
  /** Rings the line: like writing an MSI / doorbell register, or sending an IPI. */
  ring(): void;
  /** Calls `handler` every time the counter moved since it last looked. */
  listen(handler: LineHandler, options?: ListenOptions): Listener;
  /**
   * Resolves with the counter once it differs from `seen`. Rejects with a
   * {@link PlatformError}: `TIMEOUT`, `ABORTED`, or `STOPPED` when the system stops.
   */
  wait(seen: number, options?: WaitOptions): Promise<number>;
  /**
   * Blocks the thread (`Atomics.wait`) until the counter differs from `seen`, for code
   * that runs its own loop in a worker. Throws `UNSUPPORTED` in deterministic mode.
   */
  waitSync(seen: number, options?: WaitSyncOptions): WaitSyncResult;
  /** The line's counters. */
  stats(): LineStats;
}

/**
 * A peer system went down, as read from its status word after a ring of the
 * peer-status line.
 *
 * @public
 */
export interface PeerDownEvent {
  /** The peer's name. */
  readonly peer: string;
  /** How it ended. */
  readonly status: 'exited' | 'stopped' | 'crashed';
  /** `SYSTEM_CRASHED` for a crash, `STOPPED` for a stop, undefined for a normal exit. */
  readonly code: PlatformErrorCode | undefined;
  /** Why it went down, for a crash. */
  readonly reason: DownReason | undefined;
  /** The worker's exit code, when the reason is `exit-code`. */
  readonly exitCode: number | undefined;
}

/** Options of {@link SystemContext.sleep}. @public */
export interface SleepOptions {
  /** Rejects the sleep with `ABORTED` when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * What a system's function gets: its memory, its lines, its stop signal, a channel of
 * plain data to the topology owner, its peers' status and a clock. Nothing in it is
 * shared with another system: two systems meet only in the bytes of regions and the
 * words of lines.
 *
 * @public
 */
export interface SystemContext<C = unknown> {
  /** This system's name. */
  readonly name: string;
  /** Where it runs. */
  readonly mode: TopologyMode;
  /** The system's `config`, structured-cloned. */
  readonly config: C;
  /** Aborted when the topology stops the system. */
  readonly signal: AbortSignal;
  /** True once a stop was asked (reads the stop word, so it works inside a blocking loop). */
  readonly stopping: boolean;
  /** Resolves when a stop is asked. */
  untilStopped(): Promise<void>;
  /** A region as this system sees it: an `ArrayBufferMemory` at its attachment base. */
  region(name: string): ArrayBufferMemory;
  /** This system's whole bus: every attached region at its base address. */
  readonly bus: GuestMemory;
  /** One of this system's lines. Throws `BAD_CONFIG` for a line it did not attach. */
  line(name: string): Line;
  /**
   * Sends a result to the topology owner: bytes or any structured-clone-able plain
   * data (copied). Throws a TypeError for data that cannot be cloned.
   */
  report(data: unknown): void;
  /** Sends a log line to the topology owner. */
  log(message: string): void;
  /** The other systems' names. */
  readonly peers: readonly string[];
  /** A system's status, read from its status word. */
  peerStatus(name: string): SystemStatus;
  /**
   * Calls `listener` when a peer goes down (exits, is stopped, or crashes). Returns a
   * function that removes it. Register early: transitions already handled by this
   * system before the call are not replayed (read {@link SystemContext.peerStatus}).
   */
  onPeerDown(listener: (event: PeerDownEvent) => void): () => void;
  /** Milliseconds on this system's clock: wall time in threads, virtual in deterministic mode. */
  now(): number;
  /** Resolves after `ms` milliseconds of this system's clock; rejects `STOPPED` on stop. */
  sleep(ms: number, options?: SleepOptions): Promise<void>;
  /** Calls `callback` after `ms` milliseconds of this system's clock. Returns a cancel function. */
  setTimer(ms: number, callback: () => void): () => void;
}

/**
 * A system: what its module exports. It runs until the returned promise settles (a
 * rejection or throw is a crash). To serve until stopped, `await ctx.untilStopped()`.
 *
 * @public
 */
export type SystemFunction<C = unknown> = (ctx: SystemContext<C>) => Promise<void> | void;

/** Fields shared by every {@link TopologyEvent}. @public */
export interface TopologyEventBase {
  /** The system it is about. */
  readonly system: string;
  /**
   * Milliseconds since the topology was created: the owner's wall clock in threads,
   * the virtual clock in deterministic mode.
   */
  readonly at: number;
}

/** A system's function has been called. @public */
export interface RunningEvent extends TopologyEventBase {
  /** Discriminant. */
  readonly type: 'running';
}

/** A system called {@link SystemContext.report}. @public */
export interface ReportEvent extends TopologyEventBase {
  /** Discriminant. */
  readonly type: 'report';
  /** A copy of the data. */
  readonly data: unknown;
}

/** A system called {@link SystemContext.log}. @public */
export interface LogEvent extends TopologyEventBase {
  /** Discriminant. */
  readonly type: 'log';
  /** The line. */
  readonly message: string;
}

/** A system ended without crashing. @public */
export interface ExitEvent extends TopologyEventBase {
  /** Discriminant. */
  readonly type: 'exit';
  /** `exited` on its own, or `stopped` by the topology. */
  readonly status: 'exited' | 'stopped';
}

/** A system crashed. @public */
export interface CrashEvent extends TopologyEventBase {
  /** Discriminant. */
  readonly type: 'crash';
  /** How. */
  readonly reason: DownReason;
  /** A `SYSTEM_CRASHED` error whose `cause` is (a copy of) what the system threw. */
  readonly error: PlatformError;
  /** The worker's exit code, when the reason is `exit-code`. */
  readonly exitCode: number | undefined;
}

/** What the topology owner learns about its systems, in order. @public */
export type TopologyEvent = RunningEvent | ReportEvent | LogEvent | ExitEvent | CrashEvent;

/** Options of {@link DeterministicScheduler.runUntilIdle} and friends. @public */
export interface RunOptions {
  /** Most tasks to run before failing with `STEP_LIMIT`. Default 10 000 000. */
  readonly maxSteps?: number;
}

/**
 * The scheduler of a deterministic topology: every ring, timer and wake-up is a task
 * in one FIFO queue on a virtual clock, run only when the test steps it, so two runs
 * of the same systems produce the same order of events.
 *
 * @public
 */
export interface DeterministicScheduler {
  /** Virtual milliseconds since the topology was created. */
  readonly now: number;
  /** Tasks ready to run. */
  readonly pending: number;
  /** Timers not yet due. */
  readonly timers: number;
  /** Tasks run so far. */
  readonly steps: number;
  /** Runs one ready task and the promise reactions it caused. False when none was ready. */
  step(): Promise<boolean>;
  /** Runs ready tasks until none is left (virtual time does not move). Resolves with the count. */
  runUntilIdle(options?: RunOptions): Promise<number>;
  /**
   * Moves the virtual clock forward by `ms`, firing due timers in order and running
   * every ready task after each. Resolves with the count of tasks run.
   */
  advance(ms: number, options?: RunOptions): Promise<number>;
}

/** Options of {@link Topology.waitForEvent}. @public */
export interface WaitForEventOptions {
  /**
   * Milliseconds to wait: wall time in threads; in deterministic mode virtual time, the
   * scheduler being driven until the event shows up. Default: no limit.
   */
  readonly timeoutMs?: number;
  /** Index in {@link Topology.events} to start looking at. Default 0. */
  readonly from?: number;
  /** Rejects with `ABORTED` when aborted. */
  readonly signal?: AbortSignal;
}

/** Options of {@link Topology.start}. @public */
export interface StartOptions {
  /** Overrides {@link TopologyConfig.startTimeoutMs}. */
  readonly timeoutMs?: number;
}

/** The life cycle of a {@link Topology}. @public */
export type TopologyState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';
