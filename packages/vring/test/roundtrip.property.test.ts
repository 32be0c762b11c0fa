// Any sequence of driver and device operations round-trips through both halves of a
// ring with the right bytes and lengths (the property Linux tools/virtio/vringh_test.c
// checks: both halves over one memory, seen by the device at another address).
//
// A model tracks what each side must see: buffers become visible to the device in the
// order they were published (§2.7.13), the device may complete them in any order, the
// driver gets them back in used-ring order (§2.7.14) with the length the device wrote
// (§2.7.8), and neither side misses a wake-up after re-arming notifications (§2.7.7,
// §2.7.10): a device that found the ring empty and re-enabled notifications gets a kick
// for the next buffer, a driver that re-enabled callbacks gets an interrupt.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Virtqueue, VringIov, Vringh, type GuestMemory, type VringSg } from '@x/vring';
import { createRingPair } from '@x/vring/testing';

const SLOW = process.env.X_SLOW === '1';

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

/** Deterministic bytes from a seed (xorshift32). */
function fill(seed: number, n: number): Uint8Array {
  let x = (seed | 0) || 0x9e3779b9;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const SENTINEL = 0xee;
const SLOT = 512; // bytes of buffer space per buffer in flight: ≤ 8 segments of ≤ 48 bytes, 16-byte gaps
const GAP = 16;

type Op =
  | { t: 'add'; out: number[]; in: number[]; useBuf: boolean; seed: number }
  | { t: 'publish' }
  | { t: 'kick' }
  | { t: 'take'; k: number; chunk: number; frac: number; seed: number }
  | { t: 'complete'; k: number; mode: 'one' | 'many' | 'addUsed'; seed: number }
  | { t: 'get'; k: number }
  | { t: 'devSleep' }
  | { t: 'drvSleep' };

const segLen = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 48 }) }, { weight: 1, arbitrary: fc.constant(0) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('add' as const), out: fc.array(segLen, { maxLength: 4 }), in: fc.array(segLen, { maxLength: 4 }), useBuf: fc.boolean(), seed: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'publish' as const }) },
  { weight: 3, arbitrary: fc.constant({ t: 'kick' as const }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('take' as const), k: fc.integer({ min: 1, max: 4 }), chunk: fc.integer({ min: 1, max: 17 }), frac: fc.integer({ min: 0, max: 100 }), seed: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('complete' as const), k: fc.integer({ min: 1, max: 4 }), mode: fc.constantFrom('one' as const, 'many' as const, 'addUsed' as const), seed: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('get' as const), k: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'devSleep' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'drvSleep' as const }) },
);

const configArb = fc.record({
  num: fc.constantFrom<number>(1, 2, 4, 8, 16),
  layout: fc.constantFrom('legacy' as const, 'modern' as const),
  align: fc.constantFrom(16, 4096),
  eventIdx: fc.boolean(),
  indirectSegments: fc.constantFrom(0, 0, 2, 4, 8),
  accessorPath: fc.boolean(),
  shared: fc.boolean(),
  driverBase: fc.constantFrom(0, 0x1000_0000, 0x3_0000_0000, 2 ** 50),
  deviceBase: fc.constantFrom(0x10_0000, 0x8_0000_0000, 2 ** 52),
  end: fc.constantFrom('drain' as const, 'detach' as const),
});

interface Buf {
  token: number;
  slot: number;
  out: Array<{ addr: number; bytes: Uint8Array }>;
  in: Array<{ addr: number; len: number }>;
  descs: number;
  /** Set when the device took it. */
  head?: number;
  pushed?: Uint8Array;
}

type Config = typeof configArb extends fc.Arbitrary<infer C> ? C : never;

function run(cfg: Config, ops: Op[]): void {
  const num = cfg.num;
  const p = createRingPair<number>({
    num,
    layout: cfg.layout,
    align: cfg.align,
    eventIdx: cfg.eventIdx,
    indirectSegments: cfg.indirectSegments,
    dataSize: num * SLOT,
    driverBase: cfg.driverBase,
    deviceBase: cfg.deviceBase,
    shared: cfg.shared,
  });
  let vq = p.vq;
  let vrh = p.vrh;
  if (cfg.accessorPath) {
    // The same ring through memories without zero-copy views: the accessor path of both halves.
    const area = p.dataAddr - num * cfg.indirectSegments * 16;
    vq = new Virtqueue<number>({
      memory: withoutView(p.driverMemory),
      layout: p.layout,
      eventIdx: cfg.eventIdx,
      ...(cfg.indirectSegments > 0 ? { indirect: { area, maxSegments: cfg.indirectSegments } } : {}),
    });
    vrh = new Vringh({ memory: withoutView(p.deviceMemory), layout: p.layout, eventIdx: cfg.eventIdx, indirect: cfg.indirectSegments > 0 });
  }
  const mem = p.driverMemory;
  const r = new VringIov(8);
  const w = new VringIov(8);

  const freeSlots = Array.from({ length: num }, (_, i) => num - 1 - i);
  const unpublished: Buf[] = [];
  const published: Buf[] = []; // published, not taken, in avail order
  const held: Buf[] = []; // taken by the device, not completed
  const usedQueue: Buf[] = []; // completed, not collected, in used order
  const outstanding = new Map<number, Buf>();
  const returned = new Set<number>();
  let nextToken = 0;
  let modelFree = num;
  let devArmed = false;
  let drvArmed = false;

  const publishAll = () => {
    published.push(...unpublished);
    unpublished.length = 0;
  };

  const collect = (b: Buf | undefined, t: number | undefined) => {
    if (b === undefined) {
      expect(t).toBeUndefined();
      return;
    }
    expect(t).toBe(b.token);
    expect(returned.has(b.token)).toBe(false);
    returned.add(b.token);
    const pushed = b.pushed!;
    expect(vq.lastLen).toBe(pushed.length);
    // The writable segments hold exactly what the device pushed, then the untouched sentinel.
    const seen = concat(b.in.map((s) => {
      const d = new Uint8Array(s.len);
      mem.read(s.addr, d);
      return d;
    }));
    expect(sameBytes(seen.subarray(0, pushed.length), pushed)).toBe(true);
    expect(seen.subarray(pushed.length).every((x) => x === SENTINEL)).toBe(true);
    outstanding.delete(b.token);
    freeSlots.push(b.slot);
    modelFree += b.descs;
  };

  const take = (chunk: number, frac: number, seed: number): boolean => {
    const head = vrh.getDesc(r, w);
    const b = published.shift();
    if (b === undefined) {
      expect(head).toBe(-1);
      return false;
    }
    expect(head).toBeGreaterThanOrEqual(0);
    expect(head).toBeLessThan(num);
    // The device sees exactly the driver's segments, readable then writable (§2.7.4.2).
    expect(Array.from({ length: r.count }, (_, i) => [r.addr[i], r.len[i]])).toEqual(b.out.map((s) => [s.addr, s.bytes.length]));
    expect(Array.from({ length: w.count }, (_, i) => [w.addr[i], w.len[i]])).toEqual(b.in.map((s) => [s.addr, s.len]));
    // It reads exactly the bytes the driver wrote, in order across segments.
    const want = concat(b.out.map((s) => s.bytes));
    const got = new Uint8Array(want.length + 3);
    let n = 0;
    for (let k = vrh.pull(r, got, n, Math.min(chunk, got.length - n)); k > 0; k = vrh.pull(r, got, n, Math.min(chunk, got.length - n))) n += k;
    expect(n).toBe(want.length);
    expect(sameBytes(got.subarray(0, n), want)).toBe(true);
    // It writes a prefix of the writable space.
    const pushed = fill(seed ^ b.token, Math.floor((w.totalLen * frac) / 100));
    let m = 0;
    while (m < pushed.length) {
      const k = vrh.push(w, pushed, m, Math.min(chunk, pushed.length - m));
      expect(k).toBeGreaterThan(0);
      m += k;
    }
    expect(vrh.push(w, new Uint8Array(1))).toBe(w.totalLen === pushed.length ? 0 : 1);
    if (w.totalLen !== pushed.length) {
      // That extra byte is part of the device's reply too.
      b.pushed = concat([pushed, new Uint8Array(1)]);
    } else {
      b.pushed = pushed;
    }
    b.head = head;
    held.push(b);
    return true;
  };

  const notified = () => {
    const irq = vrh.needNotify();
    // A driver that re-enabled callbacks and saw nothing pending must be interrupted.
    if (drvArmed) expect(irq, 'lost used-buffer notification').toBe(true);
    if (irq) drvArmed = false;
  };

  for (const op of ops) {
    switch (op.t) {
      case 'add': {
        const outL = op.out.length + op.in.length === 0 ? [8] : op.out;
        const inL = op.in;
        const total = outL.length + inL.length;
        const indirect = cfg.indirectSegments > 0 && total > 1 && total <= cfg.indirectSegments;
        const descs = indirect ? 1 : total;
        if (descs > num) {
          expect(() => vq.addSgs(outL.concat(inL).map((len) => ({ addr: p.dataAddr, len })), outL.length, inL.length, -1)).toThrow(RangeError);
          break;
        }
        if (descs > modelFree) {
          expect(vq.addSgs(outL.concat(inL).map((len) => ({ addr: p.dataAddr, len })), outL.length, inL.length, -1)).toBe(false);
          break;
        }
        const slot = freeSlots.pop()!;
        let at = p.dataAddr + slot * SLOT;
        const b: Buf = { token: nextToken++, slot, out: [], in: [], descs };
        outL.forEach((len, i) => {
          const bytes = fill(op.seed + i * 31 + b.token, len);
          mem.write(at, bytes);
          b.out.push({ addr: at, bytes });
          at += len + GAP;
        });
        for (const len of inL) {
          mem.write(at, new Uint8Array(len).fill(SENTINEL));
          b.in.push({ addr: at, len });
          at += len + GAP;
        }
        const sgs: VringSg[] = [...b.out.map((s) => ({ addr: s.addr, len: s.bytes.length })), ...b.in];
        let ok: boolean;
        if (op.useBuf && total === 1) ok = outL.length === 1 ? vq.addOutbuf(sgs[0]!.addr, sgs[0]!.len, b.token) : vq.addInbuf(sgs[0]!.addr, sgs[0]!.len, b.token);
        else ok = vq.addSgs(sgs, outL.length, inL.length, b.token);
        expect(ok).toBe(true);
        modelFree -= descs;
        unpublished.push(b);
        outstanding.set(b.token, b);
        break;
      }
      case 'publish':
        vq.publish();
        publishAll();
        break;
      case 'kick': {
        publishAll();
        const need = vq.kickPrepare();
        // A device that re-armed on an empty ring must be told about new buffers.
        if (devArmed && published.length > 0) expect(need, 'lost available-buffer notification').toBe(true);
        if (need) devArmed = false;
        break;
      }
      case 'take':
        vrh.notifyDisable();
        devArmed = false;
        for (let k = 0; k < op.k; k++) if (!take(op.chunk, op.frac, op.seed + k)) break;
        break;
      case 'complete': {
        if (held.length === 0) break;
        const batch: Buf[] = [];
        for (let k = 0; k < op.k && held.length > 0; k++) batch.push(held.splice((op.seed + 7 * k) % held.length, 1)[0]!);
        if (op.mode === 'one') {
          for (const b of batch) {
            vrh.complete(b.head!, b.pushed!.length);
            usedQueue.push(b);
            notified();
          }
        } else if (op.mode === 'many') {
          vrh.completeMany(batch.map((b) => b.head!), batch.map((b) => b.pushed!.length));
          usedQueue.push(...batch);
          notified();
        } else {
          for (const b of batch) vrh.addUsed(b.head!, b.pushed!.length);
          vrh.flushUsed();
          usedQueue.push(...batch);
          notified();
        }
        break;
      }
      case 'get':
        vq.disableCb();
        drvArmed = false;
        for (let k = 0; k < op.k; k++) {
          const b = usedQueue.shift();
          collect(b, vq.getBuf());
          if (b === undefined) break;
        }
        break;
      case 'devSleep': {
        // notifyEnable says "safe to sleep" exactly when every published buffer was taken.
        const empty = vrh.notifyEnable();
        expect(empty).toBe(published.length === 0);
        devArmed = empty;
        break;
      }
      case 'drvSleep': {
        const idle = vq.enableCb();
        expect(idle).toBe(usedQueue.length === 0);
        drvArmed = idle;
        break;
      }
    }
    expect(vq.numFree).toBe(modelFree);
    expect(vq.pending).toBe(outstanding.size);
  }

  if (cfg.end === 'drain') {
    // Publish everything, let the device finish it all, collect it all.
    vq.kickPrepare();
    publishAll();
    while (take(5, 50, 1));
    for (const b of held) vrh.complete(b.head!, b.pushed!.length);
    usedQueue.push(...held);
    held.length = 0;
    vq.disableCb();
    while (usedQueue.length > 0) collect(usedQueue.shift(), vq.getBuf());
    expect(vq.getBuf()).toBeUndefined();
    expect(outstanding.size).toBe(0);
  } else {
    // Device reset: the driver takes back every buffer it has not collected, each once.
    const got: number[] = [];
    for (let t = vq.detachUnusedBuf(); t !== undefined; t = vq.detachUnusedBuf()) got.push(t);
    expect(got.sort((a, b) => a - b)).toEqual([...outstanding.keys()].sort((a, b) => a - b));
    for (const t of got) {
      expect(returned.has(t)).toBe(false);
      returned.add(t);
    }
  }
  // Every token came back exactly once.
  expect(returned.size).toBe(nextToken);
  expect(vq.numFree).toBe(num);
  expect(vq.pending).toBe(0);
}

describe('round trip through both halves (property, Linux vringh_test style)', () => {
  it('any driver/device interleaving delivers the right bytes and lengths, every token once, no lost notification', () => {
    fc.assert(
      fc.property(configArb, fc.array(opArb, { minLength: 5, maxLength: SLOW ? 200 : 60, size: 'max' }), (cfg, ops) => run(cfg, ops)),
      { numRuns: SLOW ? 5000 : 200 },
    );
  });

  it('a long run on a small ring (index wrap-around of every slot many times)', () => {
    fc.assert(
      fc.property(
        configArb.map((c) => ({ ...c, num: 2 })),
        fc.array(opArb, { minLength: 300, maxLength: 400 }),
        (cfg, ops) => run(cfg, ops),
      ),
      { numRuns: SLOW ? 500 : 10 },
    );
  });
});
