// Regions (issue 5): a topology creates named SharedArrayBuffer regions and each system
// sees a region as an @x/vring ArrayBufferMemory at the bus address it attached it at;
// two systems see the same bytes at two different addresses (as vringh_test.c maps one
// memory twice, or an EP reaches RC memory through a window).
import { describe, expect, it } from 'vitest';
import { Topology, isPlatformError, type RegionAttachment, type TopologyConfig, type TopologyMode } from '@x/platform';
import { DATA_OFF, PAYLOAD } from './fixtures/systems.js';

const fixtures = new URL('./fixtures/systems.ts', import.meta.url);

function pair(mode: TopologyMode, w: RegionAttachment, r: RegionAttachment): TopologyConfig {
  return {
    mode,
    regions: [{ name: 'shm', size: 0x2000, align: 0x1000 }],
    lines: ['go', 'done'],
    systems: [
      { name: 'writer', entry: fixtures, export: 'writer', regions: [w], lines: ['go', 'done'] },
      { name: 'reader', entry: fixtures, export: 'reader', regions: [r], lines: ['go', 'done'] },
    ],
  };
}

async function run(config: TopologyConfig): Promise<{ data: unknown; t: Topology }> {
  const t = new Topology(config);
  try {
    await t.start();
    const e = await t.waitForEvent((x) => x.type === 'report' || x.type === 'crash', { timeoutMs: 10_000 });
    if (e.type === 'crash') throw e.error;
    await t.waitForEvent((x) => x.system === 'writer' && x.type === 'exit', { timeoutMs: 10_000 });
    return { data: e.type === 'report' ? e.data : undefined, t };
  } finally {
    await t.stop();
  }
}

describe.each<TopologyMode>(['threads', 'deterministic'])('%s mode', (mode) => {
  it('a system reads, at its own base address, what another system wrote at its own', async () => {
    // writer sees the region at 0x8000_0000, reader at 0x1_0000_0000 (above 4 GiB).
    const { data, t } = await run(pair(mode, { region: 'shm', base: 0x8000_0000 }, { region: 'shm', base: 0x1_0000_0000 }));
    expect(data).toEqual({
      base: 0x1_0000_0000,
      size: 0x2000,
      at: 0x1_0000_0000 + DATA_OFF, // 0x1_0000_0010
      u32: 0x1234_5678,
      busU32: 0x1234_5678,
      bytes: PAYLOAD,
    });
    // The owner's probe sees the same bytes at offset 0x10, little-endian: 78 56 34 12.
    const probe = t.memory('shm');
    const raw = new Uint8Array(10);
    probe.read(0x10, raw);
    expect([...raw]).toEqual([0x78, 0x56, 0x34, 0x12, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02]);
  });

  it('an attachment can show part of a region: offset 0x1000, size 0x1000', async () => {
    const w = { region: 'shm', base: 0x4000_0000, offset: 0x1000, size: 0x1000 };
    const r = { region: 'shm', base: 0x7000_0000, offset: 0x1000 };
    const { data, t } = await run(pair(mode, w, r));
    // reader: size = 0x2000 − 0x1000 = 0x1000; writer wrote at its 0x4000_0010 = region 0x1010.
    expect(data).toMatchObject({ base: 0x7000_0000, size: 0x1000, at: 0x7000_0010, u32: 0x1234_5678 });
    expect(t.memory('shm', 0x9000).read32(0x9000 + 0x1010)).toBe(0x1234_5678);
    expect(t.memory('shm').read32(0x10)).toBe(0);
  });
});

describe('declaration checks: BAD_CONFIG before anything is allocated or started', () => {
  const entry = fixtures;
  const base: TopologyConfig = { mode: 'deterministic', regions: [{ name: 'shm', size: 0x2000, align: 0x1000 }], lines: ['x'], systems: [{ name: 'a', entry }] };
  const cases: Array<[string, TopologyConfig]> = [
    ['a base not aligned to the region alignment (0x8000_0010 vs 0x1000)', { ...base, systems: [{ name: 'a', entry, regions: [{ region: 'shm', base: 0x8000_0010 }] }] }],
    ['two regions overlapping in one system', {
      ...base,
      regions: [{ name: 'shm', size: 0x2000 }, { name: 'b', size: 0x100 }],
      systems: [{ name: 'a', entry, regions: [{ region: 'shm', base: 0x1000 }, { region: 'b', base: 0x2f00 }] }],
    }],
    ['an unknown region', { ...base, systems: [{ name: 'a', entry, regions: [{ region: 'nope', base: 0 }] }] }],
    ['the same region twice in one system', { ...base, systems: [{ name: 'a', entry, regions: [{ region: 'shm', base: 0 }, { region: 'shm', base: 0x10000 }] }] }],
    ['an offset past the region', { ...base, systems: [{ name: 'a', entry, regions: [{ region: 'shm', base: 0, offset: 0x2000 }] }] }],
    ['a size past the region', { ...base, systems: [{ name: 'a', entry, regions: [{ region: 'shm', base: 0, offset: 0x1000, size: 0x1001 }] }] }],
    ['a region past 2^53', { ...base, systems: [{ name: 'a', entry, regions: [{ region: 'shm', base: 2 ** 53 - 0x1000 }] }] }],
    ['an alignment that is not a power of two', { ...base, regions: [{ name: 'shm', size: 0x2000, align: 0x1800 }] }],
    ['a region of 0 bytes', { ...base, regions: [{ name: 'shm', size: 0 }] }],
    ['a duplicate region name', { ...base, regions: [{ name: 'shm', size: 1 }, { name: 'shm', size: 2 }] }],
    ['an unknown line', { ...base, systems: [{ name: 'a', entry, lines: ['y'] }] }],
    ['a duplicate line', { ...base, lines: ['x', 'x'] }],
    ['a duplicate system name', { ...base, systems: [{ name: 'a', entry }, { name: 'a', entry }] }],
    ['no systems', { ...base, systems: [] }],
    ['a config that holds a function', { ...base, systems: [{ name: 'a', entry, config: { f: () => 1 } }] }],
    ['an unknown mode', { ...base, mode: 'processes' as never }],
  ];
  it.each(cases)('%s', (_, config) => {
    expect(() => new Topology(config)).toThrow(expect.objectContaining({ name: 'PlatformError', code: 'BAD_CONFIG' }));
  });

  it('asking a context for a line or region it did not attach is BAD_CONFIG (a crash of that system)', async () => {
    const t = new Topology({ mode: 'deterministic', lines: ['go', 'done'], systems: [{ name: 'w', entry: fixtures, export: 'writer', lines: ['go', 'done'] }] });
    await t.start();
    const e = await t.waitForEvent((x) => x.type === 'crash');
    await t.stop();
    expect(e.type === 'crash' && isPlatformError(e.error.cause, 'BAD_CONFIG')).toBe(true);
  });
});
