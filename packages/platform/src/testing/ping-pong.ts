import { PlatformError, Topology, type LineStats, type TopologyEvent, type TopologyMode, type WaitMode } from '@x/platform';
import type { PingPongConfig, PingPongPhase, PingPongReport } from './ping-pong-system.js';

/**
 * URL of the ping-pong system module ({@link pingPongSystem}), to use as a system's
 * `entry` in your own topologies.
 *
 * @public
 */
export const PING_PONG_SYSTEM: URL = new URL(`./ping-pong-system${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** How one phase waits, as given to {@link runPingPong} (defaults filled in). @public */
export interface PingPongPhaseOptions {
  /** See {@link PingPongPhase.style}. Default `wait`. */
  readonly style?: PingPongPhase['style'];
  /** Wait mode. Default `sleep`. */
  readonly mode?: WaitMode;
  /** Spin window, µs. Default 50 for `adaptive`, 0 otherwise. */
  readonly spinUs?: number;
  /** Poll budget, µs. Default 100. */
  readonly budgetUs?: number;
}

/** Options of {@link runPingPong}. @public */
export interface PingPongOptions extends PingPongPhaseOptions {
  /** Where the two systems run. Default `threads`. */
  readonly topology?: TopologyMode;
  /** Timed round trips (two handoffs each) per phase, after one handshake. Default 1000. */
  readonly rounds?: number;
  /**
   * Phases run one after the other in the same two systems (one start-up for all).
   * Default: one phase from the options above.
   */
  readonly phases?: readonly PingPongPhaseOptions[];
  /** Each single wait fails after this many ms (a lost wake-up fails, never hangs). Default 10 000. */
  readonly timeoutMs?: number;
  /** Bound on the whole run, ms. Default 120 000. */
  readonly deadlineMs?: number;
}

/** What one phase of {@link runPingPong} measured. @public */
export interface PingPongPhaseResult {
  /** The phase, defaults filled in. */
  readonly phase: PingPongPhase;
  /** Timed round trips. */
  readonly rounds: number;
  /** Milliseconds they took (the ping system's clock: virtual in deterministic mode). */
  readonly ms: number;
  /** Microseconds per round trip. */
  readonly usPerRoundTrip: number;
}

/** What {@link runPingPong} measured. @public */
export interface PingPongResult {
  /** One entry per phase. */
  readonly phases: readonly PingPongPhaseResult[];
  /** Counters of the `ping` line (ping → pong), all phases. */
  readonly ping: LineStats;
  /** Counters of the `pong` line (pong → ping), all phases. */
  readonly pong: LineStats;
  /** Every event the owner received. */
  readonly events: readonly TopologyEvent[];
}

function phaseOf(o: PingPongPhaseOptions): PingPongPhase {
  const mode = o.mode ?? 'sleep';
  return { style: o.style ?? 'wait', mode, spinUs: o.spinUs ?? (mode === 'adaptive' ? 50 : 0), budgetUs: o.budgetUs ?? 100 };
}

/**
 * Runs a doorbell ping-pong between two systems through two lines and checks that
 * every handoff arrives exactly once. Rejects with the `SYSTEM_CRASHED` error of a
 * side that saw a lost or doubled ring, or whose wait timed out.
 *
 * @public
 */
export async function runPingPong(options: PingPongOptions = {}): Promise<PingPongResult> {
  const rounds = options.rounds ?? 1000;
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`options.rounds must be an integer ≥ 1, got ${rounds}`);
  const phases = (options.phases ?? [options]).map(phaseOf);
  if (phases.length === 0) throw new RangeError('options.phases must not be empty');
  const base = { rounds, phases, timeoutMs: options.timeoutMs ?? 10_000 };
  const both = ['ping', 'pong'];
  const topology = new Topology({
    mode: options.topology ?? 'threads',
    lines: both,
    systems: [
      { name: 'ping', entry: PING_PONG_SYSTEM, lines: both, config: { ...base, role: 'ping' } satisfies PingPongConfig },
      { name: 'pong', entry: PING_PONG_SYSTEM, lines: both, config: { ...base, role: 'pong' } satisfies PingPongConfig },
    ],
  });
  try {
    await topology.start();
    // Both sides exited, or the first crash (a side that timed out waiting is often only
    // the victim of its peer's crash, which comes first).
    let exits = 0;
    const end = await topology.waitForEvent((e) => e.type === 'crash' || (e.type === 'exit' && ++exits === 2), {
      timeoutMs: options.deadlineMs ?? 120_000,
    });
    if (end.type === 'crash') throw end.error;
    const reports = topology.events.flatMap((e) => (e.type === 'report' && e.system === 'ping' ? [e.data as PingPongReport] : []));
    if (reports.length !== phases.length) throw new PlatformError('SYSTEM_CRASHED', `ping reported ${reports.length} of ${phases.length} phases`, { system: 'ping' });
    return {
      phases: reports.map((r) => ({ phase: phases[r.phase]!, rounds: r.rounds, ms: r.ms, usPerRoundTrip: (r.ms * 1000) / r.rounds })),
      ping: topology.lineStats('ping'),
      pong: topology.lineStats('pong'),
      events: topology.events,
    };
  } finally {
    await topology.stop();
  }
}
