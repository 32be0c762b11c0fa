// Use case 2 end to end (issue 6): rpmsg between HOST1 (virtio rpmsg through ntb_virtio)
// and HOST2 (vhost rpmsg through ntb_vhost) over both NTB backends — the direct pair (two
// workers) and the three-system EPF bridge (three workers) — 64-byte payloads, beside
// postMessage between two workers measured in the same run. Issue 6's target: ≥ 1 M
// messages/s on the direct pair.
import { measureUsecase2 } from '../examples/usecase2-ntb/src/main.js';
import { postMessageRate } from './ring.bench.js';
import type { BenchContext, Row } from './harness.js';

export async function run(ctx: BenchContext): Promise<Row[]> {
  const streamMs = ctx.quick ? 500 : 2000;
  const rows: Row[] = [];
  const pm = await ctx.measure('postMessage, two workers, 64 B (baseline)', 'msgs/s', () => postMessageRate(ctx.quick ? 100_000 : 500_000));
  rows.push(pm);
  for (const backend of ['pair', 'bridge'] as const) {
    const label = backend === 'pair' ? 'use case 2, NTB direct pair (two workers)' : 'use case 2, NTB EPF bridge (three workers)';
    // Each echo is two rpmsg messages (HOST1 → HOST2, HOST2 → HOST1): the rate counts both.
    const r = await ctx.measure(`${label}: rpmsg messages (64 B, both ways)`, 'msgs/s', () => measureUsecase2({ backend, platform: 'threads', streamMs }));
    r.vsBaseline = r.median / pm.median;
    rows.push(r);
  }
  return rows;
}
