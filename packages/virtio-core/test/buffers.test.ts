import { describe, expect, it } from 'vitest';
import { GenPool, VIRTIO_ID, isVirtioError, type VirtioBuffer } from '@x/virtio-core';
import { recordingDriver, setup } from './helpers.js';

const RPMSG = { device: VIRTIO_ID.RPMSG, vendor: 0x1af4 };

describe('GenPool (Linux genalloc, gen_pool_first_fit)', () => {
  it('first fit, rounded to the alignment, merged on free', () => {
    const p = new GenPool({ base: 0x1000, size: 0x100, align: 16 });
    expect(p.alloc(1)).toBe(0x1000); // 1 → 16 bytes
    expect(p.alloc(17)).toBe(0x1010); // 17 → 32 bytes
    expect(p.alloc(16)).toBe(0x1030);
    expect(p.avail).toBe(256 - 16 - 32 - 16); // 192
    expect(p.free(0x1010)).toBe(32);
    // Free: [0x1010, +32) and [0x1040, +192). 48 skips the first hole.
    expect(p.alloc(48)).toBe(0x1040);
    expect(p.alloc(32)).toBe(0x1010);
    for (const a of [0x1000, 0x1010, 0x1030, 0x1040]) p.free(a);
    expect(p.avail).toBe(256);
    expect(p.allocations).toBe(0);
    // All merged back into one extent: the whole range fits again.
    expect(p.alloc(256)).toBe(0x1000);
    expect(p.alloc(1)).toBe(-1);
  });

  it('exhaustion is -1, a double free is BAD_BUFFER', () => {
    const p = new GenPool({ base: 0, size: 64 });
    expect(p.alloc(65)).toBe(-1);
    const a = p.alloc(64);
    expect(a).toBe(0);
    expect(p.alloc(1)).toBe(-1);
    p.free(a);
    expect(() => p.free(a)).toThrow(/BAD_BUFFER/);
    expect(() => p.free(8)).toThrow(/BAD_BUFFER/);
  });

  it('an unaligned base is rounded up and the size trimmed', () => {
    // base 0x1001 → 0x1010; end 0x1101; usable floor((0x1101 - 0x1010) / 16) · 16 = 15 · 16 = 240.
    const p = new GenPool({ base: 0x1001, size: 0x100, align: 16 });
    expect(p.base).toBe(0x1010);
    expect(p.size).toBe(240);
  });

  it('checks its arguments', () => {
    expect(() => new GenPool({ base: 0, size: 64, align: 3 })).toThrow(/align/);
    expect(() => new GenPool({ base: -1, size: 64 })).toThrow(/base/);
    expect(() => new GenPool({ base: 0, size: 64 }).alloc(0)).toThrow(RangeError);
  });
});

describe('VirtioDevice.allocBuffer (RFC patch 12) and core fallback', () => {
  it('fallback: first fit from the dmaRegion, NO_BUFFER_SPACE when exhausted, space reused after free', async () => {
    const { bus, t, dev } = setup({ dmaSize: 4096 });
    await bus.registerDevice(dev);
    const a: VirtioBuffer[] = [];
    for (let i = 0; i < 4; i++) a.push(await dev.allocBuffer(1024));
    expect(a.map((b) => b.addr - t.dmaAddr)).toEqual([0, 1024, 2048, 3072]);
    await expect(dev.allocBuffer(1)).rejects.toSatisfy((e) => isVirtioError(e, 'NO_BUFFER_SPACE'));
    await dev.freeBuffer(a[1]!);
    // 1000 → 1008 bytes (16-aligned) fits the hole at +1024.
    const b = await dev.allocBuffer(1000);
    expect(b.addr - t.dmaAddr).toBe(1024);
    // Zero-copy and reachable: bytes written through the view are at the bus address.
    b.view.set([1, 2, 3]);
    expect([t.memory.read8(b.addr), t.memory.read8(b.addr + 1), t.memory.read8(b.addr + 2)]).toEqual([1, 2, 3]);
    await expect(dev.freeBuffer(a[1]!)).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_BUFFER'));
    await expect(dev.allocBuffer(0)).rejects.toThrow(RangeError);
  });

  it('buffers a driver leaves behind are freed when it is removed (device-managed, like devres)', async () => {
    const { bus, t, dev } = setup({ dmaSize: 4096 });
    await bus.registerDevice(dev);
    const greedy = recordingDriver('greedy', [RPMSG], { probe: async (d) => void (await d.allocBuffer(4096)) });
    await bus.registerDriver(greedy);
    expect(dev.lastError).toBeUndefined();
    await bus.unregisterDriver(greedy);
    await bus.registerDriver(recordingDriver('next', [RPMSG], { probe: async (d) => void (await d.allocBuffer(4096)) }));
    expect(dev.lastError).toBeUndefined();
    expect(t.dmaSize).toBe(4096);
  });

  it('op path: the transport allocates; core checks what it answers and refuses foreign frees', async () => {
    const { bus, t, dev } = setup({ allocBuffer: true, dmaSize: 4096 });
    await bus.registerDevice(dev);
    const b = await dev.allocBuffer(100);
    expect(b.addr % 16).toBe(0);
    expect(b.view.length).toBe(100);
    await expect(dev.freeBuffer({ addr: b.addr + 16, size: 100, view: b.view })).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_BUFFER'));
    await dev.freeBuffer(b);
    // The transport's own exhaustion error surfaces as TRANSPORT with the cause.
    await expect(dev.allocBuffer(8192)).rejects.toSatisfy((e) => isVirtioError(e, 'TRANSPORT'));
    // A transport answering an unaligned address breaks the contract.
    (t.ops as { allocBuffer: (n: number) => VirtioBuffer }).allocBuffer = (n) => ({ addr: 0x4000_0008, size: n, view: new Uint8Array(n) });
    await expect(dev.allocBuffer(8)).rejects.toSatisfy((e) => isVirtioError(e, 'TRANSPORT') && /aligned/.test((e as Error).message));
  });
});
