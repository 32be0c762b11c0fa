// What both modes share of a running system: its context (regions, lines, peers,
// reports), its life (launch → finish or crash) and the checks on line options. The
// mode-specific parts (how a line waits, what a timer is, how a message reaches the
// owner) are in thread-runtime.ts and det-runtime.ts.
import { ArrayBufferMemory, RegionMemory } from '@x/vring';
import { CONTROL_LAYOUT as L, DOWN_REASON, PEER_STATUS_LINE, SYSTEM_STATUS, reasonName, reasonWord, statusName, type DownReason, type SystemStatus } from '../control.js';
import { PlatformError } from '../errors.js';
import type {
  Line,
  LineHandler,
  LineStats,
  ListenOptions,
  Listener,
  PeerDownEvent,
  SleepOptions,
  SystemContext,
  SystemFunction,
  TopologyMode,
  WaitMode,
  WaitModeOptions,
  WaitOptions,
  WaitSyncOptions,
  WaitSyncResult,
} from '../types.js';
import { ControlBlock, isDown } from './control-block.js';
import type { SystemPlan } from './plan.js';

/** An error as it crosses from a system to the owner: plain data. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
}

/** What a system sends its owner (postMessage in threads, a call in deterministic mode). */
export type SystemMessage =
  | { readonly t: 'running' }
  | { readonly t: 'report'; readonly data: unknown }
  | { readonly t: 'log'; readonly message: string }
  | { readonly t: 'done'; readonly status: 'exited' | 'stopped' }
  | { readonly t: 'crash'; readonly reason: DownReason; readonly error: SerializedError };

export function serializeError(e: unknown): SerializedError {
  if (typeof e === 'object' && e !== null) {
    const o = e as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown };
    return {
      name: typeof o.name === 'string' ? o.name : 'Error',
      message: typeof o.message === 'string' ? o.message : String(e),
      ...(typeof o.stack === 'string' ? { stack: o.stack } : {}),
      ...(typeof o.code === 'string' ? { code: o.code } : {}),
    };
  }
  return { name: 'Error', message: String(e) };
}

/** A copy of a system's error, with its name and code, so structural guards still work. */
export function reviveError(s: SerializedError): Error {
  const e = new Error(s.message) as Error & { code?: string };
  e.name = s.name;
  if (s.stack !== undefined) e.stack = s.stack;
  if (s.code !== undefined) e.code = s.code;
  return e;
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Something a system owns that ends with it (a listener, a timer, a pending wait). */
export interface Resource {
  close(): void;
}

export interface ModeSettings {
  readonly mode: WaitMode;
  /** Spin window, milliseconds. */
  readonly spinMs: number;
  /** Poll budget, milliseconds. */
  readonly budgetMs: number;
}

const WAIT_MODES: readonly WaitMode[] = ['sleep', 'poll', 'adaptive'];

function checkMicros(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a finite number ≥ 0, got ${v}`);
  return v;
}

export function modeSettings(options: WaitModeOptions | undefined, where: string): ModeSettings {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError(`${where} must be an object`);
  const mode = options?.mode ?? 'sleep';
  if (typeof mode !== 'string') throw new TypeError(`${where}.mode must be a string`);
  if (!WAIT_MODES.includes(mode)) throw new RangeError(`${where}.mode must be 'sleep', 'poll' or 'adaptive', got '${mode}'`);
  return {
    mode,
    spinMs: checkMicros(`${where}.spinUs`, options?.spinUs, 50) / 1000,
    budgetMs: checkMicros(`${where}.budgetUs`, options?.budgetUs, 100) / 1000,
  };
}

export function checkTimeout(name: string, v: unknown): number {
  if (v === undefined) return Infinity;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!(v >= 0)) throw new RangeError(`${name} must be ≥ 0, got ${v}`);
  return v;
}

export function checkSeen(v: unknown): number {
  if (typeof v !== 'number') throw new TypeError(`seen must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0xffff_ffff) throw new RangeError(`seen must be a counter value in [0, 2^32), got ${v}`);
  return v | 0;
}

export function checkSignal(name: string, s: unknown): AbortSignal | undefined {
  if (s === undefined) return undefined;
  if (!(s instanceof AbortSignal)) throw new TypeError(`${name} must be an AbortSignal`);
  return s;
}

export function stoppedError(system: string): PlatformError {
  return new PlatformError('STOPPED', `system '${system}' is stopping`, { system });
}

export function abortedError(system: string, signal: AbortSignal): PlatformError {
  return new PlatformError('ABORTED', `wait aborted in system '${system}'`, { system, cause: signal.reason });
}

export function timeoutError(system: string, line: string, ms: number): PlatformError {
  return new PlatformError('TIMEOUT', `no ring on line '${line}' within ${ms} ms (system '${system}')`, { system });
}

/** The parts of a line both modes share: the counter word and the statistics words. */
export abstract class LineBase implements Line {
  protected readonly i32: Int32Array;
  /** Int32 index of the counter word. */
  protected readonly word: number;

  constructor(
    protected readonly rt: BaseRuntime,
    readonly name: string,
    readonly index: number,
  ) {
    this.i32 = rt.control.i32;
    this.word = rt.control.lineWord(index);
  }

  count(): number {
    return Atomics.load(this.i32, this.word) >>> 0;
  }

  stats(): LineStats {
    return this.rt.control.lineStats(this.index);
  }

  protected bump(field: number): void {
    Atomics.add(this.i32, this.word + (field >>> 2), 1);
  }

  protected checkHandler(handler: unknown): asserts handler is LineHandler {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
  }

  /** Runs a handler; a throw or a rejected promise crashes the system. */
  protected callHandler(handler: LineHandler, rings: number): boolean {
    this.bump(L.LINE_WAKEUPS);
    try {
      const r = handler(rings);
      if (isThenable(r)) r.then(undefined, (e: unknown) => this.rt.crash(e, 'threw'));
      return true;
    } catch (e) {
      this.rt.crash(e, 'threw');
      return false;
    }
  }

  abstract ring(): void;
  abstract listen(handler: LineHandler, options?: ListenOptions): Listener;
  abstract wait(seen: number, options?: WaitOptions): Promise<number>;
  abstract waitSync(seen: number, options?: WaitSyncOptions): WaitSyncResult;
}

export abstract class BaseRuntime implements SystemContext {
  readonly name: string;
  readonly index: number;
  readonly mode: TopologyMode;
  readonly config: unknown;
  readonly peers: readonly string[];
  readonly bus: RegionMemory;
  readonly control: ControlBlock;
  readonly signal: AbortSignal;
  /** Listeners, timers and waits that end with the system. */
  readonly resources = new Set<Resource>();
  protected readonly plan: SystemPlan;
  protected readonly peerLine: LineBase;
  protected readonly ownLines: LineBase[] = [];
  private readonly controller = new AbortController();
  private readonly regionMap = new Map<string, ArrayBufferMemory>();
  private readonly lineMap = new Map<string, LineBase>();
  private readonly peerListeners = new Set<(e: PeerDownEvent) => void>();
  private readonly snapshot: Int32Array;
  private phase: 'new' | 'running' | 'done' = 'new';

  constructor(plan: SystemPlan) {
    this.plan = plan;
    this.name = plan.name;
    this.index = plan.index;
    this.mode = plan.mode;
    this.config = plan.config;
    this.peers = plan.systems.filter((_, i) => i !== plan.index);
    this.control = new ControlBlock(plan.control, plan.systems.length, plan.lineCount);
    this.signal = this.controller.signal;
    this.snapshot = new Int32Array(plan.systems.length);
    this.bus = new RegionMemory({ name: `${plan.name} bus`, maxRegions: Math.max(1, plan.regions.length) });
    for (const r of plan.regions) {
      const mem = new ArrayBufferMemory(r.buffer, { base: r.base, byteOffset: r.offset, byteLength: r.size, name: `${plan.name}:${r.name}` });
      this.regionMap.set(r.name, mem);
      this.bus.map({ busAddr: r.base, size: r.size, target: mem, targetAddr: r.base, name: r.name });
    }
    this.peerLine = this.makeLine('(peer status)', PEER_STATUS_LINE);
    this.ownLines.push(this.peerLine);
    for (const l of plan.lines) {
      const line = this.makeLine(l.name, l.index);
      this.lineMap.set(l.name, line);
      this.ownLines.push(line);
    }
  }

  protected abstract makeLine(name: string, index: number): LineBase;
  /** Sends a message to the owner. */
  protected abstract post(msg: SystemMessage): void;
  /** Wakes this system's own waiters so they see the stop. */
  protected abstract onStopAsked(): void;
  abstract now(): number;
  abstract setTimer(ms: number, callback: () => void): () => void;

  /** True once the system has finished, crashed or been killed: it rings nothing more. */
  get dead(): boolean {
    return this.phase === 'done';
  }

  get stopping(): boolean {
    if (this.controller.signal.aborted) return true;
    if (this.control.stopAsked(this.index)) {
      this.requestStop();
      return true;
    }
    return false;
  }

  requestStop(): void {
    if (this.controller.signal.aborted) return;
    this.controller.abort(stoppedError(this.name));
    this.onStopAsked();
  }

  untilStopped(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  region(name: string): ArrayBufferMemory {
    const m = this.regionMap.get(name);
    if (m === undefined) throw new PlatformError('BAD_CONFIG', `system '${this.name}' has no region named '${String(name)}'`, { system: this.name });
    return m;
  }

  line(name: string): Line {
    const l = this.lineMap.get(name);
    if (l === undefined) throw new PlatformError('BAD_CONFIG', `system '${this.name}' has no line named '${String(name)}'`, { system: this.name });
    return l;
  }

  report(data: unknown): void {
    if (this.dead) return;
    try {
      this.post({ t: 'report', data });
    } catch (e) {
      if ((e as { name?: unknown })?.name === 'DataCloneError') throw new TypeError('report data must be structured-clone-able plain data', { cause: e });
      throw e;
    }
  }

  log(message: string): void {
    if (typeof message !== 'string') throw new TypeError(`message must be a string, got ${typeof message}`);
    if (this.dead) return;
    this.post({ t: 'log', message });
  }

  peerStatus(name: string): SystemStatus {
    const i = this.plan.systems.indexOf(name);
    if (i < 0) throw new PlatformError('BAD_CONFIG', `no system named '${String(name)}'`, { system: this.name });
    return statusName(this.control.status(i));
  }

  onPeerDown(listener: (event: PeerDownEvent) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const l = (e: PeerDownEvent): void => listener(e);
    this.peerListeners.add(l);
    return () => {
      this.peerListeners.delete(l);
    };
  }

  sleep(ms: number, options?: SleepOptions): Promise<void> {
    const t = checkTimeout('ms', ms);
    const signal = checkSignal('options.signal', options?.signal);
    return new Promise<void>((resolve, reject) => {
      if (this.stopping) return reject(stoppedError(this.name));
      if (signal?.aborted) return reject(abortedError(this.name, signal));
      const cleanup = (): void => {
        cancel();
        this.signal.removeEventListener('abort', onStop);
        signal?.removeEventListener('abort', onAbort);
      };
      const onStop = (): void => {
        cleanup();
        reject(stoppedError(this.name));
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortedError(this.name, signal!));
      };
      const cancel = this.setTimer(t, () => {
        cleanup();
        resolve();
      });
      this.signal.addEventListener('abort', onStop, { once: true });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Reads every peer's status word and reports transitions into a down state. */
  protected scanPeers(): void {
    for (let i = 0; i < this.snapshot.length; i++) {
      if (i === this.index) continue;
      const w = this.control.status(i);
      if (w === this.snapshot[i]) continue;
      this.snapshot[i] = w;
      if (!isDown(w)) continue;
      const status = statusName(w) as PeerDownEvent['status'];
      const reason = status === 'crashed' ? reasonName(this.control.reason(i)) : undefined;
      const event: PeerDownEvent = {
        peer: this.plan.systems[i]!,
        status,
        code: status === 'crashed' ? 'SYSTEM_CRASHED' : status === 'stopped' ? 'STOPPED' : undefined,
        reason,
        exitCode: reason === 'exit-code' ? this.control.exitCode(i) : undefined,
      };
      for (const l of [...this.peerListeners]) l(event);
    }
  }

  /** Starts the system: status RUNNING, tell the owner, then call its function. */
  launch(fn: SystemFunction): void {
    if (this.phase !== 'new') return;
    this.phase = 'running';
    if (!this.control.setLive(this.index, SYSTEM_STATUS.RUNNING)) {
      // Killed or stopped while its module was loading.
      this.phase = 'done';
      this.dispose();
      return;
    }
    this.peerLine.ring();
    this.post({ t: 'running' });
    this.resources.add(this.peerLine.listen(() => this.scanPeers(), { mode: 'sleep' }));
    let r: unknown;
    try {
      r = fn(this);
    } catch (e) {
      this.crash(e, 'threw');
      return;
    }
    Promise.resolve(r).then(
      () => this.finish(),
      (e: unknown) => this.crash(e, 'threw'),
    );
  }

  /** The system's function settled: EXITED, or STOPPED if a stop was asked. */
  finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    // Read without aborting the signal: the system's code is done, nothing should run.
    const status = this.signal.aborted || this.control.stopAsked(this.index) ? 'stopped' : 'exited';
    this.control.setDown(this.index, status === 'stopped' ? SYSTEM_STATUS.STOPPED : SYSTEM_STATUS.EXITED, DOWN_REASON.NONE);
    this.ringPeers();
    this.post({ t: 'done', status });
    this.dispose();
  }

  /** The system failed: CRASHED in its status word, peers rung, owner told. */
  crash(e: unknown, reason: DownReason): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.control.setDown(this.index, SYSTEM_STATUS.CRASHED, reasonWord(reason));
    this.ringPeers();
    this.post({ t: 'crash', reason, error: serializeError(e) });
    this.dispose();
  }

  /** Ends the system without a word to anyone (the owner killed it). */
  kill(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.dispose();
  }

  /** Rings the peer-status line even though this system is now dead. */
  protected abstract ringPeers(): void;

  protected dispose(): void {
    for (const r of [...this.resources]) r.close();
    this.resources.clear();
  }
}
