// rpmsg across two workers (issue 7: P2, P3, P5, and P4's notifications while
// streaming). An @x/platform Topology in 'threads' mode with two systems
// (./rpmsg-system.ts): "driver" runs RpmsgVirtqueueTransport, "device" runs
// RpmsgVringhTransport, each under an RpmsgVirtproc; they share one region (rings and
// buffers) and two lines (kick, irq), nothing else. Each figure is beside postMessage
// between two workers, measured in the same run. Every measurement starts its own
// topology; the systems warm up before the timed part.
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import type { WaitMode } from '@x/platform';
import { Topology } from '@x/platform';
import { postMessageRate } from '../../../bench/ring.bench.js';
import type { BenchContext, Row } from '../../../bench/harness.js';
import { startWorker } from '../../../examples/ring-demo/src/shared.js';
import { DEVICE_BASE, DRIVER_BASE, RPMSG_BENCH_SYSTEM, regionSize, type RpmsgBenchConfig, type RpmsgBenchReport } from './rpmsg-system.js';

/** The three doorbells of the issue: how both systems wait on their line. */
const DOORBELLS: ReadonlyArray<{ label: string; mode: WaitMode; spinUs: number; busyTurns: number }> = [
  { label: 'polling doorbell', mode: 'poll', spinUs: 0, busyTurns: 0 },
  { label: 'adaptive 50 µs doorbell', mode: 'adaptive', spinUs: 50, busyTurns: 0 },
  { label: 'sleeping doorbell', mode: 'sleep', spinUs: 0, busyTurns: 0 },
  // The device looks at its ring for 64 more event-loop turns before asking for kicks
  // again (RpmsgVringhTransport `busyTurns`, vhost-net's busyloop): fewer wake-ups.
  { label: 'sleeping doorbell + device busyTurns 64', mode: 'sleep', spinUs: 0, busyTurns: 64 },
];

type Run = Omit<RpmsgBenchConfig, 'role'>;

const BASE: Run = {
  mode: 'poll',
  spinUs: 0,
  budgetUs: 100,
  queueSize: 256,
  bufSize: 512,
  payload: 64,
  zeroCopy: false,
  endpoints: 1,
  busyTurns: 0,
  count: 100_000,
  warmup: 20_000,
  rttRounds: 0,
};

/** Starts the two systems, lets the driver run the stream (and round trips), stops them. */
export async function runRpmsgTopology(run: Run): Promise<RpmsgBenchReport> {
  const lines = ['kick', 'irq'];
  const size = regionSize(run);
  const topology = new Topology({
    mode: 'threads',
    regions: [{ name: 'shm', size, align: 4096 }],
    lines,
    systems: [
      { name: 'driver', entry: RPMSG_BENCH_SYSTEM, regions: [{ region: 'shm', base: DRIVER_BASE }], lines, config: { ...run, role: 'driver' } satisfies RpmsgBenchConfig },
      { name: 'device', entry: RPMSG_BENCH_SYSTEM, regions: [{ region: 'shm', base: DEVICE_BASE }], lines, config: { ...run, role: 'device' } satisfies RpmsgBenchConfig },
    ],
  });
  try {
    await topology.start();
    const end = await topology
      .waitForEvent((e) => e.type === 'crash' || (e.type === 'report' && e.system === 'driver'), { timeoutMs: Number(process.env.RPMSG_BENCH_TIMEOUT ?? 120_000) })
      .catch((e: unknown) => {
        // A run that never ends: say what the systems logged before it stalled.
        for (const x of topology.events) if (x.type === 'log') process.stderr.write(`    ${x.system}: ${String((x as { message?: unknown }).message)}\n`);
        throw e;
      });
    if (end.type === 'crash') throw end.error;
    if (end.type !== 'report') throw new Error('unreachable');
    for (const e of topology.events) if (e.type === 'log') process.stderr.write(`    ${e.system}: ${String((e as { message?: unknown }).message)}\n`);
    return end.data as RpmsgBenchReport;
  } finally {
    await topology.stop();
  }
}

/** postMessage ping-pong of one `size`-byte Uint8Array between two workers; µs per round trip. */
export async function postMessageRoundTrip(rounds: number, size = 64): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  const url = new URL('./postmessage-rtt-worker.ts', import.meta.url);
  const pong = startWorker(url, { role: 'pong', port: port2, rounds, size }, [port2]);
  const ping = startWorker(url, { role: 'ping', port: port1, rounds, size }, [port1]);
  try {
    await Promise.all([once(ping, 'online'), once(pong, 'online')]);
    const result = once(ping, 'message');
    ping.postMessage('go');
    const [{ usPerRoundTrip }] = (await result) as [{ usPerRoundTrip: number }];
    return usPerRoundTrip;
  } finally {
    await Promise.all([ping.terminate(), pong.terminate()]);
  }
}

function medianOf(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A row built from figures gathered inside another row's runs (the harness measures one value per call). */
function rowOf(name: string, unit: string, runs: number[], extra: Partial<Row>): Row {
  const s = [...runs].sort((a, b) => a - b);
  const row: Row = { name, unit, median: medianOf(runs), min: s[0]!, max: s[s.length - 1]!, runs, ...extra };
  process.stderr.write(`  ${name}: ${row.median.toFixed(3)} ${unit}\n`);
  return row;
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const q = ctx.quick;
  const rows: Row[] = [];
  const count = q ? 100_000 : 1_000_000;
  const warmup = q ? 30_000 : 200_000;
  const rttRounds = q ? 3_000 : 20_000;

  // ---- baselines ---------------------------------------------------------------------
  const pm = await ctx.measure('postMessage, two workers, 64 B (baseline)', 'msgs/s', () => postMessageRate(q ? 100_000 : 500_000));
  rows.push(pm);
  const pmRtt = await ctx.measure('postMessage round trip, two workers, 64 B (baseline)', 'µs', () => postMessageRoundTrip(q ? 2_000 : 10_000), { better: 'lower' });
  rows.push(pmRtt);

  // ---- 64 B one way and round trip, each doorbell ------------------------------------
  for (const d of DOORBELLS) {
    const rtt: number[] = [];
    const cpu: number[] = [];
    const notes: number[] = [];
    const r = await ctx.measure(
      `rpmsg 64 B one way, two workers, ${d.label}`,
      'msgs/s',
      async () => {
        const m = await runRpmsgTopology({ ...BASE, mode: d.mode, spinUs: d.spinUs, busyTurns: d.busyTurns, count, warmup, rttRounds });
        rtt.push(m.rttUs);
        cpu.push(m.cpuUsPerMsg);
        notes.push(m.notificationsPerMsg);
        return { value: m.rate, metrics: { cpuUsPerMsg: m.cpuUsPerMsg, notificationsPerMsg: m.notificationsPerMsg } };
      },
      { baseline: pm, target: { id: 'P2', of: 'value', op: '>=', threshold: 5e6 } },
    );
    rows.push(r);
    // The harness's warm-up call (full mode) is not a run.
    const runsOf = (a: number[]): number[] => (ctx.quick ? a : a.slice(1));
    const rttRuns = runsOf(rtt);
    rows.push(
      rowOf(`rpmsg 64 B round trip, two workers, ${d.label}`, 'µs', rttRuns, {
        better: 'lower',
        baseline: pmRtt.name,
        vsBaseline: medianOf(rttRuns) / pmRtt.median,
        ...(d.mode === 'poll' ? { target: { id: 'P3', of: 'value', op: '<=', threshold: 1 } } : {}),
      }),
    );
    rows.push(
      rowOf(`rpmsg 64 B streamed, process CPU time per message (all threads), ${d.label}`, 'µs CPU/msg', runsOf(cpu), {
        better: 'lower',
        target: { id: 'P5', of: 'value', op: '<=', threshold: 0.3 },
      }),
    );
    rows.push(
      rowOf(`rpmsg 64 B streamed, notifications (kicks + interrupts) per message, ${d.label}`, 'notifications/msg', runsOf(notes), {
        better: 'lower',
        ...(d.mode === 'sleep' ? { target: { id: 'P4', of: 'value', op: '<=', threshold: 0.01 } } : {}),
      }),
    );
  }

  // ---- payload sweep: 16 B → 64 KiB − 16, copy vs zero-copy (polling doorbell) -------
  // copy: send() copies the payload into the TX buffer once; zero-copy: the sender writes
  // a 4-byte sequence number in place (getTxBuffer / sendNoCopy). The receiver's callback
  // gets a view of the buffer in both cases and checks only its length.
  // MB/s = payload bytes (headers not counted) per second.
  const sizes = q ? [16, 65520] : [16, 64, 256, 496, 4080, 16368, 65520];
  for (const payload of sizes) {
    // 512-byte buffers (the default) up to 496 B; bigger buffers beyond.
    const bufSize = payload <= 496 ? 512 : payload + 16;
    const n = Math.max(2_000, Math.min(count, Math.floor((q ? 2e9 : 8e9) / Math.max(payload, 4096))));
    const chart = (series: string) => ({ id: 'rpmsg-payload', title: 'rpmsg payload sweep, two workers, polling doorbell', series, x: payload, xLabel: 'payload bytes', xLog: true, yLog: true });
    const pmRow = await ctx.measure(`postMessage, two workers, ${payload} B (baseline)`, 'MB/s', async () => ((await postMessageRate(Math.min(n, 100_000), payload)) * payload) / 1e6, { chart: chart('postMessage') });
    rows.push(pmRow);
    for (const zeroCopy of [false, true]) {
      rows.push(
        await ctx.measure(
          `rpmsg ${payload} B one way, ${zeroCopy ? 'zero-copy (getTxBuffer / sendNoCopy)' : 'copy (send)'}, ${bufSize}-byte buffers, polling`,
          'MB/s',
          async () => ((await runRpmsgTopology({ ...BASE, payload, bufSize, zeroCopy, count: n, warmup: Math.min(warmup, n) })).rate * payload) / 1e6,
          {
            baseline: pmRow,
            chart: chart(zeroCopy ? 'rpmsg zero-copy' : 'rpmsg copy'),
            // P6 at the largest payload: zero-copy ≥ 10 GB/s, one copy ≥ postMessage (a copy).
            ...(payload === 65520 ? { target: zeroCopy ? { id: 'P6', of: 'value' as const, op: '>=' as const, threshold: 10_000 } : { id: 'P6', of: 'ratio' as const, op: '>=' as const, threshold: 1 } } : {}),
          },
        ),
      );
    }
  }

  // ---- endpoint sweep: 1 → 256 endpoints on one link, round robin (polling) ----------
  for (const endpoints of q ? [1, 256] : [1, 4, 16, 64, 256]) {
    rows.push(
      await ctx.measure(
        `rpmsg 64 B one way, ${endpoints} endpoint${endpoints === 1 ? '' : 's'} round robin, polling`,
        'msgs/s',
        async () => (await runRpmsgTopology({ ...BASE, endpoints, count, warmup })).rate,
        { baseline: pm, chart: { id: 'rpmsg-endpoints', title: 'rpmsg endpoints on one link, two workers, 64 B, polling doorbell', series: 'rpmsg', x: endpoints, xLabel: 'endpoints', xLog: true } },
      ),
    );
  }
  return rows;
}
