// The driver half (Linux virtio_ring.c; VIRTIO 1.2 §2.7.13–§2.7.14). The device is played
// by hand: ring bytes are read and written with a DataView at offsets from §2.7.5–§2.7.8,
// so these tests do not depend on Vringh (except the end-to-end wrap test).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ArrayBufferMemory,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_USED_F_NO_NOTIFY,
  Virtqueue,
  VringIov,
  isVringError,
  vringLegacyLayout,
  type GuestMemory,
  type VirtqueueOptions,
  type VringError,
} from '@x/vring';
import { createRingPair } from '@x/vring/testing';

const BASE = 0x1000_0000;
const INDIRECT_AREA = BASE + 0x1_0000;
const DATA = BASE + 0x1_8000;

/** Appendix A restated: an event at `ev` fires when the index moves from `old` to `neu` past it. */
function passes(ev: number, neu: number, old: number): boolean {
  return ((ev - old) & 0xffff) < ((neu - old) & 0xffff);
}

function thrown(fn: () => unknown): VringError {
  try {
    fn();
  } catch (e) {
    if (isVringError(e)) return e;
    throw e;
  }
  throw new Error('expected a VringError, nothing was thrown');
}

/** Counts the acquire/release stores per address; hides `view` so every ring access goes through it. */
class StoreCounter implements GuestMemory {
  readonly stores = new Map<number, number>();
  constructor(private readonly m: GuestMemory) {}
  count(addr: number): number {
    return this.stores.get(addr) ?? 0;
  }
  private hit(addr: number): void {
    this.stores.set(addr, this.count(addr) + 1);
  }
  contains(a: number, l: number) { return this.m.contains(a, l); }
  read8(a: number) { return this.m.read8(a); }
  read16(a: number) { return this.m.read16(a); }
  read32(a: number) { return this.m.read32(a); }
  read64(a: number) { return this.m.read64(a); }
  write8(a: number, v: number) { this.hit(a); this.m.write8(a, v); }
  write16(a: number, v: number) { this.hit(a); this.m.write16(a, v); }
  write32(a: number, v: number) { this.hit(a); this.m.write32(a, v); }
  write64(a: number, v: number) { this.hit(a); this.m.write64(a, v); }
  read(a: number, d: Uint8Array, o?: number, l?: number) { this.m.read(a, d, o, l); }
  write(a: number, s: Uint8Array, o?: number, l?: number) { this.hit(a); this.m.write(a, s, o, l); }
  load16Acquire(a: number) { return this.m.load16Acquire(a); }
  store16Release(a: number, v: number) { this.hit(a); this.m.store16Release(a, v); }
  load32Acquire(a: number) { return this.m.load32Acquire(a); }
  store32Release(a: number, v: number) { this.hit(a); this.m.store32Release(a, v); }
}

interface RigOptions extends Partial<Omit<VirtqueueOptions, 'memory' | 'layout' | 'indirect'>> {
  num?: number;
  maxSegments?: number;
  counting?: boolean;
}

/** A driver over a legacy ring (align 4096) at BASE, and a hand-played device. */
function rig(o: RigOptions = {}) {
  const num = o.num ?? 8;
  const buf = new ArrayBuffer(0x2_0000);
  const mem = new ArrayBufferMemory(buf, { base: BASE });
  const counter = o.counting ? new StoreCounter(mem) : undefined;
  const layout = vringLegacyLayout(BASE, num, 4096);
  const dv = new DataView(buf);
  const A = layout.avail - BASE;
  const U = layout.used - BASE;
  const { num: _n, maxSegments, counting: _c, ...rest } = o;
  const vq = new Virtqueue<string>({
    ...rest,
    memory: counter ?? mem,
    layout,
    ...(maxSegments !== undefined ? { indirect: { area: INDIRECT_AREA, maxSegments } } : {}),
  });
  const descAt = (busAddr: number) => {
    const off = busAddr - BASE;
    return {
      addr: Number(dv.getBigUint64(off + 0, true)),
      len: dv.getUint32(off + 8, true),
      flags: dv.getUint16(off + 12, true),
      next: dv.getUint16(off + 14, true),
    };
  };
  const raw = {
    availFlags: () => dv.getUint16(A + 0, true),
    availIdx: () => dv.getUint16(A + 2, true),
    availRing: (slot: number) => dv.getUint16(A + 4 + 2 * (slot % num), true),
    usedEvent: () => dv.getUint16(A + 4 + 2 * num, true),
    usedFlags: () => dv.getUint16(U + 0, true),
    setUsedFlags: (v: number) => dv.setUint16(U + 0, v, true),
    usedIdx: () => dv.getUint16(U + 2, true),
    setUsedIdx: (v: number) => dv.setUint16(U + 2, v & 0xffff, true),
    setUsedElem: (slot: number, id: number, len: number) => {
      dv.setUint32(U + 4 + 8 * (slot % num) + 0, id, true);
      dv.setUint32(U + 4 + 8 * (slot % num) + 4, len, true);
    },
    availEvent: () => dv.getUint16(U + 4 + 8 * num, true),
    setAvailEvent: (v: number) => dv.setUint16(U + 4 + 8 * num, v & 0xffff, true),
    desc: (i: number) => descAt(BASE + 16 * i),
    descAt,
    /** The chain from `head`, following NEXT through the descriptor table. */
    chain: (head: number) => {
      const out = [];
      let i = head;
      for (let k = 0; k <= num; k++) {
        const d = descAt(BASE + 16 * i);
        out.push({ index: i, ...d });
        if ((d.flags & VRING_DESC_F.NEXT) === 0) return out;
        i = d.next;
      }
      throw new Error('chain loops');
    },
  };
  /** The device completes `head` with `len` bytes and publishes used.idx + 1. */
  const complete = (head: number, len: number) => {
    const idx = raw.usedIdx();
    raw.setUsedElem(idx, head, len);
    raw.setUsedIdx(idx + 1);
  };
  return { buf, dv, mem, counter, layout, vq, raw, complete, num };
}

describe('adding buffers (§2.7.13.1, Linux virtqueue_add_sgs)', () => {
  it('a one-segment outbuf is a device-readable descriptor, an inbuf a device-writable one', () => {
    const { vq, raw } = rig();
    expect(vq.addOutbuf(DATA, 10, 'out')).toBe(true);
    expect(vq.addInbuf(DATA + 0x100, 20, 'in')).toBe(true);
    expect(vq.addBuf(DATA + 0x200, 30, true, 'in2')).toBe(true);
    const [h0, h1, h2] = [raw.availRing(0), raw.availRing(1), raw.availRing(2)];
    expect(new Set([h0, h1, h2]).size).toBe(3);
    expect(raw.desc(h0)).toMatchObject({ addr: DATA, len: 10, flags: 0 });
    expect(raw.desc(h1)).toMatchObject({ addr: DATA + 0x100, len: 20, flags: VRING_DESC_F.WRITE });
    expect(raw.desc(h2)).toMatchObject({ addr: DATA + 0x200, len: 30, flags: VRING_DESC_F.WRITE });
    expect(vq.numFree).toBe(8 - 3);
    expect(vq.pending).toBe(3);
    expect(vq.stats.added).toBe(3);
  });

  it('§2.7.4.2: addSgs chains the readable segments, then the writable ones, with NEXT on all but the last', () => {
    const { vq, raw } = rig();
    const sgs = [
      { addr: DATA, len: 1 },
      { addr: DATA + 0x10, len: 2 },
      { addr: DATA + 0x20, len: 3 },
      { addr: DATA + 0x30, len: 4 },
    ];
    expect(vq.addSgs(sgs, 2, 2, 'x')).toBe(true);
    const chain = raw.chain(raw.availRing(0));
    expect(chain.map((d) => [d.addr, d.len, d.flags])).toEqual([
      [DATA, 1, VRING_DESC_F.NEXT],
      [DATA + 0x10, 2, VRING_DESC_F.NEXT],
      [DATA + 0x20, 3, VRING_DESC_F.NEXT | VRING_DESC_F.WRITE],
      [DATA + 0x30, 4, VRING_DESC_F.WRITE],
    ]);
    expect(new Set(chain.map((d) => d.index)).size).toBe(4);
    expect(vq.numFree).toBe(4);
  });

  it('all-writable and all-readable multi-segment buffers', () => {
    const { vq, raw } = rig();
    vq.addSgs([{ addr: DATA, len: 5 }, { addr: DATA + 8, len: 6 }], 0, 2, 'w');
    vq.addSgs([{ addr: DATA, len: 5 }, { addr: DATA + 8, len: 6 }], 2, 0, 'r');
    expect(raw.chain(raw.availRing(0)).map((d) => d.flags)).toEqual([VRING_DESC_F.NEXT | VRING_DESC_F.WRITE, VRING_DESC_F.WRITE]);
    expect(raw.chain(raw.availRing(1)).map((d) => d.flags)).toEqual([VRING_DESC_F.NEXT, 0]);
  });

  it('a full ring makes add return false and leaves the ring bytes unchanged', () => {
    const { vq, buf } = rig({ num: 4 });
    expect(vq.addSgs([{ addr: DATA, len: 1 }, { addr: DATA, len: 1 }, { addr: DATA, len: 1 }], 3, 0, 'a')).toBe(true);
    expect(vq.numFree).toBe(1);
    const before = new Uint8Array(buf.slice(0, 0x2000));
    expect(vq.addSgs([{ addr: DATA, len: 1 }, { addr: DATA, len: 1 }], 1, 1, 'b')).toBe(false);
    expect(new Uint8Array(buf.slice(0, 0x2000))).toEqual(before);
    expect(vq.addOutbuf(DATA, 1, 'c')).toBe(true);
    expect(vq.addOutbuf(DATA, 1, 'd')).toBe(false);
    expect(vq.addInbuf(DATA, 1, 'd')).toBe(false);
    expect(vq.numFree).toBe(0);
    expect(vq.pending).toBe(2);
  });

  it('completed descriptors are free again (§2.7.14)', () => {
    const { vq, raw, complete } = rig({ num: 4 });
    for (const t of ['a', 'b', 'c', 'd']) vq.addOutbuf(DATA, 1, t);
    vq.kickPrepare();
    expect(vq.addOutbuf(DATA, 1, 'e')).toBe(false);
    complete(raw.availRing(2), 0);
    expect(vq.getBuf()).toBe('c');
    expect(vq.numFree).toBe(1);
    expect(vq.addOutbuf(DATA, 1, 'e')).toBe(true);
    // The freed descriptor is the one reused.
    expect(raw.availRing(4)).toBe(raw.availRing(2));
  });

  it('a buffer of more segments than the queue has descriptors cannot ever fit without indirect (RangeError)', () => {
    const { vq } = rig({ num: 4 });
    const sgs = Array.from({ length: 5 }, (_, i) => ({ addr: DATA + i, len: 1 }));
    expect(() => vq.addSgs(sgs, 5, 0, 'x')).toThrow(RangeError);
    expect(vq.numFree).toBe(4);
  });

  it('argument checks name the argument: TypeError for an undefined token, RangeError for bad counts and segments', () => {
    const { vq } = rig();
    expect(() => vq.addOutbuf(DATA, 1, undefined as unknown as string)).toThrow(TypeError);
    expect(() => vq.addSgs([{ addr: DATA, len: 1 }], 0, 0, 'x')).toThrow(RangeError);
    expect(() => vq.addSgs([{ addr: DATA, len: 1 }], 1, 1, 'x')).toThrow(RangeError);
    expect(() => vq.addSgs([{ addr: DATA, len: 1 }], -1, 2, 'x')).toThrow(RangeError);
    expect(() => vq.addSgs([{ addr: -1, len: 1 }], 1, 0, 'x')).toThrow(RangeError);
    expect(() => vq.addSgs([{ addr: 2 ** 53, len: 1 }], 1, 0, 'x')).toThrow(RangeError);
    expect(() => vq.addSgs([{ addr: DATA, len: 2 ** 32 }], 1, 0, 'x')).toThrow(RangeError);
    expect(() => vq.addOutbuf(-1, 1, 'x')).toThrow(RangeError);
    expect(() => vq.addOutbuf(DATA, 2 ** 32, 'x')).toThrow(RangeError);
    expect(vq.numFree).toBe(8);
    expect(vq.pending).toBe(0);
  });

  // Regression (a bug the test suite found, fixed): addBuf checks only 0 ≤ addr ≤ 2^53 − 1 and 0 ≤ len ≤ 2^32 − 1,
  // so a fractional address or length is truncated into the descriptor (and the used-length
  // check then compares against the untruncated 1.5), and a string address is coerced.
  it('addBuf / addOutbuf / addInbuf refuse a fractional address or length (RangeError)', () => {
    const { vq } = rig();
    expect(() => vq.addOutbuf(DATA + 0.5, 1, 'x')).toThrow(RangeError);
    expect(() => vq.addInbuf(DATA, 1.5, 'x')).toThrow(RangeError);
    expect(vq.pending).toBe(0);
  });

  it('addBuf refuses an address that is not a number (TypeError)', () => {
    const { vq } = rig();
    expect(() => vq.addOutbuf(String(DATA) as unknown as number, 1, 'x')).toThrow(TypeError);
  });

  // Regression (a bug the test suite found, fixed): addSgs checks Number.isInteger(sg.addr) but not sg.len.
  it('addSgs refuses a fractional segment length (RangeError)', () => {
    const { vq } = rig();
    expect(() => vq.addSgs([{ addr: DATA, len: 2.5 }], 0, 1, 'x')).toThrow(RangeError);
  });

  // Regression (a bug the test suite found, fixed): the indirect area is not checked against the ring, so
  // indirect tables would be written over the descriptor table / rings.
  it('refuses an indirect area that overlaps the ring (RangeError)', () => {
    const mem = new ArrayBufferMemory(new ArrayBuffer(0x2_0000), { base: BASE });
    const layout = vringLegacyLayout(BASE, 8, 4096);
    expect(() => new Virtqueue({ memory: mem, layout, indirect: { area: BASE, maxSegments: 4 } })).toThrow(RangeError);
  });

  it('a segment of 2^32 − 1 bytes at address 2^53 − 1 is encoded exactly (le64 addr, le32 len)', () => {
    const { vq, raw } = rig();
    vq.addOutbuf(2 ** 53 - 1, 0xffff_ffff, 'big');
    expect(raw.desc(raw.availRing(0))).toMatchObject({ addr: 2 ** 53 - 1, len: 0xffff_ffff });
  });
});

describe('indirect descriptors (§2.7.5.3, VIRTIO_F_INDIRECT_DESC)', () => {
  it('a multi-segment buffer takes one ring descriptor: INDIRECT, len 16·n, pointing at a table of n entries', () => {
    const { vq, raw } = rig({ maxSegments: 4 });
    const sgs = [
      { addr: DATA + 0x100, len: 7 },
      { addr: DATA + 0x200, len: 8 },
      { addr: DATA + 0x300, len: 9 },
    ];
    expect(vq.addSgs(sgs, 2, 1, 'ind')).toBe(true);
    expect(vq.numFree).toBe(7);
    const d = raw.desc(raw.availRing(0));
    expect(d.flags).toBe(VRING_DESC_F.INDIRECT);
    expect(d.len).toBe(16 * 3);
    expect(d.addr % 16).toBe(0);
    // The table lies in the indirect area: num · maxSegments · 16 = 8 · 4 · 16 = 512 bytes.
    expect(d.addr).toBeGreaterThanOrEqual(INDIRECT_AREA);
    expect(d.addr + d.len).toBeLessThanOrEqual(INDIRECT_AREA + 512);
    // §2.7.5.3.1: the chain in the table starts at entry 0 and follows next; entries at table + 16·k.
    const seen: Array<[number, number, number]> = [];
    let k = 0;
    for (let steps = 0; steps < 3; steps++) {
      expect(k).toBeLessThan(3);
      const e = raw.descAt(d.addr + 16 * k);
      seen.push([e.addr, e.len, e.flags]);
      if ((e.flags & VRING_DESC_F.NEXT) === 0) break;
      k = e.next;
    }
    expect(seen).toEqual([
      [DATA + 0x100, 7, VRING_DESC_F.NEXT],
      [DATA + 0x200, 8, VRING_DESC_F.NEXT],
      [DATA + 0x300, 9, VRING_DESC_F.WRITE],
    ]);
  });

  it('each buffer in flight has its own table', () => {
    const { vq, raw } = rig({ maxSegments: 2 });
    for (const t of ['a', 'b', 'c']) vq.addSgs([{ addr: DATA, len: 1 }, { addr: DATA + 1, len: 1 }], 1, 1, t);
    const tables = [0, 1, 2].map((s) => raw.desc(raw.availRing(s)).addr).sort((x, y) => x - y);
    // Tables of 2 · 16 = 32 bytes must not overlap.
    expect(tables[1]! - tables[0]!).toBeGreaterThanOrEqual(32);
    expect(tables[2]! - tables[1]!).toBeGreaterThanOrEqual(32);
  });

  it('with indirect, a ring of 2 holds 2 buffers of 3 segments each', () => {
    const { vq } = rig({ num: 2, maxSegments: 4 });
    const sgs = [{ addr: DATA, len: 1 }, { addr: DATA, len: 1 }, { addr: DATA, len: 1 }];
    expect(vq.addSgs(sgs, 1, 2, 'a')).toBe(true);
    expect(vq.addSgs(sgs, 1, 2, 'b')).toBe(true);
    expect(vq.addSgs(sgs, 1, 2, 'c')).toBe(false);
    expect(vq.numFree).toBe(0);
  });

  it('a one-segment buffer stays direct; more segments than maxSegments fall back to a direct chain', () => {
    const { vq, raw } = rig({ maxSegments: 2 });
    vq.addSgs([{ addr: DATA, len: 4 }], 0, 1, 'one');
    expect(raw.desc(raw.availRing(0))).toMatchObject({ addr: DATA, len: 4, flags: VRING_DESC_F.WRITE });
    vq.addSgs([{ addr: DATA, len: 1 }, { addr: DATA + 1, len: 1 }, { addr: DATA + 2, len: 1 }], 3, 0, 'three');
    const chain = raw.chain(raw.availRing(1));
    expect(chain.map((d) => d.flags)).toEqual([VRING_DESC_F.NEXT, VRING_DESC_F.NEXT, 0]);
    expect(vq.numFree).toBe(8 - 1 - 3);
  });

  it('refuses a misaligned, too small or out-of-memory indirect area, and maxSegments < 2 (RangeError)', () => {
    const mem = new ArrayBufferMemory(new ArrayBuffer(0x2_0000), { base: BASE });
    const layout = vringLegacyLayout(BASE, 8, 4096);
    expect(() => new Virtqueue({ memory: mem, layout, indirect: { area: INDIRECT_AREA + 8, maxSegments: 4 } })).toThrow(RangeError);
    expect(() => new Virtqueue({ memory: mem, layout, indirect: { area: INDIRECT_AREA, maxSegments: 1 } })).toThrow(RangeError);
    expect(() => new Virtqueue({ memory: mem, layout, indirect: { area: INDIRECT_AREA, maxSegments: 2.5 } })).toThrow(RangeError);
    // 8 · 1024 · 16 = 128 KiB does not fit in the 64 KiB left after the area.
    expect(() => new Virtqueue({ memory: mem, layout, indirect: { area: INDIRECT_AREA, maxSegments: 1024 } })).toThrow(RangeError);
    expect(() => new Virtqueue({ memory: mem, layout, indirect: { area: -16, maxSegments: 4 } })).toThrow(RangeError);
  });
});

describe('publishing (§2.7.13.2–3): avail.idx moves only at publish / kickPrepare', () => {
  it('many adds, one avail.idx store', () => {
    const { vq, raw, counter, layout } = rig({ counting: true });
    const idxAddr = layout.avail + 2;
    const base = counter!.count(idxAddr); // the constructor zeroes the ring
    for (const t of ['a', 'b', 'c']) {
      vq.addOutbuf(DATA, 1, t);
      expect(raw.availIdx()).toBe(0);
    }
    // The ring slots are written before the index is published.
    expect(new Set([raw.availRing(0), raw.availRing(1), raw.availRing(2)]).size).toBe(3);
    expect(counter!.count(idxAddr)).toBe(base);
    vq.publish();
    expect(raw.availIdx()).toBe(3);
    expect(counter!.count(idxAddr)).toBe(base + 1);
    vq.publish(); // nothing new: no store
    expect(vq.kickPrepare()).toBe(true); // decides for the three published by publish()
    expect(counter!.count(idxAddr)).toBe(base + 1);
    vq.addOutbuf(DATA, 1, 'd');
    vq.addOutbuf(DATA, 1, 'e');
    expect(raw.availIdx()).toBe(3);
    vq.kickPrepare();
    expect(raw.availIdx()).toBe(5);
    expect(counter!.count(idxAddr)).toBe(base + 2);
  });
});

describe('kickPrepare (§2.7.10 available buffer notification suppression, Linux virtqueue_kick_prepare)', () => {
  it('without EVENT_IDX: notify unless the device set VRING_USED_F_NO_NOTIFY', () => {
    const { vq, raw } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    expect(vq.kickPrepare()).toBe(true);
    raw.setUsedFlags(VRING_USED_F_NO_NOTIFY);
    vq.addOutbuf(DATA, 1, 'b');
    expect(vq.kickPrepare()).toBe(false);
    raw.setUsedFlags(0);
    vq.addOutbuf(DATA, 1, 'c');
    expect(vq.kickPrepare()).toBe(true);
    expect(vq.stats).toMatchObject({ kicks: 2, kicksSuppressed: 1 });
  });

  it('nothing new published: no notification', () => {
    const { vq } = rig();
    expect(vq.kickPrepare()).toBe(false);
    vq.addOutbuf(DATA, 1, 'a');
    expect(vq.kickPrepare()).toBe(true);
    expect(vq.kickPrepare()).toBe(false);
  });

  it('with EVENT_IDX: notify when avail.idx moves past avail_event (hand vectors)', () => {
    const { vq, raw } = rig({ eventIdx: true });
    // old 0 → new 1, avail_event 0: (1 − 0 − 1) = 0 < 1 → notify.
    raw.setAvailEvent(0);
    vq.addOutbuf(DATA, 1, 'a');
    expect(vq.kickPrepare()).toBe(true);
    // old 1 → new 2, avail_event 2: (2 − 2 − 1) & 0xffff = 0xffff < 1 false.
    raw.setAvailEvent(2);
    vq.addOutbuf(DATA, 1, 'b');
    expect(vq.kickPrepare()).toBe(false);
    // old 2 → new 4, avail_event 3: (4 − 3 − 1) = 0 < 2 → notify.
    raw.setAvailEvent(3);
    vq.addOutbuf(DATA, 1, 'c');
    vq.addOutbuf(DATA, 1, 'd');
    expect(vq.kickPrepare()).toBe(true);
    // old 4 → new 6, avail_event 3 (already passed): (6 − 3 − 1) = 2 < 2 false.
    vq.addOutbuf(DATA, 1, 'e');
    vq.addOutbuf(DATA, 1, 'f');
    expect(vq.kickPrepare()).toBe(false);
  });

  it('with EVENT_IDX at the 16-bit wrap: avail_event is compared modulo 2^16', () => {
    const { vq, raw, complete } = rig({ eventIdx: true, num: 4 });
    // Move avail.idx to 0xfffe one buffer at a time (the device completes each at once).
    for (let i = 0; i < 0xfffe; i++) {
      vq.addOutbuf(DATA, 1, 'w');
      vq.kickPrepare();
      complete(raw.availRing(i), 0);
      vq.getBuf();
    }
    expect(raw.availIdx()).toBe(0xfffe);
    // old 0xfffe → new 0x0001 (3 buffers), avail_event 0xffff: (1 − 0xffff − 1) & 0xffff = 1 < 3 → notify.
    raw.setAvailEvent(0xffff);
    for (const t of ['a', 'b', 'c']) vq.addOutbuf(DATA, 1, t);
    expect(vq.kickPrepare()).toBe(true);
    expect(raw.availIdx()).toBe(0x0001);
    // old 0x0001 → new 0x0002, avail_event 0xfffe (left behind before the wrap): (2 − 0xfffe − 1) & 0xffff = 3 < 1 false.
    raw.setAvailEvent(0xfffe);
    vq.addOutbuf(DATA, 1, 'd');
    expect(vq.kickPrepare()).toBe(false);
  });

  it('with EVENT_IDX the used.flags NO_NOTIFY bit is ignored (§2.7.10: only avail_event counts)', () => {
    const { vq, raw } = rig({ eventIdx: true });
    raw.setUsedFlags(VRING_USED_F_NO_NOTIFY);
    raw.setAvailEvent(0);
    vq.addOutbuf(DATA, 1, 'a');
    expect(vq.kickPrepare()).toBe(true);
  });

  it('publish() then kickPrepare() decides over everything published since the last kick', () => {
    const { vq, raw } = rig({ eventIdx: true });
    raw.setAvailEvent(1);
    vq.addOutbuf(DATA, 1, 'a'); // idx 0 → 1 published now
    vq.publish();
    vq.addOutbuf(DATA, 1, 'b'); // 1 → 2
    // old = 0 (before the first publish), new = 2, avail_event 1: (2 − 1 − 1) = 0 < 2 → notify.
    expect(vq.kickPrepare()).toBe(true);
  });

  it('kick() calls the transport notify only when needed; a failed notify breaks the queue', () => {
    let rings = 0;
    let ok = true;
    const { vq, raw } = rig({ notify: () => (rings++, ok) });
    vq.addOutbuf(DATA, 1, 'a');
    expect(vq.kick()).toBe(true);
    expect(rings).toBe(1);
    raw.setUsedFlags(VRING_USED_F_NO_NOTIFY);
    vq.addOutbuf(DATA, 1, 'b');
    expect(vq.kick()).toBe(true);
    expect(rings).toBe(1);
    raw.setUsedFlags(0);
    ok = false;
    vq.addOutbuf(DATA, 1, 'c');
    expect(vq.kick()).toBe(false);
    expect(rings).toBe(2);
    expect(vq.isBroken).toBe(true);
    expect(vq.brokenBy?.code).toBe('BROKEN');
    expect(thrown(() => vq.addOutbuf(DATA, 1, 'd')).code).toBe('BROKEN');
    expect(vq.kickPrepare()).toBe(false);
    expect(vq.notify()).toBe(false);
  });
});

describe('getBuf (§2.7.14, Linux virtqueue_get_buf)', () => {
  it('returns undefined while used.idx has not moved', () => {
    const { vq } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    vq.kickPrepare();
    expect(vq.getBuf()).toBeUndefined();
    expect(vq.moreUsed()).toBe(false);
  });

  it('returns tokens in used-ring order, which may differ from the add order, with each length', () => {
    const { vq, raw, complete } = rig();
    vq.addInbuf(DATA, 10, 'a');
    vq.addInbuf(DATA + 0x100, 20, 'b');
    vq.addInbuf(DATA + 0x200, 30, 'c');
    vq.kickPrepare();
    complete(raw.availRing(2), 30);
    complete(raw.availRing(0), 0);
    expect(vq.moreUsed()).toBe(true);
    expect(vq.getBuf()).toBe('c');
    expect(vq.lastLen).toBe(30);
    expect(vq.getBuf()).toBe('a');
    expect(vq.lastLen).toBe(0);
    expect(vq.getBuf()).toBeUndefined();
    expect(vq.pending).toBe(1);
    complete(raw.availRing(1), 7);
    expect(vq.getBuf()).toBe('b');
    expect(vq.lastLen).toBe(7);
    expect(vq.stats.used).toBe(3);
    expect(vq.numFree).toBe(8);
  });

  it('§2.7.8: len is the number of bytes written; a chain\'s whole writable length is accepted', () => {
    const { vq, raw, complete } = rig();
    vq.addSgs([{ addr: DATA, len: 100 }, { addr: DATA + 0x100, len: 5 }, { addr: DATA + 0x200, len: 6 }], 1, 2, 'x');
    vq.kickPrepare();
    complete(raw.availRing(0), 11);
    expect(vq.getBuf()).toBe('x');
    expect(vq.lastLen).toBe(11);
  });

  it('interrupt() runs the callback when used buffers are pending, and counts spurious ones (vring_interrupt)', () => {
    const calls: number[] = [];
    const { vq, raw, complete } = rig({ callback: (q) => calls.push(q.pending) });
    expect(vq.interrupt()).toBe(false);
    vq.addOutbuf(DATA, 1, 'a');
    vq.kickPrepare();
    complete(raw.availRing(0), 0);
    expect(vq.interrupt()).toBe(true);
    expect(calls).toEqual([1]);
    vq.setCallback(undefined);
    expect(vq.interrupt()).toBe(true);
    expect(vq.stats).toMatchObject({ interrupts: 3, spuriousInterrupts: 1 });
  });
});

describe('used-buffer notification suppression (§2.7.7, Linux virtqueue_disable_cb / enable_cb)', () => {
  it('without EVENT_IDX: disableCb sets avail.flags NO_INTERRUPT, enableCb clears it', () => {
    const { vq, raw } = rig();
    expect(raw.availFlags()).toBe(0);
    vq.disableCb();
    expect(raw.availFlags()).toBe(VRING_AVAIL_F_NO_INTERRUPT);
    vq.disableCb();
    expect(raw.availFlags()).toBe(VRING_AVAIL_F_NO_INTERRUPT);
    expect(vq.enableCb()).toBe(true);
    expect(raw.availFlags()).toBe(0);
  });

  it('enableCb returns false when buffers were used meanwhile (the caller must process, not sleep)', () => {
    const { vq, raw, complete } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    vq.kickPrepare();
    vq.disableCb();
    complete(raw.availRing(0), 0);
    expect(vq.enableCb()).toBe(false);
    expect(raw.availFlags()).toBe(0);
    expect(vq.getBuf()).toBe('a');
    expect(vq.enableCb()).toBe(true);
  });

  it('with EVENT_IDX: avail.flags stays 0; enableCb writes used_event = buffers collected so far', () => {
    const { vq, raw, complete } = rig({ eventIdx: true });
    for (const t of ['a', 'b', 'c']) vq.addOutbuf(DATA, 1, t);
    vq.kickPrepare();
    vq.disableCb();
    expect(raw.availFlags()).toBe(0);
    complete(raw.availRing(0), 0);
    complete(raw.availRing(1), 0);
    expect(vq.getBuf()).toBe('a');
    expect(vq.getBuf()).toBe('b');
    expect(vq.enableCb()).toBe(true);
    expect(raw.availFlags()).toBe(0);
    // last_used_idx = 2: the device notifies when used.idx moves past 2, i.e. on the 3rd buffer.
    expect(raw.usedEvent()).toBe(2);
    expect(passes(raw.usedEvent(), 3, 2)).toBe(true);
  });

  it('with EVENT_IDX: getBuf with callbacks enabled keeps used_event at the next entry', () => {
    const { vq, raw, complete } = rig({ eventIdx: true });
    vq.addOutbuf(DATA, 1, 'a');
    vq.addOutbuf(DATA, 1, 'b');
    vq.kickPrepare();
    complete(raw.availRing(0), 0);
    vq.getBuf();
    expect(raw.usedEvent()).toBe(1);
    complete(raw.availRing(1), 0);
    vq.getBuf();
    expect(raw.usedEvent()).toBe(2);
  });

  it('with EVENT_IDX: after disableCb no completion of up to 2^16 − 1 buffers asks for a notification', () => {
    const { vq, raw, complete } = rig({ eventIdx: true });
    vq.addOutbuf(DATA, 1, 'a');
    vq.addOutbuf(DATA, 1, 'b');
    vq.kickPrepare();
    complete(raw.availRing(0), 0);
    vq.getBuf(); // last_used_idx = 1
    vq.disableCb();
    const ev = raw.usedEvent();
    for (let k = 1; k <= 0xffff; k++) {
      if (passes(ev, (1 + k) & 0xffff, 1)) throw new Error(`used_event ${ev} fires after ${k} more buffers`);
    }
    // getBuf while disabled does not re-arm it.
    complete(raw.availRing(1), 0);
    expect(vq.getBuf()).toBe('b');
    expect(raw.usedEvent()).toBe(ev);
    expect(raw.availFlags()).toBe(0);
  });

  it('enableCbPrepare / poll: poll is true once used.idx moved past the returned value', () => {
    const { vq, raw, complete } = rig({ eventIdx: true });
    vq.addOutbuf(DATA, 1, 'a');
    vq.kickPrepare();
    const v = vq.enableCbPrepare();
    expect(v).toBe(0);
    expect(vq.poll(v)).toBe(false);
    complete(raw.availRing(0), 0);
    expect(vq.poll(v)).toBe(true);
  });

  it('with EVENT_IDX: enableCbDelayed asks for the notification after 3/4 of the buffers in flight (virtqueue_enable_cb_delayed)', () => {
    const { vq, raw, complete } = rig({ eventIdx: true });
    for (let i = 0; i < 8; i++) vq.addOutbuf(DATA, 1, `t${i}`);
    vq.kickPrepare();
    vq.disableCb();
    // bufs = (u16)(avail_idx_shadow − last_used_idx) · 3 / 4 = (8 − 0) · 3 / 4 = 6 → used_event = 0 + 6.
    expect(vq.enableCbDelayed()).toBe(true);
    expect(raw.usedEvent()).toBe(6);
    expect(raw.availFlags()).toBe(0);
    // A device completing one at a time checks used_event after each: the 7th completion
    // (used.idx 6 → 7) is the first to pass it.
    const fired: number[] = [];
    for (let k = 1; k <= 8; k++) {
      complete(raw.availRing(k - 1), 0);
      if (passes(raw.usedEvent(), k, k - 1)) fired.push(k);
    }
    expect(fired).toEqual([7]);
  });

  it('with EVENT_IDX: enableCbDelayed returns false when more than the 3/4 mark is already used', () => {
    const { vq, raw, complete } = rig({ eventIdx: true });
    for (let i = 0; i < 8; i++) vq.addOutbuf(DATA, 1, `t${i}`);
    vq.kickPrepare();
    vq.disableCb();
    for (let i = 0; i < 6; i++) complete(raw.availRing(i), 0);
    expect(vq.enableCbDelayed()).toBe(true); // 6 used ≤ 6
    vq.disableCb();
    complete(raw.availRing(6), 0);
    expect(vq.enableCbDelayed()).toBe(false); // 7 used > 6
    // Two collected: bufs = (8 − 2) · 3 / 4 = 4.5 → 4, used_event = 2 + 4 = 6.
    vq.getBuf();
    vq.getBuf();
    vq.disableCb();
    vq.enableCbDelayed();
    expect(raw.usedEvent()).toBe(6);
  });

  it('without EVENT_IDX: enableCbDelayed clears NO_INTERRUPT and reports pending buffers', () => {
    const { vq, raw, complete } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    vq.kickPrepare();
    vq.disableCb();
    expect(vq.enableCbDelayed()).toBe(true);
    expect(raw.availFlags()).toBe(0);
    vq.disableCb();
    complete(raw.availRing(0), 0);
    expect(vq.enableCbDelayed()).toBe(false);
    expect(raw.availFlags()).toBe(0);
  });
});

describe('detachUnusedBuf (Linux virtqueue_detach_unused_buf) and reset', () => {
  it('returns every outstanding token exactly once, whatever state each buffer is in', () => {
    const { vq, raw, complete } = rig({ maxSegments: 4 });
    vq.addOutbuf(DATA, 1, 'published-used');
    vq.addSgs([{ addr: DATA, len: 1 }, { addr: DATA, len: 1 }], 1, 1, 'published-indirect');
    vq.addSgs([{ addr: DATA, len: 1 }, { addr: DATA, len: 1 }, { addr: DATA, len: 1 }, { addr: DATA, len: 1 }, { addr: DATA, len: 1 }], 2, 3, 'published-direct-chain');
    vq.kickPrepare();
    complete(raw.availRing(0), 0); // used by the device, never collected
    vq.addInbuf(DATA, 1, 'unpublished');
    const got: string[] = [];
    for (let t = vq.detachUnusedBuf(); t !== undefined; t = vq.detachUnusedBuf()) got.push(t);
    expect(got.sort()).toEqual(['published-direct-chain', 'published-indirect', 'published-used', 'unpublished']);
    expect(vq.detachUnusedBuf()).toBeUndefined();
    expect(vq.pending).toBe(0);
    expect(vq.numFree).toBe(8);
  });

  it('any mix of adds and completions: detach returns exactly the tokens not yet collected (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ segs: fc.integer({ min: 1, max: 3 }), done: fc.boolean(), collect: fc.boolean() }), { maxLength: 12 }),
        (ops) => {
          const { vq, raw, complete } = rig({ num: 16 });
          const outstanding = new Set<string>();
          const usedOrder: string[] = []; // completed, not yet collected, in used-ring order
          ops.forEach((op, i) => {
            const tok = `t${i}`;
            const sgs = Array.from({ length: op.segs }, () => ({ addr: DATA, len: 1 }));
            if (!vq.addSgs(sgs, op.segs, 0, tok)) return;
            outstanding.add(tok);
            vq.kickPrepare();
            if (op.done) {
              complete(raw.availRing(raw.availIdx() - 1), 0);
              usedOrder.push(tok);
            }
            if (op.collect && usedOrder.length > 0) {
              const want = usedOrder.shift()!;
              expect(vq.getBuf()).toBe(want);
              outstanding.delete(want);
            }
          });
          const got: string[] = [];
          for (let t = vq.detachUnusedBuf(); t !== undefined; t = vq.detachUnusedBuf()) got.push(t);
          expect(got.sort()).toEqual([...outstanding].sort());
          expect(vq.numFree).toBe(16);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('reset() zeroes the ring (§2.7.10.1), forgets buffers and clears a broken state', () => {
    const { vq, raw, complete } = rig({ eventIdx: true });
    vq.addOutbuf(DATA, 1, 'a');
    vq.addOutbuf(DATA, 1, 'b');
    vq.kickPrepare();
    vq.disableCb();
    complete(9, 0); // not a head: breaks the queue
    expect(thrown(() => vq.getBuf()).code).toBe('BAD_USED_ID');
    expect(vq.isBroken).toBe(true);
    raw.setUsedFlags(1);
    raw.setAvailEvent(77);
    vq.reset();
    expect([raw.availFlags(), raw.availIdx(), raw.usedFlags(), raw.usedIdx(), raw.usedEvent(), raw.availEvent()]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(vq.isBroken).toBe(false);
    expect(vq.numFree).toBe(8);
    expect(vq.pending).toBe(0);
    expect(vq.getBuf()).toBeUndefined();
    expect(vq.addOutbuf(DATA, 1, 'c')).toBe(true);
    expect(vq.kickPrepare()).toBe(true);
    expect(raw.availIdx()).toBe(1);
    complete(raw.availRing(0), 0);
    expect(vq.getBuf()).toBe('c');
  });
});

describe('a hostile device: the used ring is checked (DESIGN: anything the other side writes is hostile)', () => {
  it('a used id ≥ the queue size is BAD_USED_ID and breaks the queue', () => {
    const { vq, raw, complete } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    vq.kickPrepare();
    complete(8, 0);
    const e = thrown(() => vq.getBuf());
    expect(e.code).toBe('BAD_USED_ID');
    expect(vq.isBroken).toBe(true);
    expect(vq.brokenBy).toBe(e);
    expect(thrown(() => vq.getBuf()).code).toBe('BROKEN');
    expect(thrown(() => vq.addOutbuf(DATA, 1, 'b')).code).toBe('BROKEN');
    expect(thrown(() => vq.addSgs([{ addr: DATA, len: 1 }], 1, 0, 'b')).code).toBe('BROKEN');
    expect(vq.kickPrepare()).toBe(false);
    expect(vq.kick()).toBe(false);
    void raw;
  });

  it('a used id that is a descriptor but not the head of a buffer in flight is BAD_USED_ID', () => {
    const { vq, raw, complete } = rig();
    vq.addSgs([{ addr: DATA, len: 1 }, { addr: DATA, len: 1 }], 2, 0, 'a');
    vq.kickPrepare();
    const second = raw.chain(raw.availRing(0))[1]!.index; // inside the chain, not its head
    complete(second, 0);
    expect(thrown(() => vq.getBuf()).code).toBe('BAD_USED_ID');
  });

  it('the same head returned twice is BAD_USED_ID the second time', () => {
    const { vq, raw, complete } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    vq.addOutbuf(DATA, 1, 'b');
    vq.kickPrepare();
    const h = raw.availRing(0);
    complete(h, 0);
    complete(h, 0);
    expect(vq.getBuf()).toBe('a');
    expect(thrown(() => vq.getBuf()).code).toBe('BAD_USED_ID');
  });

  it('used.idx moving by more than the buffers in flight is USED_IDX_JUMP', () => {
    const { vq, raw } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    vq.addOutbuf(DATA, 1, 'b');
    vq.kickPrepare();
    raw.setUsedElem(0, raw.availRing(0), 0);
    raw.setUsedElem(1, raw.availRing(1), 0);
    raw.setUsedIdx(3);
    expect(thrown(() => vq.getBuf()).code).toBe('USED_IDX_JUMP');
    expect(vq.isBroken).toBe(true);
  });

  it('used.idx moving backwards is USED_IDX_JUMP (it reads as a jump of 2^16 − 1)', () => {
    const { vq, raw } = rig();
    vq.addOutbuf(DATA, 1, 'a');
    vq.kickPrepare();
    raw.setUsedIdx(0xffff);
    expect(thrown(() => vq.getBuf()).code).toBe('USED_IDX_JUMP');
  });

  it('a used len above the writable length is USED_LEN_INVALID, and the error carries the token', () => {
    const { vq, raw, complete } = rig();
    // 100 readable + 8 writable bytes: at most 8 can have been written.
    vq.addSgs([{ addr: DATA, len: 100 }, { addr: DATA + 0x100, len: 8 }], 1, 1, 'req');
    vq.addOutbuf(DATA, 50, 'out-only');
    vq.kickPrepare();
    complete(raw.availRing(0), 9);
    const e = thrown(() => vq.getBuf());
    expect(e.code).toBe('USED_LEN_INVALID');
    expect(e.token).toBe('req');
    // The buffer was detached: its descriptors are free and it is not in flight any more.
    expect(vq.pending).toBe(1);
    expect(vq.numFree).toBe(8 - 1);
    // A device-readable-only buffer has no writable bytes at all.
    complete(raw.availRing(1), 1);
    const e2 = thrown(() => vq.getBuf());
    expect(e2.code).toBe('USED_LEN_INVALID');
    expect(e2.token).toBe('out-only');
  });

  it('any used-ring bytes give only VringErrors or tokens in flight, each at most once (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.record({ id: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.nat(0xffff_ffff)), len: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.nat(0xffff_ffff)) }), { minLength: 8, maxLength: 8 }),
        fc.oneof(fc.integer({ min: 0, max: 10 }), fc.nat(0xffff)),
        (added, elems, usedIdx) => {
          const { vq, raw } = rig();
          const inFlight = new Set<string>();
          for (let i = 0; i < added; i++) {
            vq.addInbuf(DATA, 4, `t${i}`);
            inFlight.add(`t${i}`);
          }
          vq.kickPrepare();
          elems.forEach((e, slot) => raw.setUsedElem(slot, e.id, e.len));
          raw.setUsedIdx(usedIdx);
          for (let k = 0; k < 20; k++) {
            let t: string | undefined;
            try {
              t = vq.getBuf();
            } catch (e) {
              expect(isVringError(e)).toBe(true);
              const tok = (e as VringError).token as string | undefined;
              if (tok !== undefined) {
                expect(inFlight.delete(tok)).toBe(true);
                continue;
              }
              if (vq.isBroken) return;
              continue;
            }
            if (t === undefined) return;
            expect(inFlight.delete(t)).toBe(true);
            expect(vq.lastLen).toBeLessThanOrEqual(4);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('§2.7.6 / §2.7.8: the 16-bit indices wrap at 65536 (70,000 buffers end to end)', () => {
  it.each([
    ['without EVENT_IDX', false],
    ['with EVENT_IDX', true],
  ])('%s: one buffer per kick', (_name, eventIdx) => {
    const p = createRingPair<number>({ num: 8, eventIdx, dataSize: 4096 });
    const r = new VringIov(4);
    const w = new VringIov(4);
    const bytes = new Uint8Array(4);
    const reply = new Uint8Array(2);
    const dv = new DataView(p.buffer);
    let kicks = 0;
    let irqs = 0;
    for (let i = 0; i < 70_000; i++) {
      p.driverMemory.write32(p.dataAddr, i);
      p.vq.addSgs([{ addr: p.dataAddr, len: 4 }, { addr: p.dataAddr + 16, len: 2 }], 1, 1, i);
      if (p.vq.kickPrepare()) kicks++;
      const head = p.vrh.getDesc(r, w);
      if (head < 0) throw new Error(`buffer ${i}: the device found the ring empty`);
      p.vrh.pull(r, bytes);
      if (new DataView(bytes.buffer).getUint32(0, true) !== i) throw new Error(`buffer ${i}: wrong bytes`);
      reply[0] = i & 0xff;
      reply[1] = (i >>> 8) & 0xff;
      p.vrh.push(w, reply);
      p.vrh.complete(head, 2);
      if (p.vrh.needNotify()) irqs++;
      // The device sleeps again: it must be told about the next buffer.
      if (!p.vrh.notifyEnable()) throw new Error(`buffer ${i}: notifyEnable found a buffer on an empty ring`);
      if (p.vq.getBuf() !== i) throw new Error(`buffer ${i}: wrong token`);
      if (p.vq.lastLen !== 2 || p.driverMemory.read16(p.dataAddr + 16) !== (i & 0xffff)) throw new Error(`buffer ${i}: wrong reply`);
    }
    // Every buffer needed a kick and an interrupt: each side re-armed before the next one.
    expect(kicks).toBe(70_000);
    expect(irqs).toBe(70_000);
    // avail.idx and used.idx are free-running u16: 70000 − 65536 = 4464.
    expect(dv.getUint16(p.layout.avail - 0x1000_0000 + 2, true)).toBe(4464);
    expect(dv.getUint16(p.layout.used - 0x1000_0000 + 2, true)).toBe(4464);
  });

  it('with EVENT_IDX: batches of 8 across the wrap, one kick and one interrupt per batch', () => {
    const p = createRingPair<number>({ num: 8, eventIdx: true, indirectSegments: 2, dataSize: 4096 });
    const r = new VringIov(4);
    const w = new VringIov(4);
    const heads: number[] = [];
    const lens: number[] = [];
    let next = 0;
    for (let batch = 0; batch < 8750; batch++) {
      for (let k = 0; k < 8; k++) {
        if (!p.vq.addSgs([{ addr: p.dataAddr, len: 1 }, { addr: p.dataAddr + 8, len: 4 }], 1, 1, next++)) throw new Error('ring full');
      }
      if (!p.vq.kickPrepare()) throw new Error(`batch ${batch}: no kick`);
      heads.length = 0;
      lens.length = 0;
      for (let h = p.vrh.getDesc(r, w); h >= 0; h = p.vrh.getDesc(r, w)) {
        heads.push(h);
        lens.push(w.totalLen);
      }
      if (heads.length !== 8) throw new Error(`batch ${batch}: ${heads.length} chains`);
      p.vrh.completeMany(heads, lens);
      if (!p.vrh.needNotify()) throw new Error(`batch ${batch}: no interrupt`);
      if (!p.vrh.notifyEnable()) throw new Error(`batch ${batch}: notifyEnable not empty`);
      for (let k = 0; k < 8; k++) {
        const t = p.vq.getBuf();
        if (t !== batch * 8 + k) throw new Error(`expected token ${batch * 8 + k}, got ${t}`);
      }
      if (p.vq.getBuf() !== undefined) throw new Error(`batch ${batch}: extra buffer`);
    }
    expect(p.vq.stats).toMatchObject({ added: 70_000, used: 70_000, kicks: 8750, kicksSuppressed: 0 });
    expect(p.vrh.lastAvailIdx).toBe(70_000 & 0xffff);
    expect(p.vrh.lastUsedIdx).toBe(70_000 & 0xffff);
  });
});
