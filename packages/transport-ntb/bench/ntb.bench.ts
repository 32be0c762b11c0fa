// Use case 2 end to end: 64-byte echo buffers HOST1 → NTB → HOST2 → back, through the
// direct pair and through the three-system bridge, in one thread and with each system
// in its own worker; postMessage between two workers as the baseline of the same run.
import { VirtioBus } from '@x/virtio-core';
import { Topology, type ReportEvent } from '@x/platform';
import {
  NtbEchoClient,
  NtbEchoVhostDriver,
  createNtbBridgeHarness,
  createNtbPairHarness,
  ntbEchoTopology,
  type NtbSystemReport,
} from '@x/transport-ntb/testing';
import type { BenchContext, Row } from '../../../bench/harness.js';
import { postMessageRate } from '../../../bench/ring.bench.js';

/** Echoed buffers per second, both hosts in this thread. */
async function oneThread(backend: 'pair' | 'bridge', n: number): Promise<number> {
  const bus = new VirtioBus();
  const client = new NtbEchoClient({ size: 64, rxBuffers: 256 });
  await bus.registerDriver(client);
  const opts = { vhostDriver: new NtbEchoVhostDriver(), virtioBus: bus };
  const h = backend === 'pair' ? createNtbPairHarness(opts) : await createNtbBridgeHarness(opts);
  await h.start();
  await h.ready();
  await client.ready();
  const t0 = performance.now();
  while (client.counts.sent < n) {
    if (!client.trySend()) await client.whenRoom();
  }
  while (client.counts.echoed < n) await new Promise<void>((r) => setImmediate(r));
  const rate = (n / (performance.now() - t0)) * 1000;
  await h.dispose();
  return rate;
}

/** Acknowledged buffers per second, each system in its own worker (the stream HOST1 reports). */
async function workers(backend: 'pair' | 'bridge', n: number): Promise<number> {
  const topo = new Topology(ntbEchoTopology({ backend, messages: n, size: 64, listen: { mode: 'adaptive', spinUs: 50 }, timeoutMs: 60_000 }));
  try {
    await topo.start();
    const e = (await topo.waitForEvent((ev) => ev.type === 'report' && (ev.data as NtbSystemReport).kind === 'stream', { timeoutMs: 120_000 })) as ReportEvent;
    const s = e.data as Extract<NtbSystemReport, { kind: 'stream' }>;
    return (s.counts.acked / s.ms) * 1000;
  } finally {
    await topo.stop();
  }
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 20_000 : 200_000;
  const rows: Row[] = [];
  const pm = await ctx.measure('postMessage, two workers (baseline)', 'msgs/s', () => postMessageRate(ctx.quick ? 100_000 : 500_000));
  rows.push(pm);
  for (const backend of ['pair', 'bridge'] as const) {
    rows.push(await ctx.measure(`NTB ${backend}, echo, one thread (64 B)`, 'buffers/s', () => oneThread(backend, n)));
    const w = await ctx.measure(`NTB ${backend}, echo, ${backend === 'pair' ? 'two' : 'three'} workers (64 B)`, 'buffers/s', () => workers(backend, n));
    w.vsBaseline = w.median / pm.median;
    rows.push(w);
  }
  return rows;
}
