// Use case 2 end to end (issue 6): rpmsg between HOST1 (virtio rpmsg through ntb_virtio)
// and HOST2 (vhost rpmsg through ntb_vhost) over both NTB backends — the direct pair (two
// workers) and the three-system EPF bridge (three workers) — 64-byte payloads, each with
// the three ways a system waits on its interrupt line (@x/platform's 'poll', 'adaptive'
// and 'sleep' doorbells), beside postMessage between two workers measured in the same run.
//
// Each row's value is rpmsg messages per second over a stream of echoes, both ways (each
// acknowledged message is HOST1 → HOST2 and its echo back), after an unmeasured warm-up
// stream in the same workers. Metrics of the same runs:
// - cpuUsPerMsg: CPU µs per rpmsg message: process.cpuUsage() (user + system) taken in the
//   main thread when HOST1's stream-start and stream-end reports arrive; it counts every
//   thread of the process (all workers, the idle main thread) — Node 20 has no per-thread
//   CPU clock;
// - notificationsPerMsg: rings per rpmsg message on both interrupt lines (doorbells
//   HOST1 → HOST2 and back), from the platform's line counters;
// - rttUs: round trip, one message at a time, µs.
// Target P7: ≥ 1 M messages/s with the doorbell.
import { measureUsecase2 } from '../examples/usecase2-ntb/src/main.js';
import { postMessageRate } from './ring.bench.js';
import { WAIT_MODES } from './usecase1.bench.js';
import type { BenchContext, Row } from './harness.js';

export async function run(ctx: BenchContext): Promise<Row[]> {
  const streamMs = ctx.quick ? 300 : 1000;
  const rttRounds = ctx.quick ? 100 : 2000;
  // Every run starts fresh workers: an unmeasured stream first warms their JIT.
  const warmupMs = ctx.quick ? 100 : 300;
  const rows: Row[] = [];
  const pm = await ctx.measure('postMessage, two workers, 64 B (baseline)', 'msgs/s', () => postMessageRate(ctx.quick ? 100_000 : 500_000));
  rows.push(pm);
  for (const backend of ['pair', 'bridge'] as const) {
    for (const [waitName, listen] of WAIT_MODES) {
      const label = `use case 2, ${backend === 'pair' ? 'NTB direct pair (two workers)' : 'NTB EPF bridge (three workers)'}, doorbell '${waitName}'`;
      rows.push(
        await ctx.measure(
          `${label}: rpmsg messages (64 B, both ways)`,
          'msgs/s',
          async () => {
            const m = await measureUsecase2({ backend, listen, platform: 'threads', streamMs, warmupMs, rttRounds });
            return {
              value: m.messagesPerSecond,
              metrics: { cpuUsPerMsg: m.cpuUsPerMsg, notificationsPerMsg: m.notificationsPerMsg, rttUs: m.rttUs },
            };
          },
          { baseline: pm, target: { id: 'P7', of: 'value', op: '>=', threshold: 1_000_000 } },
        ),
      );
    }
  }
  return rows;
}
