// The device half (Linux drivers/vhost/vringh.c; VIRTIO 1.2 §2.7.5–§2.7.10). The driver is
// played by MockSplitQueue (raw ring writes) or by hand with a DataView, so these tests do
// not depend on Virtqueue except where both halves are checked together.
import { describe, expect, it } from 'vitest';
import {
  ArrayBufferMemory,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_USED_F_NO_NOTIFY,
  Virtqueue,
  VringIov,
  Vringh,
  isVringError,
  vringLegacyLayout,
  vringModernLayout,
  type GuestMemory,
  type VringError,
} from '@x/vring';
import { MockSplitQueue } from '@x/vring/testing';

const BASE = 0x4000_0000;
const DATA = BASE + 0x8000;
const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;

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

function withoutView(m: GuestMemory): GuestMemory {
  return {
    contains: (a, l) => m.contains(a, l),
    read8: (a) => m.read8(a),
    read16: (a) => m.read16(a),
    read32: (a) => m.read32(a),
    read64: (a) => m.read64(a),
    write8: (a, v) => m.write8(a, v),
    write16: (a, v) => m.write16(a, v),
    write32: (a, v) => m.write32(a, v),
    write64: (a, v) => m.write64(a, v),
    read: (a, d, o, l) => m.read(a, d, o, l),
    write: (a, s, o, l) => m.write(a, s, o, l),
    load16Acquire: (a) => m.load16Acquire(a),
    store16Release: (a, v) => m.store16Release(a, v),
    load32Acquire: (a) => m.load32Acquire(a),
    store32Release: (a, v) => m.store32Release(a, v),
  };
}

interface Seg {
  addr: number;
  len: number;
}
function segs(iov: VringIov): Seg[] {
  return Array.from({ length: iov.count }, (_, i) => ({ addr: iov.addr[i]!, len: iov.len[i]! }));
}

/** A device over a legacy ring at BASE (align 4096) with a MockSplitQueue as the driver. */
function rig(o: { num?: number; eventIdx?: boolean; indirect?: boolean; view?: boolean; lastAvailIdx?: number; modern?: boolean } = {}) {
  const num = o.num ?? 8;
  const buf = new ArrayBuffer(0x1_0000);
  const mem = new ArrayBufferMemory(buf, { base: BASE });
  const devMem = o.view === false ? withoutView(mem) : mem;
  const layout = o.modern ? vringModernLayout(num, { desc: BASE + 0x100, avail: BASE + 0x2000, used: BASE + 0x3000 }) : vringLegacyLayout(BASE, num, 4096);
  const drv = new MockSplitQueue(mem, layout);
  if (o.lastAvailIdx !== undefined) drv.setAvailIdx(o.lastAvailIdx);
  const vrh = new Vringh({
    memory: devMem,
    layout,
    eventIdx: o.eventIdx ?? false,
    indirect: o.indirect ?? false,
    ...(o.lastAvailIdx !== undefined ? { lastAvailIdx: o.lastAvailIdx } : {}),
  });
  const dv = new DataView(buf);
  const A = layout.avail - BASE;
  const U = layout.used - BASE;
  const raw = {
    usedFlags: () => dv.getUint16(U, true),
    usedIdx: () => dv.getUint16(U + 2, true),
    usedElem: (slot: number) => ({ id: dv.getUint32(U + 4 + 8 * (slot % num), true), len: dv.getUint32(U + 8 + 8 * (slot % num), true) }),
    availEvent: () => dv.getUint16(U + 4 + 8 * num, true),
    setAvailFlags: (v: number) => dv.setUint16(A, v, true),
    setUsedEvent: (v: number) => dv.setUint16(A + 4 + 2 * num, v & 0xffff, true),
  };
  return { buf, mem, layout, drv, vrh, raw, num, r: new VringIov(16), w: new VringIov(16) };
}

describe.each([
  ['typed-array path', true],
  ['accessor path', false],
])('getDesc (§2.7.5, Linux vringh_getdesc), %s', (_name, view) => {
  it('returns -1 on an empty ring (an expected outcome, not an error)', () => {
    const { vrh, r, w } = rig({ view });
    expect(vrh.getDesc(r, w)).toBe(-1);
    expect(vrh.hasAvail()).toBe(false);
    expect(vrh.availCount()).toBe(0);
    expect(vrh.lastAvailIdx).toBe(0);
  });

  it('§2.7.4.2: splits a chain into readable then writable segments, following next', () => {
    const { vrh, drv, r, w } = rig({ view });
    drv.writeDesc(5, { addr: DATA, len: 10, flags: NEXT, next: 2 });
    drv.writeDesc(2, { addr: DATA + 0x100, len: 20, flags: NEXT, next: 7 });
    drv.writeDesc(7, { addr: DATA + 0x200, len: 30, flags: WRITE | NEXT, next: 0 });
    drv.writeDesc(0, { addr: DATA + 0x300, len: 40, flags: WRITE });
    drv.pushAvail(5);
    expect(vrh.hasAvail()).toBe(true);
    expect(vrh.availCount()).toBe(1);
    expect(vrh.getDesc(r, w)).toBe(5);
    expect(segs(r)).toEqual([{ addr: DATA, len: 10 }, { addr: DATA + 0x100, len: 20 }]);
    expect(segs(w)).toEqual([{ addr: DATA + 0x200, len: 30 }, { addr: DATA + 0x300, len: 40 }]);
    expect(r.totalLen).toBe(30);
    expect(w.totalLen).toBe(70);
    expect(vrh.lastAvailIdx).toBe(1);
    expect(vrh.stats.chains).toBe(1);
    expect(vrh.getDesc(r, w)).toBe(-1);
  });

  it('a chain through all N descriptors is not a loop (§2.7.5.2 forbids loops, not long chains)', () => {
    const { vrh, drv, r, w, num } = rig({ view });
    for (let i = 0; i < num; i++) drv.writeDesc(i, { addr: DATA + i, len: 1, flags: i < num - 1 ? NEXT : 0, next: i + 1 });
    drv.pushAvail(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    expect(r.count).toBe(num);
  });

  it('reuses the iovs: a second chain replaces the first', () => {
    const { vrh, drv, r, w } = rig({ view });
    drv.writeDesc(0, { addr: DATA, len: 1, flags: NEXT, next: 1 });
    drv.writeDesc(1, { addr: DATA, len: 2, flags: WRITE });
    drv.writeDesc(2, { addr: DATA + 8, len: 3 });
    drv.pushAvail(0);
    drv.pushAvail(2);
    vrh.getDesc(r, w);
    expect(vrh.getDesc(r, w)).toBe(2);
    expect(segs(r)).toEqual([{ addr: DATA + 8, len: 3 }]);
    expect(w.count).toBe(0);
    expect(w.totalLen).toBe(0);
  });

  it('zero-length segments are accepted', () => {
    const { vrh, drv, r, w } = rig({ view });
    drv.writeDesc(0, { addr: DATA, len: 0, flags: NEXT, next: 1 });
    drv.writeDesc(1, { addr: DATA, len: 0, flags: WRITE });
    drv.pushAvail(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    expect([r.count, w.count, r.totalLen, w.totalLen]).toEqual([1, 1, 0, 0]);
  });

  it('§2.7.5.3: an indirect table is walked from entry 0 along next', () => {
    const { vrh, drv, r, w } = rig({ view, indirect: true });
    const table = DATA + 0x1000;
    drv.writeDescAt(table + 16 * 0, { addr: DATA, len: 1, flags: NEXT, next: 2 });
    drv.writeDescAt(table + 16 * 2, { addr: DATA + 0x10, len: 2, flags: NEXT, next: 1 });
    drv.writeDescAt(table + 16 * 1, { addr: DATA + 0x20, len: 3, flags: WRITE });
    drv.writeDesc(4, { addr: table, len: 16 * 3, flags: INDIRECT });
    drv.pushAvail(4);
    expect(vrh.getDesc(r, w)).toBe(4);
    expect(segs(r)).toEqual([{ addr: DATA, len: 1 }, { addr: DATA + 0x10, len: 2 }]);
    expect(segs(w)).toEqual([{ addr: DATA + 0x20, len: 3 }]);
  });

  it('§2.7.5.3.2: the device handles direct descriptors followed by one indirect descriptor', () => {
    const { vrh, drv, r, w } = rig({ view, indirect: true });
    const table = DATA + 0x1000;
    drv.writeDescAt(table, { addr: DATA + 0x20, len: 3, flags: WRITE, next: 0 });
    drv.writeDesc(1, { addr: DATA, len: 5, flags: NEXT, next: 6 });
    drv.writeDesc(6, { addr: table, len: 16, flags: INDIRECT });
    drv.pushAvail(1);
    expect(vrh.getDesc(r, w)).toBe(1);
    expect(segs(r)).toEqual([{ addr: DATA, len: 5 }]);
    expect(segs(w)).toEqual([{ addr: DATA + 0x20, len: 3 }]);
  });

  it('§2.7.5.3.2: the device ignores WRITE on the descriptor that points at a table', () => {
    const { vrh, drv, r, w } = rig({ view, indirect: true });
    const table = DATA + 0x1000;
    drv.writeDescAt(table, { addr: DATA, len: 4, flags: NEXT, next: 1 });
    drv.writeDescAt(table + 16, { addr: DATA + 4, len: 4, flags: 0 });
    drv.writeDesc(0, { addr: table, len: 32, flags: INDIRECT | WRITE });
    drv.pushAvail(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    expect(r.count).toBe(2);
    expect(w.count).toBe(0);
  });

  it('an indirect table may be longer than the queue (Linux vringh bounds it by len / 16)', () => {
    const { vrh, drv, r, w } = rig({ view, indirect: true, num: 2 });
    const table = DATA + 0x1000;
    for (let i = 0; i < 5; i++) drv.writeDescAt(table + 16 * i, { addr: DATA + i, len: 1, flags: i < 4 ? NEXT : 0, next: i + 1 });
    drv.writeDesc(0, { addr: table, len: 80, flags: INDIRECT });
    drv.pushAvail(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    expect(r.count).toBe(5);
  });

  it('CHAIN_TOO_LONG when the iov is too small; the chain stays in the ring for a bigger iov', () => {
    const { vrh, drv } = rig({ view });
    for (let i = 0; i < 4; i++) drv.writeDesc(i, { addr: DATA + i, len: 1, flags: i < 3 ? NEXT : 0, next: i + 1 });
    drv.pushAvail(0);
    const small = new VringIov(3);
    expect(thrown(() => vrh.getDesc(small, new VringIov(3))).code).toBe('CHAIN_TOO_LONG');
    expect(vrh.lastAvailIdx).toBe(0);
    expect(vrh.getDesc(new VringIov(4), new VringIov(1))).toBe(0);
  });

  it('resumes from lastAvailIdx (vhost-user SET_VRING_BASE) across the 16-bit wrap', () => {
    const { vrh, drv, r, w } = rig({ view, lastAvailIdx: 0xfffe });
    expect(vrh.lastAvailIdx).toBe(0xfffe);
    expect(vrh.lastUsedIdx).toBe(0xfffe);
    for (let i = 0; i < 3; i++) drv.writeDesc(i, { addr: DATA + i, len: i + 1 });
    drv.pushAvail(0); // slot 0xfffe & 7 = 6
    drv.pushAvail(1); // slot 7
    drv.pushAvail(2); // slot 0, avail.idx = 0x0001
    expect(vrh.availCount()).toBe(3);
    expect([vrh.getDesc(r, w), vrh.getDesc(r, w), vrh.getDesc(r, w), vrh.getDesc(r, w)]).toEqual([0, 1, 2, -1]);
    expect(vrh.lastAvailIdx).toBe(1);
  });

  it('abandon(n) gives chains back (vringh_abandon); n outside 0..N is RangeError', () => {
    const { vrh, drv, r, w } = rig({ view });
    drv.writeDesc(3, { addr: DATA, len: 1 });
    drv.writeDesc(4, { addr: DATA, len: 2 });
    drv.pushAvail(3);
    drv.pushAvail(4);
    expect(vrh.getDesc(r, w)).toBe(3);
    expect(vrh.getDesc(r, w)).toBe(4);
    vrh.abandon(2);
    expect(vrh.lastAvailIdx).toBe(0);
    expect(vrh.getDesc(r, w)).toBe(3);
    expect(vrh.getDesc(r, w)).toBe(4);
    expect(() => vrh.abandon(-1)).toThrow(RangeError);
    expect(() => vrh.abandon(9)).toThrow(RangeError);
  });

  it('sees buffers published after it found the ring empty', () => {
    const { vrh, drv, r, w } = rig({ view });
    expect(vrh.getDesc(r, w)).toBe(-1);
    drv.writeDesc(0, { addr: DATA, len: 1 });
    drv.pushAvail(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    expect(vrh.getDesc(r, w)).toBe(-1);
    drv.pushAvail(0);
    drv.pushAvail(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    drv.pushAvail(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    expect(vrh.getDesc(r, w)).toBe(0);
    expect(vrh.getDesc(r, w)).toBe(-1);
  });

  it('works over a 1.x layout with separate areas', () => {
    const { vrh, drv, r, w, raw } = rig({ view, modern: true });
    drv.writeDesc(1, { addr: DATA, len: 9, flags: WRITE });
    drv.pushAvail(1);
    expect(vrh.getDesc(r, w)).toBe(1);
    vrh.complete(1, 9);
    expect(raw.usedIdx()).toBe(1);
    expect(raw.usedElem(0)).toEqual({ id: 1, len: 9 });
  });
});

describe('pull / push (Linux vringh_iov_pull / vringh_iov_push)', () => {
  const setup = () => {
    const t = rig();
    const m = t.mem;
    m.write(DATA, Uint8Array.from([1, 2, 3]));
    m.write(DATA + 0x100, Uint8Array.from([4, 5]));
    m.write(DATA + 0x200, Uint8Array.from([6, 7, 8, 9]));
    t.drv.writeDesc(0, { addr: DATA, len: 3, flags: NEXT, next: 1 });
    t.drv.writeDesc(1, { addr: DATA + 0x100, len: 2, flags: NEXT, next: 2 });
    t.drv.writeDesc(2, { addr: DATA + 0x200, len: 4, flags: NEXT, next: 3 });
    t.drv.writeDesc(3, { addr: DATA + 0x300, len: 2, flags: WRITE | NEXT, next: 4 });
    t.drv.writeDesc(4, { addr: DATA + 0x400, len: 3, flags: WRITE });
    t.drv.pushAvail(0);
    expect(t.vrh.getDesc(t.r, t.w)).toBe(0);
    return t;
  };

  it('pull reads the readable bytes in chain order across segments, in any chunk size', () => {
    const { vrh, r } = setup();
    expect(r.remaining).toBe(9);
    const out: number[] = [];
    const chunk = new Uint8Array(2);
    for (let n = vrh.pull(r, chunk); n > 0; n = vrh.pull(r, chunk)) out.push(...chunk.subarray(0, n));
    expect(out).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(r.remaining).toBe(0);
    expect(vrh.pull(r, chunk)).toBe(0);
  });

  it('pull with offset and length; a short pull when the iov ends', () => {
    const { vrh, r } = setup();
    const dst = new Uint8Array(12).fill(0xee);
    expect(vrh.pull(r, dst, 1, 4)).toBe(4);
    expect(vrh.pull(r, dst, 5)).toBe(5);
    expect([...dst]).toEqual([0xee, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xee, 0xee]);
  });

  it('push writes across the writable segments and stops at their end', () => {
    const { vrh, w, buf } = setup();
    expect(w.remaining).toBe(5);
    expect(vrh.push(w, Uint8Array.from([0xa1]))).toBe(1);
    expect(vrh.push(w, Uint8Array.from([0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7]))).toBe(4);
    const b = new Uint8Array(buf);
    expect([...b.subarray(0x8300, 0x8302)]).toEqual([0xa1, 0xa2]);
    expect([...b.subarray(0x8400, 0x8404)]).toEqual([0xa3, 0xa4, 0xa5, 0]); // the 4th byte is past the segment
  });

  it('skip moves the cursor across segments', () => {
    const { vrh, r } = setup();
    expect(r.skip(4)).toBe(4); // 3 bytes of segment 0, 1 of segment 1
    expect([r.index, r.offset]).toEqual([1, 1]);
    const d = new Uint8Array(2);
    vrh.pull(r, d);
    expect([...d]).toEqual([5, 6]);
    expect(r.skip(100)).toBe(3);
    expect(r.remaining).toBe(0);
  });

  it('segmentView gives zero-copy access to a segment; undefined when the memory has no views', () => {
    const { vrh, r, buf } = setup();
    const v = vrh.segmentView(r, 2)!;
    expect([...v]).toEqual([6, 7, 8, 9]);
    expect(v.buffer).toBe(buf);
    expect(() => vrh.segmentView(r, 5)).toThrow(RangeError);
    const t = rig({ view: false });
    t.drv.writeDesc(0, { addr: DATA, len: 4 });
    t.drv.pushAvail(0);
    t.vrh.getDesc(t.r, t.w);
    expect(t.vrh.segmentView(t.r, 0)).toBeUndefined();
  });

  it('VringIov capacity must be an integer in 1..65536 (RangeError)', () => {
    for (const c of [0, -1, 1.5, 65537]) expect(() => new VringIov(c)).toThrow(RangeError);
    const iov = new VringIov(65536);
    expect(iov.capacity).toBe(65536);
  });
});

describe('the used ring (§2.7.8, Linux vringh_complete / vringh_complete_multi)', () => {
  it('complete writes {id, len} at used.ring[idx % N] and then publishes used.idx', () => {
    const { vrh, raw, num } = rig({ num: 4 });
    for (let k = 0; k < 6; k++) vrh.complete(k % num, 100 + k);
    expect(raw.usedIdx()).toBe(6);
    // Slots wrap modulo N = 4: the 5th and 6th completions overwrite slots 0 and 1.
    expect([0, 1, 2, 3].map((s) => raw.usedElem(s))).toEqual([
      { id: 0, len: 104 },
      { id: 1, len: 105 },
      { id: 2, len: 102 },
      { id: 3, len: 103 },
    ]);
    expect(vrh.lastUsedIdx).toBe(6);
    expect(vrh.stats.completed).toBe(6);
  });

  it('addUsed writes elements without publishing; flushUsed publishes them with one used.idx store', () => {
    const { vrh, raw } = rig();
    vrh.addUsed(3, 30);
    vrh.addUsed(1, 10);
    expect(raw.usedIdx()).toBe(0);
    expect(raw.usedElem(0)).toEqual({ id: 3, len: 30 });
    expect(raw.usedElem(1)).toEqual({ id: 1, len: 10 });
    vrh.flushUsed();
    expect(raw.usedIdx()).toBe(2);
    vrh.flushUsed();
    expect(raw.usedIdx()).toBe(2);
  });

  it('completeMany publishes the batch with exactly one used.idx store', () => {
    const buf = new ArrayBuffer(0x1_0000);
    const mem = new ArrayBufferMemory(buf, { base: BASE });
    const layout = vringLegacyLayout(BASE, 8, 4096);
    let idxStores = 0;
    const counting: GuestMemory = {
      ...withoutView(mem),
      store16Release: (a, v) => {
        if (a === layout.used + 2) idxStores++;
        mem.store16Release(a, v);
      },
      write16: (a, v) => {
        if (a === layout.used + 2) idxStores++;
        mem.write16(a, v);
      },
    };
    const vrh = new Vringh({ memory: counting, layout });
    vrh.completeMany([5, 6, 7], [1, 2, 3]);
    expect(idxStores).toBe(1);
    const dv = new DataView(buf);
    const U = layout.used - BASE;
    expect(dv.getUint16(U + 2, true)).toBe(3);
    expect([0, 1, 2].map((k) => [dv.getUint32(U + 4 + 8 * k, true), dv.getUint32(U + 8 + 8 * k, true)])).toEqual([
      [5, 1],
      [6, 2],
      [7, 3],
    ]);
    vrh.completeMany([1, 2, 3], [0, 0, 0], 2); // only the first two
    expect(idxStores).toBe(2);
    expect(dv.getUint16(U + 2, true)).toBe(5);
  });

  // Regression (a bug the test suite found, fixed): addUsed stores `len >>> 0`, so −1 becomes 0xffffffff and
  // 2^32 becomes 0 in the used element, and a fractional head passes the range check.
  it('addUsed refuses a len outside [0, 2^32 − 1] and a fractional head (RangeError)', () => {
    const { vrh } = rig();
    expect(() => vrh.addUsed(0, -1)).toThrow(RangeError);
    expect(() => vrh.addUsed(0, 2 ** 32)).toThrow(RangeError);
    expect(() => vrh.addUsed(1.5, 0)).toThrow(RangeError);
  });

  // Regression (a bug the test suite found, fixed): completeMany(heads, lens, count) with count > heads.length
  // writes the first elements, counts them as pending, then throws on heads[k] === undefined;
  // the next flushUsed publishes the half-written batch.
  it('completeMany with a count beyond the arrays throws before writing anything', () => {
    const { vrh, raw } = rig();
    expect(() => vrh.completeMany([1], [1], 3)).toThrow(RangeError);
    vrh.flushUsed();
    expect(raw.usedIdx()).toBe(0);
  });

  it('addUsed refuses a head outside the queue (RangeError)', () => {
    const { vrh } = rig();
    expect(() => vrh.addUsed(8, 0)).toThrow(RangeError);
    expect(() => vrh.addUsed(-1, 0)).toThrow(RangeError);
  });
});

describe('needNotify (§2.7.7 used buffer notification suppression, Linux vringh_need_notify)', () => {
  it('without EVENT_IDX: notify unless the driver set VRING_AVAIL_F_NO_INTERRUPT', () => {
    const { vrh, raw } = rig();
    vrh.complete(0, 0);
    expect(vrh.needNotify()).toBe(true);
    raw.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    vrh.complete(1, 0);
    expect(vrh.needNotify()).toBe(false);
    expect(vrh.stats).toMatchObject({ notifies: 1, notifiesSuppressed: 1 });
  });

  it('with EVENT_IDX: notify when used.idx moves past used_event (hand vectors)', () => {
    const { vrh, raw } = rig({ eventIdx: true });
    // used_event 0, 0 → 1: (1 − 0 − 1) = 0 < 1.
    raw.setUsedEvent(0);
    vrh.complete(0, 0);
    expect(vrh.needNotify()).toBe(true);
    // used_event 2, 1 → 2: (2 − 2 − 1) & 0xffff = 0xffff < 1 false.
    raw.setUsedEvent(2);
    vrh.complete(1, 0);
    expect(vrh.needNotify()).toBe(false);
    // used_event 2 still, 2 → 5 (a batch of 3): (5 − 2 − 1) = 2 < 3.
    vrh.completeMany([2, 3, 4], [0, 0, 0]);
    expect(vrh.needNotify()).toBe(true);
    // used_event 8, 5 → 8: (8 − 8 − 1) & 0xffff = 0xffff < 3 false: the 9th is the one.
    raw.setUsedEvent(8);
    vrh.completeMany([5, 6, 7], [0, 0, 0]);
    expect(vrh.needNotify()).toBe(false);
    vrh.complete(0, 0);
    expect(vrh.needNotify()).toBe(true);
    // Nothing completed since the last call: nothing to notify.
    expect(vrh.needNotify()).toBe(false);
  });

  it('with EVENT_IDX at the 16-bit wrap: used_event is compared modulo 2^16', () => {
    // Resume with used.idx at 0xfffe (SET_VRING_BASE); complete 3: 0xfffe → 0x0001.
    const a = rig({ eventIdx: true, lastAvailIdx: 0xfffe });
    a.raw.setUsedEvent(0xffff); // (1 − 0xffff − 1) & 0xffff = 1 < 3 → notify
    a.vrh.completeMany([0, 1, 2], [0, 0, 0]);
    expect(a.raw.usedIdx()).toBe(0x0001);
    expect(a.vrh.needNotify()).toBe(true);
    const b = rig({ eventIdx: true, lastAvailIdx: 0xfffe });
    b.raw.setUsedEvent(0x0001); // (1 − 1 − 1) & 0xffff = 0xffff < 3 false: the 4th buffer is the one
    b.vrh.completeMany([0, 1, 2], [0, 0, 0]);
    expect(b.vrh.needNotify()).toBe(false);
    b.vrh.complete(3, 0);
    expect(b.vrh.needNotify()).toBe(true);
  });

  it('with EVENT_IDX: the NO_INTERRUPT flag is ignored (§2.7.7)', () => {
    const { vrh, raw } = rig({ eventIdx: true });
    raw.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    raw.setUsedEvent(0);
    vrh.complete(0, 0);
    expect(vrh.needNotify()).toBe(true);
  });

  it('§2.7.7.2 example: used_event = 0 notifies after the 1st buffer, then after 2^16 more', () => {
    const { vrh, raw } = rig({ eventIdx: true, num: 1 });
    raw.setUsedEvent(0);
    const fired: number[] = [];
    for (let k = 1; k <= 65537; k++) {
      vrh.complete(0, 0);
      if (vrh.needNotify()) fired.push(k);
    }
    expect(fired).toEqual([1, 65537]);
  });

  it('with EVENT_IDX: 2^16 or more completions since the last check always notify (vringh: "just in case we wrap")', () => {
    const { vrh, raw } = rig({ eventIdx: true, num: 1 });
    // 65537 completions: used.idx 0 → 1 (mod 2^16); used_event 5 is "not in [0, 1)" modulo 2^16,
    // yet it was passed on the way round.
    raw.setUsedEvent(5);
    expect(passes(5, 65537 & 0xffff, 0)).toBe(false);
    for (let k = 0; k < 65537; k++) vrh.complete(0, 0);
    expect(vrh.needNotify()).toBe(true);
    // Exactly 2^16: used.idx is back where it was ((new − old) & 0xffff = 0, so Appendix A says
    // no), but every index — used_event included — was passed once.
    for (let k = 0; k < 65536; k++) vrh.complete(0, 0);
    expect(vrh.needNotify()).toBe(true);
  });
});

describe('notifyEnable / notifyDisable (§2.7.10 available buffer notification suppression)', () => {
  it('without EVENT_IDX: notifyDisable sets used.flags NO_NOTIFY, notifyEnable clears it', () => {
    const { vrh, raw } = rig();
    vrh.notifyDisable();
    expect(raw.usedFlags()).toBe(VRING_USED_F_NO_NOTIFY);
    expect(vrh.notifyEnable()).toBe(true);
    expect(raw.usedFlags()).toBe(0);
  });

  it('notifyEnable returns false when buffers slipped in, so the device must not sleep', () => {
    for (const eventIdx of [false, true]) {
      const { vrh, drv, r, w } = rig({ eventIdx });
      drv.writeDesc(0, { addr: DATA, len: 1 });
      drv.pushAvail(0);
      expect(vrh.getDesc(r, w)).toBe(0);
      vrh.notifyDisable();
      drv.pushAvail(0); // published while notifications were off
      expect(vrh.notifyEnable()).toBe(false);
      expect(vrh.getDesc(r, w)).toBe(0);
      expect(vrh.notifyEnable()).toBe(true);
    }
  });

  it('with EVENT_IDX: notifyEnable writes avail_event = last_avail_idx; used.flags stays 0', () => {
    const { vrh, drv, raw, r, w } = rig({ eventIdx: true });
    drv.writeDesc(0, { addr: DATA, len: 1 });
    for (let i = 0; i < 3; i++) drv.pushAvail(0);
    for (let i = 0; i < 3; i++) vrh.getDesc(r, w);
    vrh.notifyDisable();
    expect(raw.usedFlags()).toBe(0);
    expect(vrh.notifyEnable()).toBe(true);
    expect(raw.availEvent()).toBe(3);
    expect(raw.usedFlags()).toBe(0);
  });

  it('with EVENT_IDX, against a Virtqueue: kicks come exactly when the device re-armed', () => {
    const buf = new ArrayBuffer(0x1_0000);
    const mem = new ArrayBufferMemory(buf, { base: BASE });
    const layout = vringLegacyLayout(BASE, 8, 4096);
    const vq = new Virtqueue<number>({ memory: mem, layout, eventIdx: true });
    const vrh = new Vringh({ memory: mem, layout, eventIdx: true });
    const r = new VringIov(2);
    const w = new VringIov(2);
    vq.addOutbuf(DATA, 1, 0);
    expect(vq.kickPrepare()).toBe(true); // avail_event 0 after reset: 0 → 1 passes it
    expect(vrh.getDesc(r, w)).toBe(0);
    vq.addOutbuf(DATA, 1, 1);
    expect(vq.kickPrepare()).toBe(false); // the device did not re-arm: avail_event is still 0
    expect(vrh.getDesc(r, w)).toBeGreaterThanOrEqual(0);
    expect(vrh.notifyEnable()).toBe(true); // avail_event = 2
    vq.addOutbuf(DATA, 1, 2);
    expect(vq.kickPrepare()).toBe(true);
  });
});

describe('construction', () => {
  it('a ring outside the memory is BUS_ERROR; a bad layout is BAD_LAYOUT', () => {
    const mem = new ArrayBufferMemory(new ArrayBuffer(0x1000), { base: BASE });
    expect(thrown(() => new Vringh({ memory: mem, layout: vringLegacyLayout(BASE, 8, 4096) })).code).toBe('BUS_ERROR');
    expect(thrown(() => new Vringh({ memory: mem, layout: { num: 8, desc: BASE + 8, avail: BASE + 0x200, used: BASE + 0x400 } })).code).toBe('BAD_LAYOUT');
    expect(() => new Vringh({ memory: mem, layout: vringLegacyLayout(BASE, 8, 16) })).not.toThrow();
  });
});
