// Use case 1 end to end (issue 5): rpmsg between a PCIe root complex and an endpoint in
// two workers, 64-byte payloads, in both modes (the RFC's register block; a modern
// virtio-pci device) and with each way the RC reaches the EP (the mainline doorbell; the
// RFC's 1 ms polling of the command register), beside postMessage between two workers
// measured in the same run.
import { measureUsecase1 } from '../examples/usecase1-pcie-rc-ep/src/main.js';
import { postMessageRate } from './ring.bench.js';
import type { BenchContext, Row } from './harness.js';

export async function run(ctx: BenchContext): Promise<Row[]> {
  const streamMs = ctx.quick ? 500 : 2000;
  const rttRounds = ctx.quick ? 500 : 2000;
  const rows: Row[] = [];
  const pm = await ctx.measure('postMessage, two workers, 64 B (baseline)', 'msgs/s', () => postMessageRate(ctx.quick ? 100_000 : 500_000));
  rows.push(pm);
  for (const mode of ['rfc', 'modern'] as const) {
    for (const doorbell of ['doorbell', 'poll'] as const) {
      const label = `use case 1, ${mode === 'rfc' ? 'RFC register block' : 'modern virtio-pci'}, ${doorbell === 'doorbell' ? 'doorbell' : 'EP polls every 1 ms'}`;
      let rtt: number[] = [];
      // Each echo is two rpmsg messages (RC → EP, EP → RC): the rate counts both.
      const r = await ctx.measure(`${label}: rpmsg messages (64 B, both ways)`, 'msgs/s', async () => {
        const m = await measureUsecase1({ mode, doorbell, platform: 'threads', streamMs, rttRounds });
        rtt.push(m.rttUs);
        return m.messagesPerSecond * 2;
      });
      r.vsBaseline = r.median / pm.median;
      rows.push(r);
      rtt = rtt.slice(1); // the warm-up run is not measured
      const sorted = [...rtt].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      process.stderr.write(`  ${label}: round trip ${median.toFixed(1)} µs\n`);
      rows.push({ name: `${label}: round trip, one at a time`, unit: 'µs', median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: rtt });
    }
  }
  return rows;
}
