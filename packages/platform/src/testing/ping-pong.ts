import { PlatformError, Topology, type LineStats, type TopologyEvent, type TopologyMode, type WaitMode } from '@x/platform';
import type { PingPongConfig, PingPongReport } from './ping-pong-system.js';

/**
 * URL of the ping-pong system module ({@link pingPongSystem}), to use as a system's
 * `entry` in your own topologies.
 *
 * @public
 */
export const PING_PONG_SYSTEM: URL = new URL(`./ping-pong-system${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** Options of {@link runPingPong}. @public */
export interface PingPongOptions {
  /** Where the two systems run. Default `threads`. */
  readonly topology?: TopologyMode;
  /** Timed round trips (two handoffs each), after one handshake. Default 1000. */
  readonly rounds?: number;
  /** How the sides wait (see {@link PingPongConfig.style}). Default `wait`. */
  readonly style?: PingPongConfig['style'];
  /** Wait mode. Default `sleep`. */
  readonly mode?: WaitMode;
  /** Spin window, µs. Default 50 for `adaptive`, 0 for `sync`. */
  readonly spinUs?: number;
  /** Poll budget, µs. Default 100. */
  readonly budgetUs?: number;
  /** Each single wait fails after this many ms (a lost wake-up fails, never hangs). Default 10 000. */
  readonly timeoutMs?: number;
  /** Bound on the whole run, ms. Default 120 000. */
  readonly deadlineMs?: number;
}

/** What {@link runPingPong} measured. @public */
export interface PingPongResult {
  /** Timed round trips. */
  readonly rounds: number;
  /** Milliseconds they took (the ping system's clock: virtual in deterministic mode). */
  readonly ms: number;
  /** Microseconds per round trip. */
  readonly usPerRoundTrip: number;
  /** Counters of the `ping` line (ping → pong). */
  readonly ping: LineStats;
  /** Counters of the `pong` line (pong → ping). */
  readonly pong: LineStats;
  /** Every event the owner received. */
  readonly events: readonly TopologyEvent[];
}

/**
 * Runs a doorbell ping-pong between two systems through two lines and checks that
 * every handoff arrives exactly once. Rejects with the `SYSTEM_CRASHED` error of a
 * side that saw a lost or doubled ring, or whose wait timed out.
 *
 * @public
 */
export async function runPingPong(options: PingPongOptions = {}): Promise<PingPongResult> {
  const style = options.style ?? 'wait';
  const mode = options.mode ?? 'sleep';
  const rounds = options.rounds ?? 1000;
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`options.rounds must be an integer ≥ 1, got ${rounds}`);
  const base = {
    rounds,
    style,
    mode,
    spinUs: options.spinUs ?? (mode === 'adaptive' ? 50 : 0),
    budgetUs: options.budgetUs ?? 100,
    timeoutMs: options.timeoutMs ?? 10_000,
  };
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
    const deadlineMs = options.deadlineMs ?? 120_000;
    for (const name of both) {
      const end = await topology.waitForEvent((e) => e.system === name && (e.type === 'exit' || e.type === 'crash'), { timeoutMs: deadlineMs });
      if (end.type === 'crash') throw end.error;
    }
    const report = topology.events.find((e) => e.type === 'report' && e.system === 'ping');
    if (report?.type !== 'report') throw new PlatformError('SYSTEM_CRASHED', 'ping ended without a report', { system: 'ping' });
    const r = report.data as PingPongReport;
    return {
      rounds: r.rounds,
      ms: r.ms,
      usPerRoundTrip: (r.ms * 1000) / r.rounds,
      ping: topology.lineStats('ping'),
      pong: topology.lineStats('pong'),
      events: topology.events,
    };
  } finally {
    await topology.stop();
  }
}
