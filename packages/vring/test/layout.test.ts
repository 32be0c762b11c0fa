// Split-ring layout (VIRTIO 1.2 §2.7): sizes, offsets and the event-index arithmetic,
// checked against numbers computed by hand from the spec text, never against our output.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ArrayBufferMemory,
  VIRTIO_RING_F,
  VIRTQUEUE_MAX_SIZE,
  VIRTQ_AVAIL,
  VIRTQ_DESC,
  VIRTQ_USED,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_DESC_F,
  VRING_LEGACY_ALIGN,
  VRING_USED_F_NO_NOTIFY,
  Virtqueue,
  VringIov,
  Vringh,
  availEventOffset,
  availRingSize,
  descTableSize,
  isVringError,
  layoutSpan,
  usedEventOffset,
  usedRingSize,
  validateLayout,
  vringLegacyLayout,
  vringModernLayout,
  vringNeedEvent,
  vringSize,
  type GuestMemory,
  type SplitRingLayout,
} from '@x/vring';

/** Runs `fn` and returns the VringError code it threw (fails if it threw something else or nothing). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isVringError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a VringError, nothing was thrown');
}

/** A GuestMemory that hides `view`, so the ring code takes its accessor (slow) path. */
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

/** Appendix A, restated: an event at `ev` fires when the index moves from `old` to `neu` past it, i.e. ev ∈ [old, neu) mod 2^16. */
function passes(ev: number, neu: number, old: number): boolean {
  return ((ev - old) & 0xffff) < ((neu - old) & 0xffff);
}

describe('constants (include/uapi/linux/virtio_ring.h, VIRTIO 1.2 §2.7, §6)', () => {
  it('§2.7.5: VRING_DESC_F_NEXT = 1, VRING_DESC_F_WRITE = 2, VRING_DESC_F_INDIRECT = 4', () => {
    expect(VRING_DESC_F).toEqual({ NEXT: 1, WRITE: 2, INDIRECT: 4 });
  });

  it('§2.7.6 / §2.7.8: VRING_AVAIL_F_NO_INTERRUPT = 1, VRING_USED_F_NO_NOTIFY = 1', () => {
    expect(VRING_AVAIL_F_NO_INTERRUPT).toBe(1);
    expect(VRING_USED_F_NO_NOTIFY).toBe(1);
  });

  it('§6: VIRTIO_F_INDIRECT_DESC is feature bit 28, VIRTIO_F_EVENT_IDX is bit 29', () => {
    expect(VIRTIO_RING_F).toEqual({ INDIRECT_DESC: 28, EVENT_IDX: 29 });
  });

  it('§2.7: the largest queue size is 32768; the legacy ring alignment the RFC uses is 4096', () => {
    expect(VIRTQUEUE_MAX_SIZE).toBe(32768);
    expect(VRING_LEGACY_ALIGN).toBe(4096);
  });

  it('§2.7.5: struct virtq_desc is le64 addr @0, le32 len @8, le16 flags @12, le16 next @14, 16 bytes, 16-aligned', () => {
    expect(VIRTQ_DESC).toEqual({ ADDR: 0, LEN: 8, FLAGS: 12, NEXT: 14, SIZE: 16, ALIGN: 16 });
  });

  it('§2.7.6: struct virtq_avail is le16 flags @0, le16 idx @2, le16 ring[] @4, 2-aligned', () => {
    expect(VIRTQ_AVAIL).toEqual({ FLAGS: 0, IDX: 2, RING: 4, ENTRY: 2, ALIGN: 2 });
  });

  it('§2.7.8: struct virtq_used is le16 flags @0, le16 idx @2, {le32 id; le32 len} ring[] @4, 4-aligned', () => {
    expect(VIRTQ_USED).toEqual({ FLAGS: 0, IDX: 2, RING: 4, ENTRY: 8, ELEM_ID: 0, ELEM_LEN: 4, ALIGN: 4 });
  });
});

describe('part sizes (§2.7 table: 16·N, 6 + 2·N, 6 + 8·N)', () => {
  it.each([
    // N, desc = 16N, avail = 6 + 2N, used = 6 + 8N, used_event @ 4 + 2N, avail_event @ 4 + 8N
    [1, 16, 8, 14, 6, 12],
    [256, 4096, 518, 2054, 516, 2052],
    [32768, 524288, 65542, 262150, 65540, 262148],
  ])('N = %i', (n, desc, avail, used, usedEvent, availEvent) => {
    expect(descTableSize(n)).toBe(desc);
    expect(availRingSize(n)).toBe(avail);
    expect(usedRingSize(n)).toBe(used);
    expect(usedEventOffset(n)).toBe(usedEvent);
    expect(availEventOffset(n)).toBe(availEvent);
  });
});

describe('vringSize (§2.7.2 legacy layout, Linux vring_size: align_up(16N + 2(3+N), A) + 6 + 8N)', () => {
  it('N = 256, A = 4096 gives 10246', () => {
    // 16·256 = 4096; 2·(3 + 256) = 518; 4096 + 518 = 4614 → align_up(4614, 4096) = 8192;
    // 8192 + 6 + 8·256 = 8192 + 2054 = 10246.
    expect(vringSize(256, 4096)).toBe(10246);
  });

  it('N = 16, A = 16 gives 438', () => {
    // 16·16 = 256; 2·(3 + 16) = 38; 256 + 38 = 294 → align_up(294, 16) = 304;
    // 304 + 6 + 8·16 = 304 + 134 = 438.
    expect(vringSize(16, 16)).toBe(438);
  });

  it('N = 1, default A = 4096 gives 4110', () => {
    // 16 + 2·4 = 24 → 4096; 4096 + 6 + 8 = 4110.
    expect(vringSize(1)).toBe(4110);
  });

  it('N = 32768, A = 4096 gives 856070', () => {
    // 16·32768 = 524288; 2·(3 + 32768) = 65542; sum 589830; 589830 / 4096 = 144.0015 → 145·4096 = 593920;
    // 593920 + 6 + 8·32768 = 593920 + 262150 = 856070.
    expect(vringSize(32768, 4096)).toBe(856070);
  });

  it('§2.7: the queue size must be a power of two ≤ 32768, the alignment a power of two (RangeError)', () => {
    for (const n of [0, 3, 6, 65536, 1.5, -4, Number.NaN]) expect(() => vringSize(n, 4096)).toThrow(RangeError);
    for (const a of [0, 3, 4095, 1.5]) expect(() => vringSize(16, a)).toThrow(RangeError);
  });
});

describe('vringLegacyLayout (§2.7.2, Linux vring_init)', () => {
  it('N = 256, A = 4096 at 0x1000_0000: desc at base, avail at base + 4096, used at base + 8192, span 10246', () => {
    const l = vringLegacyLayout(0x1000_0000, 256, 4096);
    // avail = base + 16·256 = base + 0x1000; its end = base + 0x1000 + 518 → next 4096 boundary = base + 0x2000.
    expect(l).toEqual({ num: 256, desc: 0x1000_0000, avail: 0x1000_1000, used: 0x1000_2000 });
    expect(layoutSpan(l)).toEqual({ start: 0x1000_0000, end: 0x1000_0000 + 10246 });
  });

  it('N = 16, A = 16 at 0: avail at 256, used at align_up(256 + 38, 16) = 304, span 438', () => {
    expect(vringLegacyLayout(0, 16, 16)).toEqual({ num: 16, desc: 0, avail: 256, used: 304 });
    expect(layoutSpan(vringLegacyLayout(0, 16, 16)).end).toBe(438);
  });

  it('the default alignment is 4096 (the RFC and remoteproc)', () => {
    // N = 8: avail at 128, avail end 128 + 22 = 150 → used at 4096.
    expect(vringLegacyLayout(0, 8).used).toBe(4096);
  });

  it('rejects a base that is not 16-byte aligned (§2.7: descriptor table alignment 16)', () => {
    expect(codeOf(() => vringLegacyLayout(8, 8, 4096))).toBe('BAD_LAYOUT');
  });
});

describe('vringModernLayout (§2.7, 1.x: three separate areas)', () => {
  it('packs the areas at their minimum alignments when only desc is given', () => {
    // N = 8 at 0x2000: avail = 0x2000 + 128 = 0x2080; avail end = 0x2080 + 6 + 16 = 0x2096 → used at align_up(., 4) = 0x2098.
    expect(vringModernLayout(8, { desc: 0x2000 })).toEqual({ num: 8, desc: 0x2000, avail: 0x2080, used: 0x2098 });
  });

  it('accepts explicit areas in any order, including used below desc', () => {
    const l = vringModernLayout(4, { desc: 0x3000, avail: 0x1002, used: 0x10 });
    expect(l).toEqual({ num: 4, desc: 0x3000, avail: 0x1002, used: 0x10 });
    expect(layoutSpan(l)).toEqual({ start: 0x10, end: 0x3000 + 64 });
  });
});

describe('validateLayout (§2.7 alignment and size rules) → BAD_LAYOUT', () => {
  const ok: SplitRingLayout = { num: 8, desc: 0x1000, avail: 0x2000, used: 0x3000 };

  it('accepts a valid layout and returns a frozen copy', () => {
    const l = validateLayout({ ...ok });
    expect(l).toEqual(ok);
    expect(Object.isFrozen(l)).toBe(true);
  });

  it('rejects a descriptor table not 16-byte aligned', () => {
    for (const desc of [0x1001, 0x1002, 0x1004, 0x1008]) expect(codeOf(() => validateLayout({ ...ok, desc }))).toBe('BAD_LAYOUT');
  });

  it('rejects an available ring not 2-byte aligned', () => {
    expect(codeOf(() => validateLayout({ ...ok, avail: 0x2001 }))).toBe('BAD_LAYOUT');
  });

  it('rejects a used ring not 4-byte aligned', () => {
    expect(codeOf(() => validateLayout({ ...ok, used: 0x3002 }))).toBe('BAD_LAYOUT');
    expect(codeOf(() => validateLayout({ ...ok, used: 0x3001 }))).toBe('BAD_LAYOUT');
  });

  it('rejects overlapping parts (each part is its own contiguous area)', () => {
    // desc [0x1000, 0x1080) with N = 8; avail [a, a + 22); used [u, u + 70).
    expect(codeOf(() => validateLayout({ ...ok, avail: 0x107e }))).toBe('BAD_LAYOUT'); // avail starts inside desc
    expect(codeOf(() => validateLayout({ ...ok, used: 0x2014 }))).toBe('BAD_LAYOUT'); // used starts at avail + 20 < avail + 22
    expect(codeOf(() => validateLayout({ ...ok, used: 0x0fc0 }))).toBe('BAD_LAYOUT'); // used [0xfc0, 0x1006) runs into desc
    expect(codeOf(() => validateLayout({ ...ok, avail: 0x1000 }))).toBe('BAD_LAYOUT');
    // Touching is fine: avail right after desc, used right after avail (rounded to 4).
    expect(() => validateLayout({ num: 8, desc: 0x1000, avail: 0x1080, used: 0x1098 })).not.toThrow();
  });

  it('rejects queue sizes that are not a power of two or above 32768 (§2.7)', () => {
    for (const num of [0, 3, 12, 65536, 32769, -1, 2.5]) {
      expect(codeOf(() => validateLayout({ num, desc: 0, avail: 0x10_0000, used: 0x20_0000 }))).toBe('BAD_LAYOUT');
    }
    expect(() => validateLayout({ num: 32768, desc: 0, avail: 0x10_0000, used: 0x20_0000 })).not.toThrow();
  });

  it('rejects addresses that are negative, fractional or above 2^53 − 1', () => {
    for (const bad of [-16, 16.5, 2 ** 53, Number.NaN]) {
      expect(codeOf(() => validateLayout({ ...ok, desc: bad }))).toBe('BAD_LAYOUT');
      expect(codeOf(() => validateLayout({ ...ok, avail: bad }))).toBe('BAD_LAYOUT');
      expect(codeOf(() => validateLayout({ ...ok, used: bad }))).toBe('BAD_LAYOUT');
    }
  });

  // Regression: desc = 2^53 − 16 is 16-aligned, but with N = 2 the table
  // is [2^53 − 16, 2^53 + 16): descriptor 1 would sit at 2^53, which a JS number cannot hold exactly.
  it('rejects a descriptor table or available ring that runs past 2^53 − 1', () => {
    expect(codeOf(() => validateLayout({ num: 2, desc: 2 ** 53 - 16, avail: 0, used: 64 }))).toBe('BAD_LAYOUT');
    // avail ring of N = 2 is 6 + 4 = 10 bytes: [2^53 − 8, 2^53 + 2) runs past.
    expect(codeOf(() => validateLayout({ num: 2, desc: 0, avail: 2 ** 53 - 8, used: 64 }))).toBe('BAD_LAYOUT');
    // used ring of N = 1 is 14 bytes: [2^53 − 12, 2^53 + 2) runs past.
    expect(codeOf(() => validateLayout({ num: 1, desc: 0, avail: 16, used: 2 ** 53 - 12 }))).toBe('BAD_LAYOUT');
    // Ending exactly at 2^53 − 1 is fine: desc [2^53 − 32, 2^53) for N = 2.
    expect(() => validateLayout({ num: 2, desc: 2 ** 53 - 32, avail: 0, used: 64 })).not.toThrow();
  });
});

describe('vringNeedEvent (VIRTIO 1.2 Appendix A: (u16)(new − event − 1) < (u16)(new − old))', () => {
  it('hand-computed vectors', () => {
    // (ev, new, old) → ((new − ev − 1) & 0xffff) < ((new − old) & 0xffff)
    expect(vringNeedEvent(0, 1, 0)).toBe(true); // 0 < 1
    expect(vringNeedEvent(1, 1, 0)).toBe(false); // 0xffff < 1 is false
    expect(vringNeedEvent(0, 0, 0)).toBe(false); // nothing moved: x < 0 is false
    expect(vringNeedEvent(5, 10, 3)).toBe(true); // 4 < 7
    expect(vringNeedEvent(10, 10, 3)).toBe(false); // 0xffff < 7 is false
    expect(vringNeedEvent(2, 10, 3)).toBe(false); // 7 < 7 is false: the event was before old
    expect(vringNeedEvent(3, 10, 3)).toBe(true); // 6 < 7: event exactly at old
  });

  it('at the 16-bit wrap: old = 0xfffe, new = 0x0001 (3 entries: 0xfffe, 0xffff, 0x0000)', () => {
    // new − old = (1 − 0xfffe) & 0xffff = 3.
    expect(vringNeedEvent(0xfffd, 0x0001, 0xfffe)).toBe(false); // (1 − 0xfffd − 1) & 0xffff = 3, 3 < 3 false
    expect(vringNeedEvent(0xfffe, 0x0001, 0xfffe)).toBe(true); // 2 < 3
    expect(vringNeedEvent(0xffff, 0x0001, 0xfffe)).toBe(true); // 1 < 3
    expect(vringNeedEvent(0x0000, 0x0001, 0xfffe)).toBe(true); // 0 < 3
    expect(vringNeedEvent(0x0001, 0x0001, 0xfffe)).toBe(false); // 0xffff < 3 false
  });

  it('§2.7.7.2 example: used_event = 0 notifies after the 1st buffer, then once per 2^16 buffers', () => {
    // Completing one buffer at a time, used.idx goes old = k − 1 → new = k (mod 2^16).
    // (new − 0 − 1) & 0xffff < 1 only when new ≡ 1 (mod 2^16): buffer #1, then buffer
    // #1 + 65536 — the spec's "again after the 65536th buffer" counted from the first.
    const fired: number[] = [];
    for (let k = 1; k <= 2 * 65536 + 1; k++) {
      if (vringNeedEvent(0, k & 0xffff, (k - 1) & 0xffff)) fired.push(k);
    }
    expect(fired).toEqual([1, 65537, 131073]);
  });

  it('is true exactly when the event index lies in [old, new) modulo 2^16 (property)', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(u16, u16, u16, (ev, neu, old) => {
        expect(vringNeedEvent(ev, neu, old)).toBe(passes(ev, neu, old));
      }),
      { numRuns: 2000 },
    );
  });
});

// The byte offset of every field, in both layouts: the driver half writes, and the bytes
// are read back with a DataView at offsets computed by hand from §2.7.5–§2.7.8; then bytes
// written by hand are read by the device half. The base is above 2^32 so the high word of
// every le64 address is exercised.
const BASE = 0x7_0000_0000;
const N = 8;
const layouts: Array<[string, SplitRingLayout, { desc: number; avail: number; used: number }]> = [
  // Legacy, A = 4096: desc @0 (16·8 = 128 bytes), avail @128 (6 + 16 = 22 bytes, ends at 150), used @ align_up(150, 4096) = 4096.
  ['legacy contiguous, align 4096', vringLegacyLayout(BASE, N, 4096), { desc: 0, avail: 128, used: 4096 }],
  // 1.x: three areas placed by hand, out of order.
  ['1.x separate areas', vringModernLayout(N, { desc: BASE + 0x900, avail: BASE + 0x402, used: BASE + 0x104 }), { desc: 0x900, avail: 0x402, used: 0x104 }],
];

describe.each(layouts)('field offsets, %s', (_name, layout, off) => {
  it('the layout puts the parts where the hand computation says', () => {
    expect(layout.desc - BASE).toBe(off.desc);
    expect(layout.avail - BASE).toBe(off.avail);
    expect(layout.used - BASE).toBe(off.used);
  });

  describe.each([
    ['typed-array path', (m: GuestMemory) => m],
    ['accessor path', withoutView],
  ])('%s', (_path, wrap) => {
    const setup = () => {
      const buf = new ArrayBuffer(0x4000);
      const mem = new ArrayBufferMemory(buf, { base: BASE });
      const dv = new DataView(buf);
      return { buf, mem: wrap(mem), dv };
    };

    it('driver: §2.7.5 desc addr/len/flags/next @0/8/12/14, §2.7.6 avail idx @2 and ring[] @4', () => {
      const { mem, dv } = setup();
      const vq = new Virtqueue<string>({ memory: mem, layout, eventIdx: true });
      // Two segments: 0x11 readable bytes at BASE + 0x2000, 0x22 writable bytes at BASE + 0x3000.
      expect(vq.addSgs([{ addr: BASE + 0x2000, len: 0x11 }, { addr: BASE + 0x3000, len: 0x22 }], 1, 1, 'tok')).toBe(true);
      expect(dv.getUint16(off.avail + 2, true)).toBe(0); // not published yet
      vq.kickPrepare();
      expect(dv.getUint16(off.avail + 0, true)).toBe(0); // avail.flags
      expect(dv.getUint16(off.avail + 2, true)).toBe(1); // avail.idx
      const head = dv.getUint16(off.avail + 4 + 2 * 0, true); // avail.ring[0]
      expect(head).toBeLessThan(N);
      const d0 = off.desc + 16 * head;
      expect(dv.getBigUint64(d0 + 0, true)).toBe(BigInt(BASE + 0x2000));
      expect(dv.getUint32(d0 + 8, true)).toBe(0x11);
      expect(dv.getUint16(d0 + 12, true)).toBe(VRING_DESC_F.NEXT);
      const next = dv.getUint16(d0 + 14, true);
      expect(next).toBeLessThan(N);
      expect(next).not.toBe(head);
      const d1 = off.desc + 16 * next;
      expect(dv.getBigUint64(d1 + 0, true)).toBe(BigInt(BASE + 0x3000));
      expect(dv.getUint32(d1 + 8, true)).toBe(0x22);
      expect(dv.getUint16(d1 + 12, true)).toBe(VRING_DESC_F.WRITE); // last: no NEXT

      // §2.7.8: the device's used element, written by hand: ring[0] = {id @+0, len @+4} at used + 4, idx @2.
      dv.setUint32(off.used + 4 + 0, head, true);
      dv.setUint32(off.used + 4 + 4, 0x15, true);
      dv.setUint16(off.used + 2, 1, true);
      expect(vq.getBuf()).toBe('tok');
      expect(vq.lastLen).toBe(0x15);
      // With EVENT_IDX and callbacks enabled, getBuf asks for the next interrupt by writing
      // used_event = last_used_idx = 1 at avail + 4 + 2N = avail + 20.
      expect(dv.getUint16(off.avail + 4 + 2 * N, true)).toBe(1);

      // §2.7.10: avail_event at used + 4 + 8N = used + 68, written by hand. Publishing
      // old = 1 → new = 2 passes avail_event = 1, so a notification is needed; a value of
      // 0 elsewhere would say no ((2 − 0 − 1) = 1 < 1 is false).
      dv.setUint16(off.used + 4 + 8 * N, 1, true);
      vq.addOutbuf(BASE + 0x2000, 1, 'b');
      expect(vq.kickPrepare()).toBe(true);
      // old = 2 → new = 3 with avail_event = 1: (3 − 1 − 1) = 1 < 1 false.
      vq.addOutbuf(BASE + 0x2000, 1, 'c');
      expect(vq.kickPrepare()).toBe(false);
    });

    it('driver without EVENT_IDX: avail.flags @0 carries NO_INTERRUPT, used.flags @0 NO_NOTIFY is honoured', () => {
      const { mem, dv } = setup();
      const vq = new Virtqueue<string>({ memory: mem, layout });
      vq.disableCb();
      expect(dv.getUint16(off.avail + 0, true)).toBe(VRING_AVAIL_F_NO_INTERRUPT);
      expect(vq.enableCb()).toBe(true);
      expect(dv.getUint16(off.avail + 0, true)).toBe(0);
      dv.setUint16(off.used + 0, VRING_USED_F_NO_NOTIFY, true);
      vq.addOutbuf(BASE + 0x2000, 4, 'a');
      expect(vq.kickPrepare()).toBe(false);
      dv.setUint16(off.used + 0, 0, true);
      vq.addOutbuf(BASE + 0x2000, 4, 'b');
      expect(vq.kickPrepare()).toBe(true);
    });

    it('device: reads a chain written by hand and writes the used ring at the hand-computed offsets', () => {
      const { mem, dv } = setup();
      // desc[3] = {BASE + 0x2000, 7, NEXT, next 5}; desc[5] = {BASE + 0x2100, 9, WRITE}.
      const put = (i: number, addr: number, len: number, flags: number, next: number) => {
        const o = off.desc + 16 * i;
        dv.setBigUint64(o + 0, BigInt(addr), true);
        dv.setUint32(o + 8, len, true);
        dv.setUint16(o + 12, flags, true);
        dv.setUint16(o + 14, next, true);
      };
      put(3, BASE + 0x2000, 7, VRING_DESC_F.NEXT, 5);
      put(5, BASE + 0x2100, 9, VRING_DESC_F.WRITE, 0);
      dv.setUint16(off.avail + 4 + 2 * 0, 3, true); // avail.ring[0] = 3
      dv.setUint16(off.avail + 2, 1, true); // avail.idx = 1
      dv.setUint16(off.avail + 4 + 2 * N, 0, true); // used_event = 0
      const vrh = new Vringh({ memory: mem, layout, eventIdx: true });
      const r = new VringIov(4);
      const w = new VringIov(4);
      expect(vrh.getDesc(r, w)).toBe(3);
      expect([r.count, r.addr[0], r.len[0]]).toEqual([1, BASE + 0x2000, 7]);
      expect([w.count, w.addr[0], w.len[0]]).toEqual([1, BASE + 0x2100, 9]);
      vrh.complete(3, 4);
      expect(dv.getUint16(off.used + 2, true)).toBe(1); // used.idx
      expect(dv.getUint32(off.used + 4 + 0, true)).toBe(3); // used.ring[0].id
      expect(dv.getUint32(off.used + 4 + 4, true)).toBe(4); // used.ring[0].len
      // used_event = 0, used.idx 0 → 1 passes it.
      expect(vrh.needNotify()).toBe(true);
      // notifyEnable writes avail_event = last_avail_idx = 1 at used + 4 + 8N.
      expect(vrh.notifyEnable()).toBe(true);
      expect(dv.getUint16(off.used + 4 + 8 * N, true)).toBe(1);
      // used_event at avail + 4 + 2N set by hand to 5: completing 1 → 2 does not pass it.
      dv.setUint16(off.avail + 4 + 2 * N, 5, true);
      vrh.complete(5, 0);
      expect(dv.getUint32(off.used + 4 + 8 * 1 + 0, true)).toBe(5); // used.ring[1].id at used + 12
      expect(vrh.needNotify()).toBe(false);
    });

    it('device without EVENT_IDX: used.flags @0 gets NO_NOTIFY, avail.flags @0 NO_INTERRUPT is honoured', () => {
      const { mem, dv } = setup();
      const vrh = new Vringh({ memory: mem, layout });
      vrh.notifyDisable();
      expect(dv.getUint16(off.used + 0, true)).toBe(VRING_USED_F_NO_NOTIFY);
      expect(vrh.notifyEnable()).toBe(true);
      expect(dv.getUint16(off.used + 0, true)).toBe(0);
      vrh.complete(0, 0);
      dv.setUint16(off.avail + 0, VRING_AVAIL_F_NO_INTERRUPT, true);
      expect(vrh.needNotify()).toBe(false);
      dv.setUint16(off.avail + 0, 0, true);
      vrh.complete(1, 0);
      expect(vrh.needNotify()).toBe(true);
    });
  });
});
