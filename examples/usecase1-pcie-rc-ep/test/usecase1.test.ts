// Use case 1 end to end (issue 5): the RC's virtio rpmsg bus and the EP's vhost rpmsg bus
// over the PCIe endpoint model, each scenario in both platform modes (one thread,
// deterministic; two workers). No test asserts a time.
import { describe, expect, it } from 'vitest';
import type { TopologyMode } from '@x/platform';
import { main, runUsecase1, type Usecase1Options } from '../src/main.js';

const platforms: readonly TopologyMode[] = ['deterministic', 'threads'];
const quiet = { print: false } as const;

/** Index of the first timeline entry of `side` whose text matches `re` (-1 if none). */
function at(timeline: readonly { side: string; text: string }[], side: string, re: RegExp): number {
  return timeline.findIndex((e) => e.side === side && re.test(e.text));
}

describe.each(platforms)('use case 1, %s', (platform) => {
  const base: Usecase1Options = { ...quiet, platform, streamMs: 200, streamMax: platform === 'deterministic' ? 500 : 20_000, rttRounds: 50, sampleDelayMs: 5 };

  for (const mode of ['rfc', 'modern'] as const) {
    it(`main(${mode}): bring-up, the client sample (100 each way), a 64-byte stream and round trips; no duplicate, no corruption`, async () => {
      const r = await main({ ...base, mode });
      // Linux samples/rpmsg/rpmsg_client_sample.c: "hello world!" answered until 100 arrive, then goodbye.
      for (const lines of [r.sample.rc, r.sample.ep]) {
        expect(lines.filter((l) => l.startsWith('incoming msg'))).toHaveLength(100);
        expect(lines.filter((l) => l.startsWith('incoming msg')).every((l) => l.endsWith('"hello world!"'))).toBe(true);
        expect(lines).toContain('goodbye!');
      }
      expect(r.stream.received).toBe(r.stream.sent);
      expect(r.stream.received).toBeGreaterThan(0);
      expect(r.stream.duplicates).toBe(0);
      expect(r.stream.corrupt).toBe(0);
      expect(r.outcome.data['duplicates']).toBe(0);
    });

    it(`bring-up order (rfc-protocol §2.3, ${mode}): link, BAR, features, queues, DRIVER_OK, channel announced, address assigned`, async () => {
      const { timeline, outcome } = await runUsecase1('demo', { ...base, mode, streamMax: 10, rttRounds: 0, sampleCount: 2 });
      expect(outcome?.error).toBeUndefined();
      // RC: as virtio_pci_epf_probe / virtio_dev_probe run (§2.3 steps 1–7).
      const rc = [/^link up; function/, mode === 'rfc' ? /^register block found in BAR \d/ : /^virtio-pci capabilities found/, /^interrupts: /, /features negotiated 0x/, /^queues activated: input\(256\), output\(256\)$/, /DRIVER_OK$/].map((re) => at(timeline, 'RC', re));
      expect(rc.every((i) => i >= 0)).toBe(true);
      expect([...rc].sort((a, b) => a - b)).toEqual(rc);
      // EP: the function binds a BAR, the link comes up, then the status the host writes, in order.
      const ep = [/bound: /, /^link up/, /^status ACKNOWLEDGE$/, /^status ACKNOWLEDGE \| DRIVER$/, /^features finalized: 0x3$/, /^status ACKNOWLEDGE \| DRIVER \| FEATURES_OK$/, /^channel "rpmsg-uc1-echo" announced/, /^address assigned: "rpmsg-uc1-echo"/].map((re) => at(timeline, 'EP', re));
      expect(ep.every((i) => i >= 0)).toBe(true);
      expect([...ep].sort((a, b) => a - b)).toEqual(ep);
      // DRIVER_OK with both queues attached (vhost_rpmsg's own handler of it, which announces, runs first).
      expect(at(timeline, 'EP', /DRIVER_OK: 2 queue\(s\) activated$/)).toBeGreaterThan(ep[5]!);
      // Features 0x3 = F_NS (bit 0) | F_AS (bit 1), RFC patch 10; modern adds VERSION_1 (bit 32).
      expect(timeline[at(timeline, 'RC', /features negotiated/)]!.text).toContain(mode === 'rfc' ? '0x3 ' : '0x100000003 ');
      // Cause and effect across the link: the EP announces only after DRIVER_OK, the RC sees the announcement.
      expect(at(timeline, 'RC', /^channel "rpmsg-uc1-echo" announced by the EP/)).toBeGreaterThanOrEqual(0);
    });
  }

  it('rfc-protocol §2.2: a silent EP (it never takes a command) gives the RC a typed TIMEOUT, no hang', async () => {
    const { outcome } = await runUsecase1('silent-ep', { ...base, mode: 'rfc', doorbell: 'poll', commandTimeoutMs: 50 });
    expect(outcome?.error).toBeDefined();
    const codes = [outcome!.error!.code, ...outcome!.error!.causes];
    // virtio-core wraps the transport's error: TRANSPORT, caused by PciEpfError TIMEOUT.
    expect(codes.some((c) => c === 'TIMEOUT' || c === 'PciEpfError:TIMEOUT')).toBe(true);
  });

  it('queues: DEACTIVATE / ACTIVATE (rfc-protocol §2.2 queue_cmd): nothing is taken while off, traffic comes back, nothing twice', async () => {
    const { outcome } = await runUsecase1('requeue', { ...base, mode: 'rfc', streamMax: 50 });
    expect(outcome?.error).toBeUndefined();
    const d = outcome!.data;
    expect(d['before']).toBeGreaterThan(0);
    expect(d['before']).toBe(50);
    // 3 sent while queue 1 was off: none echoed. Reactivation detaches every buffer the driver
    // still owns in that ring (virtqueue_detach_unused_buf), used or not: virtio_rpmsg_bus
    // reclaims TX buffers lazily and takes never-used ones first, so none was reclaimed:
    // AS ASSIGN + NS CREATE of the echo channel (2) + the 50 streamed + the 3 = 55.
    expect(d['echoedWhileOff']).toBe(0);
    expect(d['detached']).toBe(2 + 50 + 3);
    expect(d['after']).toBe(d['afterSent']);
    expect(d['after']).toBeGreaterThan(0);
    expect(d['duplicates']).toBe(0);
    expect(d['corrupt']).toBe(0);
  });

  for (const mode of ['rfc', 'modern'] as const) {
    it(`RC reset and re-probe while traffic runs (${mode}): no message delivered twice, on either side`, async () => {
      const { outcome } = await runUsecase1('reprobe', { ...base, mode });
      expect(outcome?.error).toBeUndefined();
      const d = outcome!.data;
      expect(d['received']).toBeGreaterThanOrEqual(600);
      expect(d['duplicates']).toBe(0);
      expect(d['corrupt']).toBe(0);
      expect(d['epDuplicates']).toBe(0);
      // Every echo the RC got was a message the EP saw once.
      expect(d['epDistinct']).toBeGreaterThanOrEqual(d['received']!);
    });
  }

  it.each(['rfc', 'modern'] as const)('EP system killed while traffic runs (%s): the RC gets a typed LINK_DOWN error, no hang', async (mode) => {
    const { outcome, events } = await runUsecase1('ep-killed', { ...base, mode }, { onStreaming: (t) => t.kill('ep') });
    expect(events.some((e) => e.type === 'crash' && e.system === 'ep' && e.reason === 'killed')).toBe(true);
    expect(outcome?.error).toBeDefined();
    const codes = [outcome!.error!.code, ...outcome!.error!.causes];
    expect(codes.some((c) => c === 'LINK_DOWN' || c === 'PciEpfError:LINK_DOWN')).toBe(true);
    expect(outcome!.data['received']).toBeGreaterThanOrEqual(100);
    expect(outcome!.data['duplicates']).toBe(0);
  });
});
