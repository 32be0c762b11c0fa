// The RFC's scratchpad handshake (rfc-protocol §2.6), from both start orders, in the
// deterministic one-thread mode (one virtual clock: cross-host order is checked too)
// and with each host in its own worker (each host's own order is checked).
import { describe, expect, it } from 'vitest';
import { Topology, type ReportEvent, type TopologyMode } from '@x/platform';
import { NTB_VIRTIO_SPAD as SP, NTB_VIRTIO_TYPE } from '@x/transport-ntb';
import { ntbEchoTopology, type NtbSystemReport, type NtbSystemTraceEntry } from '@x/transport-ntb/testing';

type Trace = readonly NtbSystemTraceEntry[];

/** Index of the first entry matching op and leading args, after `from`; -1 when none. */
function find(trace: Trace, op: string, args: readonly number[] = [], from = 0): number {
  for (let i = from; i < trace.length; i++) {
    const e = trace[i]!;
    if (e.op === op && args.every((a, k) => e.args[k] === a)) return i;
  }
  return -1;
}

/** Asserts the steps occur in this order and returns their entries. */
function inOrder(trace: Trace, steps: ReadonlyArray<readonly [string, readonly number[]]>): NtbSystemTraceEntry[] {
  const out: NtbSystemTraceEntry[] = [];
  let at = 0;
  for (const [op, args] of steps) {
    const i = find(trace, op, args, at);
    expect(i, `${op}(${args.join(', ')}) after step ${out.length} in\n${trace.map((e) => `${e.t.toFixed(3)} ${e.op}(${e.args.join(', ')})`).join('\n')}`).toBeGreaterThanOrEqual(0);
    out.push(trace[i]!);
    at = i + 1;
  }
  return out;
}

async function run(mode: TopologyMode, first: 'host1' | 'host2') {
  const topo = new Topology(ntbEchoTopology({ topology: mode, first, startGapMs: 30, messages: 0, trace: true, timeoutMs: 10_000 }));
  try {
    await topo.start();
    const traces: Partial<Record<1 | 2, Trace>> = {};
    for (const host of [1, 2] as const) {
      const e = (await topo.waitForEvent((ev) => ev.type === 'report' && (ev.data as NtbSystemReport).kind === 'trace' && (ev.data as { host: number }).host === host, { timeoutMs: 15_000 })) as ReportEvent;
      traces[host] = (e.data as Extract<NtbSystemReport, { kind: 'trace' }>).entries;
    }
    await topo.waitForEvent((ev) => ev.system === 'host1' && (ev.type === 'exit' || ev.type === 'crash'), { timeoutMs: 15_000 });
    const crashes = topo.events.filter((ev) => ev.type === 'crash');
    expect(crashes).toEqual([]);
    return { h1: traces[1]!, h2: traces[2]! };
  } finally {
    await topo.stop();
  }
}

describe('RFC §2.6 scratchpad handshake order', () => {
  for (const mode of ['deterministic', 'threads'] as const) {
    for (const first of ['host2', 'host1'] as const) {
      it(`${mode}, ${first} starts first: each host follows the RFC order${mode === 'deterministic' ? ', and the hosts interleave as the RFC says' : ''}`, async () => {
        const { h1, h2 } = await run(mode, first);
        // HOST2 (vhost): probe publishes the MW0 size in spads 7/8, enables the link; at
        // link-up writes the ids (spads 1/2: vendor ANY, device 7), then TYPE_VHOST (2)
        // into the peer's spad 0, and completes once its own spad 0 reads TYPE_VIRTIO.
        const v = inOrder(h2, [
          ['spad_write', [SP.VHOST_MW0_SIZE_LOWER, 0x10_0000]],
          ['spad_write', [SP.VHOST_MW0_SIZE_UPPER, 0]],
          ['link_enable', []],
          ['link_event', [1]],
          ['spad_write', [SP.VHOST_VENDORID, 0xffff_ffff]],
          ['spad_write', [SP.VHOST_DEVICEID, 7]],
          ['peer_spad_write', [0, SP.VIRTIO_TYPE, NTB_VIRTIO_TYPE.VHOST]],
          ['vhost:handshake', []],
        ]);
        // HOST1 (virtio): at link-up waits for TYPE_VHOST, translates MW0 onto a 1 MiB
        // DMA region, writes its address into peer spads 9/10, then TYPE_VIRTIO (1) into
        // peer spad 0, and registers the virtio device.
        const w = inOrder(h1, [
          ['link_enable', []],
          ['link_event', [1]],
          ['mw_set_trans', [0, 0]],
          ['peer_spad_write', [0, SP.VIRTIO_MW0_LOWER_ADDR]],
          ['peer_spad_write', [0, SP.VIRTIO_MW0_UPPER_ADDR]],
          ['peer_spad_write', [0, SP.VIRTIO_TYPE, NTB_VIRTIO_TYPE.VIRTIO]],
          ['virtio:handshake', []],
          ['virtio:registered', []],
        ]);
        const [, , addr, size] = w[2]!.args;
        expect(size).toBe(0x10_0000);
        expect(addr! % 4096).toBe(0);
        // Spads 9/10 carry the translated address: low word, high word.
        expect(w[3]!.args[2]).toBe(addr! % 2 ** 32);
        expect(w[4]!.args[2]).toBe(Math.floor(addr! / 2 ** 32));
        if (mode === 'deterministic') {
          // One virtual clock: HOST1 reads the window size only after HOST2 published
          // TYPE_VHOST, and HOST2 completes only after HOST1 wrote TYPE_VIRTIO.
          expect(v[6]!.t).toBeLessThanOrEqual(w[2]!.t);
          expect(w[5]!.t).toBeLessThanOrEqual(v[7]!.t);
          // The link came up only once both hosts enabled it.
          const later = Math.max(v[2]!.t, w[0]!.t);
          expect(v[3]!.t).toBeGreaterThanOrEqual(later);
          expect(w[1]!.t).toBeGreaterThanOrEqual(later);
        }
      });
    }
  }
});
