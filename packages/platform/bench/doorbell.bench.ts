// Doorbell round-trip latency (issue 5): a ping-pong between two workers through two
// lines in each wait mode, beside a bare Atomics.wait/notify ping-pong between two
// workers of the same kind, measured in the same run. Lower is better; "× baseline"
// is the ratio to the bare ping-pong.
import { Topology } from '@x/platform';
import { runPingPong, type PingPongPhaseOptions } from '@x/platform/testing';
import type { BenchContext, Row } from '../../../bench/harness.js';

async function bareRoundTripUs(rounds: number): Promise<number> {
  const entry = new URL('./bare-ping-pong-system.ts', import.meta.url);
  const regions = [{ region: 'words', base: 0 }];
  const t = new Topology({
    mode: 'threads',
    regions: [{ name: 'words', size: 128 }],
    systems: [
      { name: 'ping', entry, regions, config: { role: 'ping', rounds } },
      { name: 'pong', entry, regions, config: { role: 'pong', rounds } },
    ],
  });
  try {
    await t.start();
    const e = await t.waitForEvent((x) => x.type === 'report' || x.type === 'crash', { timeoutMs: 120_000 });
    if (e.type === 'crash') throw e.error;
    return ((e.type === 'report' ? (e.data as { ms: number }).ms : NaN) * 1000) / rounds;
  } finally {
    await t.stop();
  }
}

async function doorbellRoundTripUs(rounds: number, phase: PingPongPhaseOptions): Promise<number> {
  const r = await runPingPong({ rounds, phases: [phase], timeoutMs: 30_000 });
  return r.phases[0]!.usPerRoundTrip;
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rounds = ctx.quick ? 2_000 : 20_000;
  const rows: Row[] = [];
  const bare = await ctx.measure('bare Atomics.wait/notify ping-pong, two workers (baseline)', 'µs/round trip', () => bareRoundTripUs(rounds));
  rows.push(bare);
  const modes: Array<[string, PingPongPhaseOptions]> = [
    ["doorbell 'sleep' (Atomics.waitAsync), Line.wait", { mode: 'sleep' }],
    ["doorbell 'sleep', listener answers", { mode: 'sleep', style: 'listen' }],
    ["doorbell 'adaptive' spin 5 µs", { mode: 'adaptive', spinUs: 5 }],
    ["doorbell 'adaptive' spin 50 µs", { mode: 'adaptive', spinUs: 50 }],
    ["doorbell 'poll' budget 100 µs", { mode: 'poll', budgetUs: 100 }],
    ['doorbell waitSync (Atomics.wait), own loop', { style: 'sync' }],
  ];
  for (const [name, phase] of modes) {
    const row = await ctx.measure(name, 'µs/round trip', () => doorbellRoundTripUs(rounds, phase));
    row.vsBaseline = row.median / bare.median;
    rows.push(row);
  }
  // Wake-up latency on a shared machine drifts with its load (a halted vCPU takes tens
  // of µs to wake): the baseline again, so a drift shows instead of skewing the ratios.
  const again = await ctx.measure('bare Atomics.wait/notify ping-pong (again, drift check)', 'µs/round trip', () => bareRoundTripUs(rounds));
  again.vsBaseline = again.median / bare.median;
  rows.push(again);
  return rows;
}
