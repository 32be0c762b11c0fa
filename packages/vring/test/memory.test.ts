// GuestMemory providers: little-endian access at bus addresses (VIRTIO 1.2 §1.4), bounds
// that raise BUS_ERROR instead of reading zeros, and windows (RegionMemory) with the
// alignment and region limits of PCIe outbound windows / NTB memory windows.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArrayBufferMemory, MAX_BUS_ADDR, RegionMemory, isVringError, type GuestMemory } from '@x/vring';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isVringError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a VringError, nothing was thrown');
}

function bytes(buf: ArrayBuffer | SharedArrayBuffer, off: number, len: number): number[] {
  return [...new Uint8Array(buf, off, len)];
}

describe('ArrayBufferMemory: little-endian accessors (§1.4: every leNN field is little-endian)', () => {
  const make = () => {
    const buf = new ArrayBuffer(64);
    return { buf, mem: new ArrayBufferMemory(buf, { base: 0x1000 }) };
  };

  it('write16/32/64 store the least significant byte first', () => {
    const { buf, mem } = make();
    mem.write16(0x1000, 0x1234);
    expect(bytes(buf, 0, 2)).toEqual([0x34, 0x12]);
    mem.write32(0x1004, 0x12345678);
    expect(bytes(buf, 4, 4)).toEqual([0x78, 0x56, 0x34, 0x12]);
    mem.write64(0x1008, 0x0123_4567_89ab); // above 2^32: high word 0x0123, low word 0x456789ab
    expect(bytes(buf, 8, 8)).toEqual([0xab, 0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00]);
    mem.write8(0x1010, 0xfe);
    expect(bytes(buf, 16, 1)).toEqual([0xfe]);
  });

  it('read16/32/64 assemble bytes least significant first', () => {
    const { buf, mem } = make();
    new Uint8Array(buf).set([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x00], 0);
    expect(mem.read8(0x1000)).toBe(0x01);
    expect(mem.read16(0x1000)).toBe(0x0201);
    expect(mem.read32(0x1000)).toBe(0x04030201);
    expect(mem.read32(0x1004)).toBe(0x00070605);
    expect(mem.read64(0x1000)).toBe(0x0007_0605_0403_0201);
    new Uint8Array(buf).set([0xff, 0xff, 0xff, 0xff], 8);
    expect(mem.read32(0x1008)).toBe(0xffff_ffff); // unsigned, not -1
  });

  it('u64 round-trips up to 2^53 − 1 (bytes ff ff ff ff ff ff 1f 00)', () => {
    const { buf, mem } = make();
    mem.write64(0x1000, MAX_BUS_ADDR);
    expect(bytes(buf, 0, 8)).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00]);
    expect(mem.read64(0x1000)).toBe(2 ** 53 - 1);
    expect(MAX_BUS_ADDR).toBe(2 ** 53 - 1);
  });

  it('read64 of a value above 2^53 − 1 is VALUE_RANGE, never a rounded number', () => {
    const { buf, mem } = make();
    new Uint8Array(buf).set([0, 0, 0, 0, 0, 0, 0x20, 0], 0); // exactly 2^53
    expect(codeOf(() => mem.read64(0x1000))).toBe('VALUE_RANGE');
    new Uint8Array(buf).fill(0xff, 8, 16); // 2^64 − 1
    expect(codeOf(() => mem.read64(0x1008))).toBe('VALUE_RANGE');
  });

  it('write64 refuses values that are not in [0, 2^53 − 1] (RangeError) and leaves memory untouched', () => {
    const { buf, mem } = make();
    for (const v of [2 ** 53, -1, Number.NaN, Infinity]) expect(() => mem.write64(0x1000, v)).toThrow(RangeError);
    expect(bytes(buf, 0, 8)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('any u8/u16/u32/u64 value round-trips (property)', () => {
    const { mem } = make();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 56 }), fc.maxSafeNat(), (off, v) => {
        mem.write8(0x1000 + off, v & 0xff);
        expect(mem.read8(0x1000 + off)).toBe(v & 0xff);
        mem.write16(0x1000 + off, v & 0xffff);
        expect(mem.read16(0x1000 + off)).toBe(v & 0xffff);
        mem.write32(0x1000 + off, v >>> 0);
        expect(mem.read32(0x1000 + off)).toBe(v >>> 0);
        mem.write64(0x1000 + off, v);
        expect(mem.read64(0x1000 + off)).toBe(v);
      }),
      { numRuns: 300 },
    );
  });

  it('bulk read/write copy bytes with offsets and lengths', () => {
    const { buf, mem } = make();
    mem.write(0x1004, new Uint8Array([9, 1, 2, 3, 9]), 1, 3);
    expect(bytes(buf, 3, 5)).toEqual([0, 1, 2, 3, 0]);
    const dst = new Uint8Array([7, 7, 7, 7, 7]);
    mem.read(0x1004, dst, 1, 3);
    expect([...dst]).toEqual([7, 1, 2, 3, 7]);
    // Long copies (the TypedArray.set path) too.
    const big = Uint8Array.from({ length: 60 }, (_, i) => i + 1);
    mem.write(0x1002, big);
    const back = new Uint8Array(60);
    mem.read(0x1002, back);
    expect(back).toEqual(big);
    expect(() => mem.read(0x1000, new Uint8Array(2), 1, 2)).toThrow(RangeError);
    expect(() => mem.write(0x1000, new Uint8Array(2), 1, 2)).toThrow(RangeError);
  });
});

describe('ArrayBufferMemory: bulk length checks', () => {
  // Regression (a bug the test suite found, fixed): a negative length passes every check and is a silent no-op.
  it('read / write refuse a negative length (RangeError)', () => {
    const mem = new ArrayBufferMemory(new ArrayBuffer(16));
    expect(() => mem.read(0, new Uint8Array(4), 0, -1)).toThrow(RangeError);
    expect(() => mem.write(0, new Uint8Array(4), 0, -1)).toThrow(RangeError);
  });
});

describe('ArrayBufferMemory: bounds (DESIGN: access outside the memory is a bus error, never zeros)', () => {
  const make = () => {
    const buf = new ArrayBuffer(32);
    new Uint8Array(buf).fill(0xaa);
    return { buf, mem: new ArrayBufferMemory(buf, { base: 0x2000 }) };
  };

  it('reads below the base, at the end, and straddling the end are BUS_ERROR', () => {
    const { mem } = make();
    expect(codeOf(() => mem.read8(0x1fff))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.read8(0x2020))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.read16(0x201f))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.read32(0x201d))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.read64(0x2019))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.read(0x2010, new Uint8Array(17)))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.view(0x2010, 17))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.load16Acquire(0x2020))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.load32Acquire(0x201e))).toBe('BUS_ERROR');
    // The last bytes are fine.
    expect(mem.read8(0x201f)).toBe(0xaa);
    expect(mem.read32(0x201c)).toBe(0xaaaaaaaa);
  });

  it('a failed bulk read leaves the destination untouched (no partial copy)', () => {
    const { mem } = make();
    const dst = new Uint8Array(17).fill(5);
    expect(codeOf(() => mem.read(0x2010, dst))).toBe('BUS_ERROR');
    expect(dst.every((b) => b === 5)).toBe(true);
  });

  it('writes out of bounds are BUS_ERROR and change nothing', () => {
    const { buf, mem } = make();
    const before = bytes(buf, 0, 32);
    expect(codeOf(() => mem.write8(0x2020, 1))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.write16(0x201f, 1))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.write32(0x201e, 1))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.write64(0x201c, 1))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.write(0x201f, new Uint8Array(2)))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.store16Release(0x1ffe, 1))).toBe('BUS_ERROR');
    expect(codeOf(() => mem.store32Release(0x2020, 1))).toBe('BUS_ERROR');
    expect(bytes(buf, 0, 32)).toEqual(before);
  });

  it('fractional, negative and NaN addresses are BUS_ERROR', () => {
    const { mem } = make();
    for (const a of [0x2000 + 0.5, -1, Number.NaN, Infinity]) expect(codeOf(() => mem.read8(a))).toBe('BUS_ERROR');
  });

  it('contains() tells exactly which ranges are accessible', () => {
    const { mem } = make();
    expect(mem.contains(0x2000, 32)).toBe(true);
    expect(mem.contains(0x2000, 33)).toBe(false);
    expect(mem.contains(0x1fff, 1)).toBe(false);
    expect(mem.contains(0x2020, 0)).toBe(true); // the empty range at the end
    expect(mem.contains(0x2021, 0)).toBe(false);
    expect(mem.contains(0x2000, -1)).toBe(false);
    expect(mem.contains(0x2000 + 0.5, 1)).toBe(false);
  });
});

describe('ArrayBufferMemory: base addresses and byteOffset / byteLength windows', () => {
  it('one buffer at two bases shows the same bytes at two bus addresses (vringh_test style)', () => {
    const buf = new ArrayBuffer(16);
    const a = new ArrayBufferMemory(buf, { base: 0x1000_0000 });
    const b = new ArrayBufferMemory(buf, { base: 0x8_0000_0000 });
    a.write32(0x1000_0004, 0xdeadbeef);
    expect(b.read32(0x8_0000_0004)).toBe(0xdeadbeef);
    expect(codeOf(() => b.read8(0x1000_0004))).toBe('BUS_ERROR');
  });

  it('a base near 2^53 works up to the last byte, 2^53 − 1', () => {
    const buf = new ArrayBuffer(16);
    const m = new ArrayBufferMemory(buf, { base: MAX_BUS_ADDR - 15 });
    m.write8(MAX_BUS_ADDR, 0x5a);
    expect(new Uint8Array(buf)[15]).toBe(0x5a);
    // 16 bytes at 2^53 − 32 end at 2^53 − 17: the sum is exact, so the check works.
    expect(() => new ArrayBufferMemory(new ArrayBuffer(48), { base: MAX_BUS_ADDR - 31 })).toThrow(RangeError);
  });

  // Regression: (2^53 − 15) + 16 = 2^53 + 1 rounds to 2^53 in floating
  // point, so a sum-based check let a memory end at 2^53 and read8(2^53) serve a byte.
  it('refuses a memory whose last byte would be above 2^53 − 1 (no rounding at the top)', () => {
    const buf = new ArrayBuffer(16);
    expect(() => new ArrayBufferMemory(buf, { base: MAX_BUS_ADDR - 14 })).toThrow(RangeError);
  });

  it('byteOffset / byteLength expose a window of the buffer and nothing outside it', () => {
    const buf = new ArrayBuffer(64);
    new Uint8Array(buf).forEach((_, i, a) => (a[i] = i));
    const m = new ArrayBufferMemory(buf, { base: 0x1000, byteOffset: 16, byteLength: 16 });
    expect(m.size).toBe(16);
    expect(m.byteOffset).toBe(16);
    expect(m.read8(0x1000)).toBe(16);
    expect(m.read32(0x100c)).toBe(0x1f1e1d1c);
    expect(codeOf(() => m.read8(0x1010))).toBe('BUS_ERROR'); // buffer byte 32 exists, but is outside the window
    expect(codeOf(() => m.read8(0x0fff))).toBe('BUS_ERROR');
    const v = m.view(0x1004, 4);
    expect([...v]).toEqual([20, 21, 22, 23]);
  });

  it('byteOffset alone exposes the rest of the buffer', () => {
    const buf = new ArrayBuffer(64);
    const m = new ArrayBufferMemory(buf, { byteOffset: 60 });
    expect(m.size).toBe(4);
    expect(m.contains(0, 4)).toBe(true);
    expect(m.contains(0, 5)).toBe(false);
  });

  it('rejects bad options naming the argument (TypeError for type, RangeError for range)', () => {
    const buf = new ArrayBuffer(32);
    expect(() => new ArrayBufferMemory(new Uint8Array(4) as unknown as ArrayBuffer)).toThrow(TypeError);
    expect(() => new ArrayBufferMemory(buf, { base: '0' as unknown as number })).toThrow(/base/);
    expect(() => new ArrayBufferMemory(buf, { base: '0' as unknown as number })).toThrow(TypeError);
    expect(() => new ArrayBufferMemory(buf, { base: -1 })).toThrow(RangeError);
    expect(() => new ArrayBufferMemory(buf, { base: 1.5 })).toThrow(RangeError);
    expect(() => new ArrayBufferMemory(buf, { base: 2 ** 53 })).toThrow(RangeError);
    expect(() => new ArrayBufferMemory(buf, { byteOffset: 33 })).toThrow(/byteOffset/);
    expect(() => new ArrayBufferMemory(buf, { byteOffset: 16, byteLength: 17 })).toThrow(/byteLength/);
    expect(() => new ArrayBufferMemory(buf, { byteOffset: 16, byteLength: 17 })).toThrow(RangeError);
  });
});

describe('ArrayBufferMemory: view is zero-copy', () => {
  it('a view aliases the memory both ways', () => {
    const buf = new ArrayBuffer(32);
    const m = new ArrayBufferMemory(buf, { base: 0x4000, byteOffset: 8 });
    const v = m.view(0x4002, 4);
    expect(v.buffer).toBe(buf);
    expect(v.byteOffset).toBe(10);
    v[0] = 0x77;
    expect(m.read8(0x4002)).toBe(0x77);
    m.write8(0x4003, 0x66);
    expect(v[1]).toBe(0x66);
    expect(m.view(0x4000, 0).length).toBe(0);
  });
});

describe('ArrayBufferMemory: acquire / release ring words', () => {
  it.each([
    ['ArrayBuffer', () => new ArrayBuffer(32)],
    ['SharedArrayBuffer', () => new SharedArrayBuffer(32)],
  ])('%s: store16Release / store32Release are little-endian and round-trip through the acquire loads', (_n, mk) => {
    const buf = mk();
    const m = new ArrayBufferMemory(buf, { base: 0x100 });
    m.store16Release(0x102, 0xbeef);
    expect(bytes(buf, 2, 2)).toEqual([0xef, 0xbe]);
    expect(m.load16Acquire(0x102)).toBe(0xbeef);
    expect(m.read16(0x102)).toBe(0xbeef);
    m.store32Release(0x104, 0x89abcdef);
    expect(bytes(buf, 4, 4)).toEqual([0xef, 0xcd, 0xab, 0x89]);
    expect(m.load32Acquire(0x104)).toBe(0x89abcdef);
    m.write16(0x108, 0x0102);
    expect(m.load16Acquire(0x108)).toBe(0x0102);
  });

  it('a 16-bit ring word at an odd address, or a 32-bit one not 4-aligned, is MISALIGNED', () => {
    const buf = new ArrayBuffer(32);
    const m = new ArrayBufferMemory(buf, { base: 0x100 });
    expect(codeOf(() => m.load16Acquire(0x101))).toBe('MISALIGNED');
    expect(codeOf(() => m.store16Release(0x103, 1))).toBe('MISALIGNED');
    expect(codeOf(() => m.load32Acquire(0x102))).toBe('MISALIGNED');
    expect(codeOf(() => m.store32Release(0x101, 1))).toBe('MISALIGNED');
    expect(bytes(buf, 0, 8)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('RegionMemory: bus ranges mapped onto other memories (PCIe outbound window, NTB memory window, IOTLB)', () => {
  const backing = () => {
    const buf = new ArrayBuffer(0x4000);
    new Uint8Array(buf).forEach((_, i, a) => (a[i] = i & 0xff));
    return { buf, target: new ArrayBufferMemory(buf, { base: 0x10_0000 }) };
  };

  it('translates each access to target address = targetAddr + (addr − busAddr)', () => {
    const { buf, target } = backing();
    const rm = new RegionMemory({ name: 'ob window' });
    rm.map({ busAddr: 0x8000_0000, size: 0x1000, target, targetAddr: 0x10_2000 });
    // 0x8000_0005 → 0x10_2005 → buffer offset 0x2005, byte value 0x05.
    expect(rm.read8(0x8000_0005)).toBe(0x05);
    expect(rm.read16(0x8000_0010)).toBe(0x1110);
    expect(rm.read32(0x8000_0010)).toBe(0x13121110);
    rm.write32(0x8000_0ffc, 0xcafef00d);
    expect(bytes(buf, 0x2ffc, 4)).toEqual([0x0d, 0xf0, 0xfe, 0xca]);
    rm.write64(0x8000_0100, 2 ** 40 + 3);
    expect(target.read64(0x10_2100)).toBe(2 ** 40 + 3);
    expect(rm.read64(0x8000_0100)).toBe(2 ** 40 + 3);
    rm.write8(0x8000_0000, 0x42);
    expect(new Uint8Array(buf)[0x2000]).toBe(0x42);
    const dst = new Uint8Array(4);
    rm.read(0x8000_0020, dst);
    expect([...dst]).toEqual([0x20, 0x21, 0x22, 0x23]);
    rm.write(0x8000_0030, new Uint8Array([1, 2, 3]));
    expect(bytes(buf, 0x2030, 3)).toEqual([1, 2, 3]);
    rm.store16Release(0x8000_0040, 0xabcd);
    expect(rm.load16Acquire(0x8000_0040)).toBe(0xabcd);
    rm.store32Release(0x8000_0044, 0x01020304);
    expect(rm.load32Acquire(0x8000_0044)).toBe(0x01020304);
    expect(bytes(buf, 0x2044, 4)).toEqual([4, 3, 2, 1]);
  });

  it('translate() names the region and the target address', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    const r = rm.map({ busAddr: 0x1000, size: 0x800, target, targetAddr: 0x10_0800, name: 'w0' });
    const t = rm.translate(0x1010, 16);
    expect(t.targetAddr).toBe(0x10_0810);
    expect(t.region).toBe(r);
    expect(t.region.name).toBe('w0');
    expect(codeOf(() => rm.translate(0x17f8, 16))).toBe('BUS_ERROR'); // runs past the region end 0x1800
    expect(codeOf(() => rm.translate(0x0fff, 1))).toBe('BUS_ERROR');
  });

  it('an access spanning two adjacent regions is BUS_ERROR (no access may cross a window)', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x1000, size: 0x100, target, targetAddr: 0x10_0000 });
    rm.map({ busAddr: 0x1100, size: 0x100, target, targetAddr: 0x10_0100 });
    // Both sides are mapped to contiguous target bytes, yet the access crosses a window edge.
    expect(rm.read8(0x10ff)).toBe(0xff);
    expect(rm.read8(0x1100)).toBe(0x00);
    expect(codeOf(() => rm.read16(0x10ff))).toBe('BUS_ERROR');
    expect(codeOf(() => rm.read32(0x10fe))).toBe('BUS_ERROR');
    expect(codeOf(() => rm.read64(0x10fc))).toBe('BUS_ERROR');
    expect(codeOf(() => rm.read(0x10f0, new Uint8Array(0x20)))).toBe('BUS_ERROR');
    expect(codeOf(() => rm.write(0x10f0, new Uint8Array(0x20)))).toBe('BUS_ERROR');
    expect(codeOf(() => rm.view(0x10f0, 0x20))).toBe('BUS_ERROR');
    expect(rm.contains(0x10f0, 0x20)).toBe(false);
    expect(rm.contains(0x10f0, 0x10)).toBe(true);
  });

  it('holes and addresses outside every region are BUS_ERROR, never zeros', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x1000, size: 0x100, target, targetAddr: 0x10_0000 });
    rm.map({ busAddr: 0x3000, size: 0x100, target, targetAddr: 0x10_1000 });
    for (const a of [0, 0x0fff, 0x1100, 0x2000, 0x2fff, 0x3100, MAX_BUS_ADDR]) {
      expect(codeOf(() => rm.read8(a))).toBe('BUS_ERROR');
      expect(codeOf(() => rm.write8(a, 0))).toBe('BUS_ERROR');
    }
    expect(codeOf(() => rm.read(0x10f0, new Uint8Array(0x20)))).toBe('BUS_ERROR'); // into the hole
    expect(codeOf(() => rm.load16Acquire(0x2000))).toBe('BUS_ERROR');
    expect(codeOf(() => rm.store32Release(0x2000, 0))).toBe('BUS_ERROR');
    expect(codeOf(() => new RegionMemory().read8(0))).toBe('BUS_ERROR'); // nothing mapped at all
  });

  it('contains() with length 0 is true inside a region or at its end, false in a hole', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x1000, size: 0x100, target, targetAddr: 0x10_0000 });
    expect(rm.contains(0x1000, 0)).toBe(true);
    expect(rm.contains(0x1100, 0)).toBe(true);
    expect(rm.contains(0x1101, 0)).toBe(false);
    expect(rm.contains(0x1000, 0x100)).toBe(true);
    expect(rm.contains(0x1000, 0x101)).toBe(false);
    expect(rm.contains(0x1000, -1)).toBe(false);
  });

  it('unmap removes a region (also from the last-hit cache) and clear removes all', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x1000, size: 0x100, target, targetAddr: 0x10_0000 });
    rm.map({ busAddr: 0x2000, size: 0x100, target, targetAddr: 0x10_0100 });
    expect(rm.read8(0x1001)).toBe(1); // primes the cache with region 0x1000
    expect(rm.unmap(0x1080)).toBe(false); // not the start of a region
    expect(rm.unmap(0x1000)).toBe(true);
    expect(rm.unmap(0x1000)).toBe(false);
    expect(codeOf(() => rm.read8(0x1001))).toBe('BUS_ERROR');
    expect(rm.regions.map((r) => r.busAddr)).toEqual([0x2000]);
    expect(rm.read8(0x2001)).toBe(1);
    rm.clear();
    expect(rm.regions).toEqual([]);
    expect(codeOf(() => rm.read8(0x2001))).toBe('BUS_ERROR');
  });

  it('regions are listed sorted by bus address and frozen', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x3000, size: 0x10, target, targetAddr: 0x10_0000 });
    rm.map({ busAddr: 0x1000, size: 0x10, target, targetAddr: 0x10_0000 });
    rm.map({ busAddr: 0x2000, size: 0x10, target, targetAddr: 0x10_0000 });
    expect(rm.regions.map((r) => r.busAddr)).toEqual([0x1000, 0x2000, 0x3000]);
    expect(Object.isFrozen(rm.regions[0])).toBe(true);
    // Two bus ranges may alias the same target bytes.
    rm.write8(0x1000, 0x99);
    expect(rm.read8(0x2000)).toBe(0x99);
  });

  it('finds the right region among many (binary search) for every address (property)', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    // 32 regions of 0x40 bytes at bus 0x10000 + 0x100·k, each mapped to target 0x10_0000 + 0x40·k.
    for (let k = 0; k < 32; k++) rm.map({ busAddr: 0x10000 + 0x100 * k, size: 0x40, target, targetAddr: 0x10_0000 + 0x40 * k });
    fc.assert(
      fc.property(fc.integer({ min: 0x10000 - 0x100, max: 0x10000 + 0x100 * 33 }), (a) => {
        const k = Math.floor((a - 0x10000) / 0x100);
        const inRegion = k >= 0 && k < 32 && a - (0x10000 + 0x100 * k) < 0x40;
        if (inRegion) expect(rm.read8(a)).toBe((0x40 * k + (a - 0x10000 - 0x100 * k)) & 0xff);
        else expect(codeOf(() => rm.read8(a))).toBe('BUS_ERROR');
      }),
      { numRuns: 500 },
    );
  });

  it('alignment: bus address and size must be multiples of it (RangeError)', () => {
    const { target } = backing();
    const rm = new RegionMemory({ alignment: 0x1000 });
    expect(rm.alignment).toBe(0x1000);
    expect(() => rm.map({ busAddr: 0x1800, size: 0x1000, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: 0x1000, size: 0x800, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: 0x1000, size: 0x2000, target, targetAddr: 0x10_0000 })).not.toThrow();
    for (const alignment of [0, 3, 0x1800, 2 ** 31, -2, 1.5]) expect(() => new RegionMemory({ alignment })).toThrow(RangeError);
  });

  // Regression (a bug the test suite found, fixed): maxRegions is not validated; NaN even means "no limit".
  it('refuses a maxRegions that is not a positive integer (RangeError)', () => {
    for (const maxRegions of [-1, Number.NaN, 1.5, 0]) expect(() => new RegionMemory({ maxRegions })).toThrow(RangeError);
  });

  it('overlapping regions are refused; adjacent ones are fine', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x1000, size: 0x100, target, targetAddr: 0x10_0000 });
    expect(() => rm.map({ busAddr: 0x10ff, size: 0x10, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: 0x0f80, size: 0x81, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: 0x0f00, size: 0x400, target, targetAddr: 0x10_0000 })).toThrow(RangeError); // covers it
    expect(() => rm.map({ busAddr: 0x1040, size: 0x10, target, targetAddr: 0x10_0000 })).toThrow(RangeError); // inside it
    expect(() => rm.map({ busAddr: 0x1100, size: 0x10, target, targetAddr: 0x10_0000 })).not.toThrow();
    expect(() => rm.map({ busAddr: 0x0f00, size: 0x100, target, targetAddr: 0x10_0000 })).not.toThrow();
    expect(rm.regions.length).toBe(3);
  });

  it('maxRegions bounds the number of mappings (like a fixed number of outbound windows)', () => {
    const { target } = backing();
    const rm = new RegionMemory({ maxRegions: 2 });
    rm.map({ busAddr: 0x1000, size: 0x10, target, targetAddr: 0x10_0000 });
    rm.map({ busAddr: 0x2000, size: 0x10, target, targetAddr: 0x10_0000 });
    expect(() => rm.map({ busAddr: 0x3000, size: 0x10, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    rm.unmap(0x1000);
    expect(() => rm.map({ busAddr: 0x3000, size: 0x10, target, targetAddr: 0x10_0000 })).not.toThrow();
  });

  it('refuses an empty region, a region past 2^53 and a target that does not hold the whole range', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    expect(() => rm.map({ busAddr: 0x1000, size: 0, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: MAX_BUS_ADDR - 0x20, size: 0x40, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: 0x1000, size: 0x4001, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: 0x1000, size: 0x10, target, targetAddr: 0x0f_fff0 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: -1, size: 0x10, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
    expect(() => rm.map({ busAddr: '1' as unknown as number, size: 0x10, target, targetAddr: 0x10_0000 })).toThrow(TypeError);
    expect(rm.regions).toEqual([]);
  });

  // Regression: (2^53 − 1) + 2 rounds to 2^53, so a sum-based check let a
  // region reach 2^53.
  it('refuses a region whose last byte would be above 2^53 − 1 (no rounding at the top)', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    expect(() => rm.map({ busAddr: MAX_BUS_ADDR, size: 2, target, targetAddr: 0x10_0000 })).toThrow(RangeError);
  });

  it('view passes through to a target that gives zero-copy views, and is undefined otherwise', () => {
    const { buf, target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x1000, size: 0x100, target, targetAddr: 0x10_0200 });
    const v = rm.view(0x1010, 8)!;
    expect(v).toBeDefined();
    expect(v.buffer).toBe(buf);
    v[0] = 0xee;
    expect(new Uint8Array(buf)[0x210]).toBe(0xee);
    // A target without view (e.g. MMIO-like memory): the window cannot give one either.
    const noView: GuestMemory = {
      contains: (a, l) => target.contains(a, l),
      read8: (a) => target.read8(a),
      read16: (a) => target.read16(a),
      read32: (a) => target.read32(a),
      read64: (a) => target.read64(a),
      write8: (a, x) => target.write8(a, x),
      write16: (a, x) => target.write16(a, x),
      write32: (a, x) => target.write32(a, x),
      write64: (a, x) => target.write64(a, x),
      read: (a, d, o, l) => target.read(a, d, o, l),
      write: (a, s, o, l) => target.write(a, s, o, l),
      load16Acquire: (a) => target.load16Acquire(a),
      store16Release: (a, x) => target.store16Release(a, x),
      load32Acquire: (a) => target.load32Acquire(a),
      store32Release: (a, x) => target.store32Release(a, x),
    };
    rm.map({ busAddr: 0x2000, size: 0x100, target: noView, targetAddr: 0x10_0200 });
    expect(rm.view(0x2010, 8)).toBeUndefined();
    expect(rm.read8(0x2010)).toBe(0xee);
    expect(codeOf(() => rm.view(0x3000, 8))).toBe('BUS_ERROR');
  });

  it('passes MISALIGNED from the target through for ring words', () => {
    const { target } = backing();
    const rm = new RegionMemory();
    rm.map({ busAddr: 0x1000, size: 0x100, target, targetAddr: 0x10_0000 });
    expect(codeOf(() => rm.load16Acquire(0x1001))).toBe('MISALIGNED');
    expect(codeOf(() => rm.store32Release(0x1002, 0))).toBe('MISALIGNED');
  });

  it('windows compose: a RegionMemory onto a RegionMemory', () => {
    const { target } = backing();
    const inner = new RegionMemory({ name: 'iotlb' });
    inner.map({ busAddr: 0x4000, size: 0x1000, target, targetAddr: 0x10_1000 });
    const outer = new RegionMemory({ name: 'ntb mw' });
    outer.map({ busAddr: 0x9000_0000, size: 0x800, target: inner, targetAddr: 0x4800 });
    // 0x9000_0010 → inner 0x4810 → target 0x10_1810 → byte 0x10.
    expect(outer.read8(0x9000_0010)).toBe(0x10);
    expect(codeOf(() => outer.read8(0x9000_0800))).toBe('BUS_ERROR');
    // The outer window cannot be mapped onto more than the inner one holds.
    expect(() => outer.map({ busAddr: 0xa000_0000, size: 0x1000, target: inner, targetAddr: 0x4800 })).toThrow(RangeError);
  });
});
