// The mediator's copy path: local driver → mediator (two rings, one copy) → remote
// driver over a loopback link, one thread.
import type { BenchContext, Row } from '../../../bench/harness.js';
import { PeerDriver, msg, rig, transfer } from '../test/helpers.js';

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 5_000 : 50_000;
  const msgs = Array.from({ length: 256 }, (_, k) => msg(1, k));
  const row = await ctx.measure('mediated messages local → remote, one thread (loopback underneath)', 'messages/s', async () => {
    const local = new PeerDriver('local');
    const remote = new PeerDriver('remote');
    const r = await rig(local, remote, { features: 1n | (1n << 29n) | (1n << 32n) });
    const deadline = Date.now() + 10_000;
    while (!(local.dev?.status === 0x0f && remote.dev?.status === 0x0f) && Date.now() < deadline) await new Promise((x) => setTimeout(x, 1));
    const t0 = performance.now();
    await transfer(
      local,
      remote,
      Array.from({ length: n }, (_, k) => msgs[k & 255]!),
      600_000,
    );
    const rate = (n / (performance.now() - t0)) * 1000;
    await r.close();
    return rate;
  });
  return [row];
}
