// Use case 1 end to end (issue 5): a root complex and an endpoint in two workers joined
// by one modelled PCIe link, echoing 64-byte buffers through the endpoint's vhost device,
// in both modes (the RFC's register block; a standard virtio-pci device), each with the
// mainline doorbell and with the RFC's 1 ms polling. Beside them, postMessage between two
// workers in the same run. Round trips with one buffer in flight show what polling costs.
import { Topology, type TopologyEvent } from '@x/platform';
import { pciEpfEchoTopology, type PciEpfEchoReport, type PciEpfEchoTopologyOptions } from '@x/transport-pci-epf/testing';
import type { BenchContext, Row } from '../../../bench/harness.js';
import { postMessageRate } from '../../../bench/ring.bench.js';

async function echo(options: PciEpfEchoTopologyOptions): Promise<PciEpfEchoReport[]> {
  const t = new Topology(pciEpfEchoTopology({ timeoutMs: 120_000, ...options }));
  try {
    await t.start();
    const end = await t.waitForEvent((e) => e.system === 'rc' && (e.type === 'exit' || e.type === 'crash'), { timeoutMs: 300_000 });
    if (end.type === 'crash') throw end.error;
    return t.events.flatMap((e: TopologyEvent) => (e.type === 'report' && e.system === 'rc' ? [e.data as PciEpfEchoReport] : []));
  } finally {
    await t.stop();
  }
}

async function streamRate(options: PciEpfEchoTopologyOptions): Promise<number> {
  const r = (await echo({ ...options, pingPongs: 0 })).find((x) => x.kind === 'stream');
  if (r?.kind !== 'stream' || r.counts.received !== r.messages || r.counts.duplicates !== 0) throw new Error(`stream failed: ${JSON.stringify(r)}`);
  return (r.messages / r.ms) * 1000;
}

async function roundTripUs(options: PciEpfEchoTopologyOptions, rounds: number): Promise<number> {
  const r = (await echo({ ...options, messages: 0, pingPongs: rounds })).find((x) => x.kind === 'ping-pong');
  if (r?.kind !== 'ping-pong') throw new Error('ping-pong failed');
  return r.usPerRoundTrip;
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 20_000 : 200_000;
  const nPoll = ctx.quick ? 5_000 : 50_000;
  const rounds = ctx.quick ? 200 : 2_000;
  const roundsPoll = ctx.quick ? 50 : 300;
  const rows: Row[] = [];
  const pm = await ctx.measure('postMessage, two workers, 64 B (baseline)', 'msgs/s', () => postMessageRate(ctx.quick ? 100_000 : 500_000));
  rows.push(pm);
  // Doorbell waits spin a little before sleeping (platform's adaptive mode); the
  // endpoint's reach into RC memory keeps its windows mapped (not the RFC's per-access map).
  const listen = { mode: 'adaptive' as const, spinUs: 50 };
  for (const mode of ['rfc', 'modern'] as const) {
    for (const notify of ['doorbell', 'poll'] as const) {
      const label = `pci-epf ${mode}, ${notify === 'doorbell' ? 'doorbell' : '1 ms polling'}`;
      const count = notify === 'doorbell' ? n : nPoll;
      const r = await ctx.measure(`${label}: echo 64 B, two workers`, 'buffers/s', () => streamRate({ mode, notify, messages: count, size: 64, listen, cacheWindows: true }));
      r.vsBaseline = r.median / pm.median;
      rows.push(r);
      if (mode === 'rfc' && notify === 'doorbell') {
        const m = await ctx.measure(`${label}: echo 64 B, RFC data path (a window mapped per access)`, 'buffers/s', () =>
          streamRate({ mode, notify, messages: count, size: 64, listen }),
        );
        m.vsBaseline = m.median / pm.median;
        rows.push(m);
      }
      rows.push(
        await ctx.measure(`${label}: round trip, 1 buffer in flight`, 'µs', () =>
          roundTripUs({ mode, notify, size: 64, listen, cacheWindows: true }, notify === 'doorbell' ? rounds : roundsPoll),
        ),
      );
    }
  }
  return rows;
}
