// Doorbell round-trip latency (issue 5): a ping-pong between two workers through two
// lines in each wait mode, beside a bare Atomics.wait/notify ping-pong between two
// workers of the same kind, measured in the same run. Lower is better; "× baseline"
// is the ratio to the bare ping-pong. Target P4 (part 1): the sleeping doorbell's round
// trip ≤ 1.2× the bare ping-pong. On a VM the bare figure is mostly the wake-up latency
// of a halted vCPU (tens of µs, drifting with the host's load): the bare ping-pong runs
// again at the end so a drift shows instead of skewing the ratios.
import { Topology } from '@x/platform';
import { runPingPong, type PingPongPhaseOptions } from '@x/platform/testing';
import type { BenchContext, MeasureOptions, Row } from '../../../bench/harness.js';

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
  const rounds = ctx.quick ? 1_000 : 20_000;
  const rows: Row[] = [];
  const bare = await ctx.measure('bare Atomics.wait/notify ping-pong, two workers (baseline)', 'µs/round trip', () => bareRoundTripUs(rounds));
  rows.push(bare);
  const p4: MeasureOptions = { baseline: bare, target: { id: 'P4', of: 'ratio', op: '<=', threshold: 1.2 } };
  const modes: Array<[string, PingPongPhaseOptions, MeasureOptions?]> = [
    ["doorbell 'sleep' (Atomics.waitAsync), Line.wait", { mode: 'sleep' }, p4],
    ["doorbell 'sleep', listener answers", { mode: 'sleep', style: 'listen' }, p4],
    ["doorbell 'adaptive' spin 5 µs", { mode: 'adaptive', spinUs: 5 }],
    ["doorbell 'adaptive' spin 50 µs", { mode: 'adaptive', spinUs: 50 }],
    ["doorbell 'poll' budget 100 µs", { mode: 'poll', budgetUs: 100 }],
    ['doorbell waitSync (Atomics.wait), own loop', { style: 'sync' }],
  ];
  for (const [name, phase, options] of modes) {
    if (options?.target === undefined) {
      rows.push(await ctx.measure(name, 'µs/round trip', () => doorbellRoundTripUs(rounds, phase), options ?? { baseline: bare }));
      continue;
    }
    // The P4 rows also run the bare ping-pong right before each of their runs: the
    // metric `ratioToBareSameRun` pairs each run with a baseline taken seconds apart,
    // which a drifting wake-up latency skews far less than the baseline row's median.
    rows.push(
      await ctx.measure(
        name,
        'µs/round trip',
        async () => {
          const bareUs = await bareRoundTripUs(rounds);
          const us = await doorbellRoundTripUs(rounds, phase);
          return { value: us, metrics: { bareUs, ratioToBareSameRun: us / bareUs } };
        },
        options,
      ),
    );
  }
  // Wake-up latency on a shared machine drifts with its load (a halted vCPU takes tens
  // of µs to wake): the baseline again, so a drift shows instead of skewing the ratios.
  rows.push(await ctx.measure('bare Atomics.wait/notify ping-pong (again, drift check)', 'µs/round trip', () => bareRoundTripUs(rounds), { baseline: bare }));
  return rows;
}
