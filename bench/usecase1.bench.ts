// Use case 1 end to end (issue 5): rpmsg between a PCIe root complex and an endpoint in
// two workers, 64-byte payloads, in both modes (the RFC's register block; a modern
// virtio-pci device), each with the three ways a side waits on its wire (@x/platform's
// 'poll', 'adaptive' and 'sleep' doorbells), beside postMessage between two workers
// measured in the same run. Full mode adds the RFC's other way for the RC to reach the
// EP: the EP polls the command register every 1 ms instead of a doorbell.
//
// Each row's value is rpmsg messages per second over a stream of echoes (an echo is two
// messages: RC → EP and back), after an unmeasured warm-up stream in the same workers.
// Metrics of the same runs:
// - cpuUsPerMsg: CPU µs per rpmsg message: process.cpuUsage() (user + system) taken in the
//   main thread when the RC's stream-start and stream reports arrive; it counts every
//   thread of the process (both workers, the idle main thread) — Node 20 has no
//   per-thread CPU clock;
// - notificationsPerMsg: doorbell rings per rpmsg message (RC → EP kicks + EP → RC
//   interrupts), from the platform's line counters;
// - rttUs: round trip, one message at a time, µs.
// Target P7: ≥ 1 M messages/s with the doorbell.
import { measureUsecase1, type Usecase1Options } from '../examples/usecase1-pcie-rc-ep/src/main.js';
import { postMessageRate } from './ring.bench.js';
import type { BenchContext, Row } from './harness.js';

/** The three doorbell wait modes, as each side listens on its wire. */
export const WAIT_MODES = [
  ['poll', { mode: 'poll', budgetUs: 100 }],
  ['adaptive', { mode: 'adaptive', spinUs: 50 }],
  ['sleep', { mode: 'sleep' }],
] as const;

export async function run(ctx: BenchContext): Promise<Row[]> {
  const streamMs = ctx.quick ? 300 : 1000;
  const rttRounds = ctx.quick ? 100 : 2000;
  // Every run starts two fresh workers: an unmeasured stream first warms their JIT.
  const warmupMs = ctx.quick ? 100 : 300;
  const rows: Row[] = [];
  const pm = await ctx.measure('postMessage, two workers, 64 B (baseline)', 'msgs/s', () => postMessageRate(ctx.quick ? 100_000 : 500_000));
  rows.push(pm);
  const variants: Array<{ doorbell: 'doorbell' | 'poll'; wait: (typeof WAIT_MODES)[number] }> = WAIT_MODES.map((wait) => ({ doorbell: 'doorbell' as const, wait }));
  // The RFC's 1 ms command polling: slow by design, full mode only, one wait mode.
  if (!ctx.quick) variants.push({ doorbell: 'poll', wait: WAIT_MODES[1] });
  for (const mode of ['rfc', 'modern'] as const) {
    for (const { doorbell, wait } of variants) {
      const [waitName, listen] = wait;
      const how = doorbell === 'doorbell' ? `doorbell '${waitName}'` : `EP polls every 1 ms, wire '${waitName}'`;
      const label = `use case 1, ${mode === 'rfc' ? 'RFC register block' : 'modern virtio-pci'}, ${how}`;
      const o: Usecase1Options = { mode, doorbell, listen, platform: 'threads', streamMs, warmupMs, rttRounds: doorbell === 'doorbell' ? rttRounds : Math.min(rttRounds, 100) };
      rows.push(
        await ctx.measure(
          `${label}: rpmsg messages (64 B, both ways)`,
          'msgs/s',
          async () => {
            const m = await measureUsecase1(o);
            return {
              value: m.messagesPerSecond * 2,
              metrics: { cpuUsPerMsg: m.cpuUsPerMsg, notificationsPerMsg: m.notificationsPerMsg, rttUs: m.rttUs },
            };
          },
          { baseline: pm, ...(doorbell === 'doorbell' ? { target: { id: 'P7', of: 'value', op: '>=', threshold: 1_000_000 } as const } : {}) },
        ),
      );
    }
  }
  return rows;
}
