// Use case 2 with each system in its own worker (and the same systems in the
// deterministic one-thread mode): echo traffic with link flaps on both backends, and a
// host (or the bridge) killed under traffic.
import { describe, expect, it } from 'vitest';
import { Topology, type ReportEvent, type TopologyEvent, type TopologyMode } from '@x/platform';
import { ntbEchoTopology, type NtbSystemReport } from '@x/transport-ntb/testing';

function report<K extends NtbSystemReport['kind']>(kind: K, system?: string) {
  return (e: TopologyEvent): boolean => e.type === 'report' && (e.data as NtbSystemReport).kind === kind && (system === undefined || e.system === system);
}

function data<K extends NtbSystemReport['kind']>(e: TopologyEvent): Extract<NtbSystemReport, { kind: K }> {
  return (e as ReportEvent).data as Extract<NtbSystemReport, { kind: K }>;
}

const cases: Array<{ backend: 'pair' | 'bridge'; mode: TopologyMode }> = [
  { backend: 'pair', mode: 'threads' },
  { backend: 'bridge', mode: 'threads' },
  { backend: 'pair', mode: 'deterministic' },
];

describe('link flaps under traffic, hosts in workers (issue 6)', () => {
  for (const { backend, mode } of cases) {
    it(`${backend}, ${mode}: 3 flaps in a stream of 3000; no duplicate, no acknowledged message lost, traffic resumes`, async () => {
      const messages = 3000;
      const flaps = 3;
      const topo = new Topology(ntbEchoTopology({ backend, topology: mode, messages, flaps, timeoutMs: 15_000 }));
      try {
        await topo.start();
        const s = data<'stream'>(await topo.waitForEvent(report('stream', 'host1'), { timeoutMs: 30_000 }));
        // HOST2 reports a cumulative tally at every link down; the last follows HOST1's final link_disable.
        await topo.waitForEvent((e) => report('tally', 'host2')(e) && data<'tally'>(e).session === flaps + 1, { timeoutMs: 15_000 });
        const tallies = topo.events.filter(report('tally', 'host2')).map((e) => data<'tally'>(e));
        expect(tallies.map((t) => t.session)).toEqual([1, 2, 3, 4]);
        const last = tallies.at(-1)!;
        expect(topo.events.filter((e) => e.type === 'crash')).toEqual([]);
        // A fresh handshake (and device) per link-up.
        expect(s.sessions).toBe(flaps + 1);
        expect(s.counts.probes).toBe(flaps + 1);
        // Every message was sent once; each either acknowledged or failed with LINK_DOWN.
        expect(s.counts.sent).toBe(messages);
        expect(s.counts.acked + s.counts.failed).toBe(messages);
        expect(s.failedCodes.every((c) => c === 'LINK_DOWN')).toBe(true);
        // Nothing delivered twice: HOST2 saw each message at most once; HOST1 each echo at most once.
        expect(last.duplicates).toBe(0);
        expect(s.counts.duplicates).toBe(0);
        // Nothing acknowledged lost: an acknowledged message reached HOST2; so did every echo.
        const lost: number[] = [];
        for (let i = 0; i < messages; i++) if ((s.acked[i] === 1 || s.echoed[i] === 1) && last.received[i] === 0) lost.push(i);
        expect(lost).toEqual([]);
        // Traffic resumed after the last flap: the last messages went end to end.
        expect(s.acked[messages - 1]).toBe(1);
        expect(s.echoed[messages - 1]).toBe(1);
      } finally {
        await topo.stop();
      }
    });
  }
});

describe('a system killed under traffic: the other side gets a typed event, no hang', () => {
  const kills: Array<{ backend: 'pair' | 'bridge'; mode: TopologyMode; victim: string; codes: string[] }> = [
    { backend: 'pair', mode: 'threads', victim: 'host2', codes: ['PEER_DOWN'] },
    { backend: 'pair', mode: 'deterministic', victim: 'host2', codes: ['PEER_DOWN'] },
    // The bridge also reports HOST2's link down; which edge HOST1 sees first is a race.
    { backend: 'bridge', mode: 'threads', victim: 'host2', codes: ['PEER_DOWN', 'LINK_DOWN'] },
    { backend: 'bridge', mode: 'threads', victim: 'bridge', codes: ['PEER_DOWN'] },
  ];
  for (const { backend, mode, victim, codes } of kills) {
    it(`${backend}, ${mode}: ${victim} killed → HOST1 reports ${codes.join(' or ')}, pending sends fail with LINK_DOWN, its device goes away`, async () => {
      const topo = new Topology(ntbEchoTopology({ backend, topology: mode, untilPeerDown: true, timeoutMs: 10_000 }));
      try {
        await topo.start();
        await topo.waitForEvent(report('ready', 'host1'), { timeoutMs: 15_000 });
        await topo.waitForEvent(report('ready', 'host2'), { timeoutMs: 15_000 });
        // Threads: let traffic run a little. Deterministic: HOST1 streams for as long as
        // the scheduler runs it, so the kill comes at once (the next step runs it).
        if (mode === 'threads') await new Promise((r) => setTimeout(r, 50));
        await topo.kill(victim);
        const d = data<'peer-down'>(await topo.waitForEvent(report('peer-down', 'host1'), { timeoutMs: 15_000 }));
        expect(codes).toContain(d.code);
        expect(d.sent).toBeGreaterThan(0);
        expect(d.failedCodes.every((c) => c === 'LINK_DOWN')).toBe(true);
        await topo.waitForEvent((e) => e.system === 'host1' && e.type === 'exit', { timeoutMs: 15_000 });
        expect(topo.events.filter((e) => e.type === 'crash').map((e) => e.system)).toEqual([victim]);
      } finally {
        await topo.stop();
      }
    });
  }
});
