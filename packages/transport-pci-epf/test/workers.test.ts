// The RC and the EP in two worker threads (@x/platform, threads mode): each builds its
// side from the link's regions and wires alone. Bring-up and an echo in both modes, the
// RFC's polling too, and the endpoint's worker killed under the root complex.
import { describe, expect, it } from 'vitest';
import { Topology, type TopologyEvent } from '@x/platform';
import { pciEpfEchoTopology, type PciEpfEchoReport, type PciEpfEchoTopologyOptions } from '@x/transport-pci-epf/testing';

async function runTopology(options: PciEpfEchoTopologyOptions, during?: (t: Topology) => Promise<void>): Promise<PciEpfEchoReport[]> {
  const t = new Topology(pciEpfEchoTopology(options));
  try {
    await t.start();
    if (during !== undefined) await during(t);
    const end = await t.waitForEvent((e) => e.system === 'rc' && (e.type === 'crash' || e.type === 'exit'), { timeoutMs: 60_000 });
    if (end.type === 'crash' && end.system === 'rc') throw end.error;
    return t.events.flatMap((e: TopologyEvent) => (e.type === 'report' && e.system === 'rc' ? [e.data as PciEpfEchoReport] : []));
  } finally {
    await t.stop();
  }
}

describe('@x/platform topologies (two workers; one deterministic thread): RC and EP share nothing but the link regions and two lines', () => {
  for (const mode of ['rfc', 'modern'] as const) {
    it(`${mode}: bring-up, 2000 echoes and 50 round trips with the doorbell`, { timeout: 60_000 }, async () => {
      const reports = await runTopology({ mode, messages: 2000, pingPongs: 50 });
      const bringUp = reports.find((r) => r.kind === 'bring-up');
      expect(bringUp).toBeDefined();
      const steps = bringUp!.kind === 'bring-up' ? bringUp!.steps : [];
      expect(steps[0]).toBe('link up');
      expect(steps.at(-1)).toBe('status 0xf (DRIVER_OK)');
      expect(steps.some((s) => s.startsWith('queues activated: rx(256), tx(256)'))).toBe(true);
      const stream = reports.find((r) => r.kind === 'stream');
      expect(stream?.kind === 'stream' && stream.counts).toMatchObject({ received: 2000, duplicates: 0, corrupt: 0, outOfOrder: 0 });
      expect(reports.some((r) => r.kind === 'ping-pong' && r.rounds === 50)).toBe(true);
    });
  }

  it('rfc: the RFC\'s 1 ms command polling, no doorbell', { timeout: 60_000 }, async () => {
    const reports = await runTopology({ mode: 'rfc', notify: 'poll', messages: 500 });
    const stream = reports.find((r) => r.kind === 'stream');
    expect(stream?.kind === 'stream' && stream.counts).toMatchObject({ received: 500, duplicates: 0, corrupt: 0 });
  });

  for (const mode of ['rfc', 'modern'] as const) {
    it(`${mode}: the same systems on @x/platform's deterministic scheduler (one thread, virtual time), doorbell and 1 ms polling`, { timeout: 60_000 }, async () => {
      for (const notify of ['doorbell', 'poll'] as const) {
        const reports = await runTopology({ mode, notify, messages: 300, topology: 'deterministic' });
        expect(reports.map((r) => r.kind)).toEqual(['bring-up', 'stream']);
        const stream = reports[1]!;
        expect(stream.kind === 'stream' && stream.counts).toMatchObject({ received: 300, duplicates: 0, corrupt: 0, outOfOrder: 0 });
      }
    });
  }

  it('the endpoint worker is killed: the root complex gets a typed LINK_DOWN error, no hang', { timeout: 60_000 }, async () => {
    const reports = await runTopology({ mode: 'rfc', waitForEpDown: true }, async (t) => {
      await t.waitForEvent((e) => e.type === 'report' && e.system === 'rc' && (e.data as PciEpfEchoReport).kind === 'ready', { timeoutMs: 30_000 });
      await t.kill('ep');
    });
    const down = reports.find((r) => r.kind === 'ep-down');
    expect(down).toBeDefined();
    // virtio-core's TRANSPORT error around the transport's LINK_DOWN.
    expect(down!.kind === 'ep-down' && [down!.code, down!.causeCode]).toEqual(['TRANSPORT', 'LINK_DOWN']);
  });
});
