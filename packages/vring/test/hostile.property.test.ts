// A hostile other side (DESIGN: "anything read from memory the other side writes is
// hostile: typed error, bounded work, no hang"). Whatever bytes are in the descriptor
// table, the available ring and the indirect area, Vringh.getDesc gives a valid chain or
// a VringError, reads a bounded number of words, writes nothing and does not consume a
// bad chain. The same for the driver half against any used ring.
//
// Valid chains are checked against a reference walker written here from VIRTIO 1.2
// §2.7.4–§2.7.6 (with BigInt arithmetic, independent of the package's code).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ArrayBufferMemory,
  VRING_DESC_F,
  Virtqueue,
  VringIov,
  Vringh,
  isVringError,
  vringLegacyLayout,
  type GuestMemory,
  type SplitRingLayout,
  type VringError,
  type VringErrorCode,
} from '@x/vring';
import { MockSplitQueue } from '@x/vring/testing';

const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;
const SLOW = process.env.X_SLOW === '1';

class BoundExceeded extends Error {}

/**
 * Counts every call into the memory and refuses to go on past a limit, so a runaway loop
 * becomes a test failure instead of a hang. Hides `view`, so every ring word goes through it.
 */
class CountingMemory implements GuestMemory {
  reads = 0;
  writes = 0;
  limit = Infinity;
  constructor(private readonly m: GuestMemory) {}
  private r(): void {
    if (++this.reads > this.limit) throw new BoundExceeded(`more than ${this.limit} memory reads`);
  }
  private w(): void {
    this.writes++;
  }
  reset(limit: number): void {
    this.reads = 0;
    this.writes = 0;
    this.limit = limit;
  }
  contains(a: number, l: number) { this.r(); return this.m.contains(a, l); }
  read8(a: number) { this.r(); return this.m.read8(a); }
  read16(a: number) { this.r(); return this.m.read16(a); }
  read32(a: number) { this.r(); return this.m.read32(a); }
  read64(a: number) { this.r(); return this.m.read64(a); }
  read(a: number, d: Uint8Array, o?: number, l?: number) { this.r(); this.m.read(a, d, o, l); }
  load16Acquire(a: number) { this.r(); return this.m.load16Acquire(a); }
  load32Acquire(a: number) { this.r(); return this.m.load32Acquire(a); }
  write8(a: number, v: number) { this.w(); this.m.write8(a, v); }
  write16(a: number, v: number) { this.w(); this.m.write16(a, v); }
  write32(a: number, v: number) { this.w(); this.m.write32(a, v); }
  write64(a: number, v: number) { this.w(); this.m.write64(a, v); }
  write(a: number, s: Uint8Array, o?: number, l?: number) { this.w(); this.m.write(a, s, o, l); }
  store16Release(a: number, v: number) { this.w(); this.m.store16Release(a, v); }
  store32Release(a: number, v: number) { this.w(); this.m.store32Release(a, v); }
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

// ---- the reference walker (VIRTIO 1.2 §2.7.4–§2.7.6) --------------------------------

interface Seg {
  addr: number;
  len: number;
}
type Ref = { kind: 'empty' } | { kind: 'bad'; why: string } | { kind: 'ok'; head: number; r: Seg[]; w: Seg[] };

interface World {
  dv: DataView;
  memBase: number;
  memSize: number;
  layout: SplitRingLayout;
  indirect: boolean;
  rcap: number;
  wcap: number;
}

function inMem(w: World, addr: bigint, len: bigint): boolean {
  return addr >= BigInt(w.memBase) && addr + len <= BigInt(w.memBase + w.memSize);
}

function refGetDesc(w: World, lastAvail: number): Ref {
  const { dv, memBase, layout } = w;
  const num = layout.num;
  const u16 = (addr: number) => dv.getUint16(addr - memBase, true);
  const availIdx = u16(layout.avail + 2);
  if (availIdx === lastAvail) return { kind: 'empty' };
  // §2.7.6 / §2.7.13: at most N buffers can be outstanding.
  if (((availIdx - lastAvail) & 0xffff) > num) return { kind: 'bad', why: 'avail idx jump' };
  const head = u16(layout.avail + 4 + 2 * (lastAvail % num));
  if (head >= num) return { kind: 'bad', why: 'head out of range' };
  const r: Seg[] = [];
  const wr: Seg[] = [];
  let table: bigint | null = null;
  let max = num;
  let count = 0;
  let i = head;
  let total = 0n;
  let sawWritable = false;
  for (;;) {
    if (++count > max) return { kind: 'bad', why: 'loop' }; // §2.7.5.2: no loops
    const at = (table === null ? BigInt(layout.desc) : table) + BigInt(16 * i) - BigInt(memBase);
    const addr = dv.getBigUint64(Number(at), true);
    const len = BigInt(dv.getUint32(Number(at) + 8, true));
    const flags = dv.getUint16(Number(at) + 12, true);
    const next = dv.getUint16(Number(at) + 14, true);
    if (flags & INDIRECT) {
      if (table !== null) return { kind: 'bad', why: 'nested indirect' }; // §2.7.5.3.1
      if (!w.indirect) return { kind: 'bad', why: 'indirect not negotiated' };
      if (flags & NEXT) return { kind: 'bad', why: 'indirect with next' }; // §2.7.5.3.1
      if (len === 0n || len % 16n !== 0n) return { kind: 'bad', why: 'indirect len' }; // §2.7.5.3: len/16 entries
      if (!inMem(w, addr, len)) return { kind: 'bad', why: 'table outside memory' };
      table = addr;
      max = Number(len / 16n);
      count = 0;
      i = 0; // §2.7.5.3: the table's chain starts at entry 0
      continue; // WRITE on the table pointer is ignored (§2.7.5.3.2)
    }
    const writable = (flags & WRITE) !== 0;
    if (!writable && sawWritable) return { kind: 'bad', why: 'readable after writable' }; // §2.7.4.2
    sawWritable ||= writable;
    if (addr > BigInt(Number.MAX_SAFE_INTEGER) || !inMem(w, addr, len)) return { kind: 'bad', why: 'address' };
    total += len;
    if (total > 2n ** 32n) return { kind: 'bad', why: 'length' }; // §2.7.5.2
    const list = writable ? wr : r;
    if (list.length >= (writable ? w.wcap : w.rcap)) return { kind: 'bad', why: 'iov capacity' };
    list.push({ addr: Number(addr), len: Number(len) });
    if (!(flags & NEXT)) return { kind: 'ok', head, r, w: wr };
    i = next;
    if (i >= max) return { kind: 'bad', why: 'next out of range' };
  }
}

// ---- generated hostile rings -------------------------------------------------------

const MEM_BASE = 0x5000_0000;
const MEM_SIZE = 0x2000;
const INDIRECT_AREA = MEM_BASE + 0x200; // 32 entries
const INDIRECT_ENTRIES = 32;
const DATA_AREA = MEM_BASE + 0x600;

const u64Addr = (num: number) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: DATA_AREA, max: MEM_BASE + MEM_SIZE - 0x100 }).map(BigInt) },
    { weight: 1, arbitrary: fc.integer({ min: MEM_BASE + MEM_SIZE - 0x100, max: MEM_BASE + MEM_SIZE - 1 }).map(BigInt) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: INDIRECT_ENTRIES - 1 }).map((k) => BigInt(INDIRECT_AREA + 16 * k)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: num - 1 }).map((k) => BigInt(MEM_BASE + 16 * k)) }, // into the ring itself
    { weight: 1, arbitrary: fc.constantFrom(0n, BigInt(MEM_BASE - 1), BigInt(MEM_BASE + MEM_SIZE), 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 16n, 2n ** 64n - 1n) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) },
  );
const len32 = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: INDIRECT_ENTRIES + 2 }).map((k) => 16 * k) },
  { weight: 1, arbitrary: fc.constantFrom(0xffff_ffff, 0x8000_0000, 24, 8) },
  { weight: 1, arbitrary: fc.nat(0xffff_ffff) },
);
const flags16 = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(0, NEXT, WRITE, NEXT | WRITE, NEXT, NEXT | WRITE) },
  { weight: 2, arbitrary: fc.constantFrom(INDIRECT, INDIRECT | WRITE) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 7 }) },
  { weight: 1, arbitrary: fc.nat(0xffff) },
);
const next16 = (n: number) =>
  fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: n - 1 }) }, { weight: 1, arbitrary: fc.integer({ min: n, max: n + 2 }) }, { weight: 1, arbitrary: fc.nat(0xffff) });
const desc = (n: number, nextRange: number) => fc.record({ addr: u64Addr(n), len: len32, flags: flags16, next: next16(nextRange) });

const structured = fc.constantFrom(1, 2, 4, 8, 16).chain((num) =>
  fc.record({
    num: fc.constant(num),
    indirect: fc.boolean(),
    lastAvail: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0xfffc, max: 0xffff }), fc.nat(0xffff)),
    availDelta: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: num }) }, { weight: 1, arbitrary: fc.integer({ min: num + 1, max: num + 3 }) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
    ring: fc.array(fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: num - 1 }) }, { weight: 1, arbitrary: fc.nat(0xffff) }), { minLength: num, maxLength: num }),
    descs: fc.array(desc(num, num), { minLength: num, maxLength: num }),
    table: fc.array(desc(num, 8), { minLength: INDIRECT_ENTRIES, maxLength: INDIRECT_ENTRIES }),
    rcap: fc.constantFrom(1, 4, 64),
    wcap: fc.constantFrom(1, 4, 64),
  }),
);
type Structured = typeof structured extends fc.Arbitrary<infer T> ? T : never;

/** Lays a generated ring out in memory: legacy layout, align 16, at MEM_BASE. */
function build(s: Structured) {
  const buf = new ArrayBuffer(MEM_SIZE);
  const dv = new DataView(buf);
  new Uint8Array(buf).fill(0x5a, DATA_AREA - MEM_BASE);
  const layout = vringLegacyLayout(MEM_BASE, s.num, 16);
  const put = (at: number, d: { addr: bigint; len: number; flags: number; next: number }) => {
    dv.setBigUint64(at - MEM_BASE, d.addr, true);
    dv.setUint32(at - MEM_BASE + 8, d.len, true);
    dv.setUint16(at - MEM_BASE + 12, d.flags, true);
    dv.setUint16(at - MEM_BASE + 14, d.next, true);
  };
  s.descs.forEach((d, i) => put(layout.desc + 16 * i, d));
  s.table.forEach((d, i) => put(INDIRECT_AREA + 16 * i, d));
  s.ring.forEach((h, k) => dv.setUint16(layout.avail - MEM_BASE + 4 + 2 * ((s.lastAvail + k) % s.num), h, true));
  dv.setUint16(layout.avail - MEM_BASE + 2, (s.lastAvail + s.availDelta) & 0xffff, true);
  return { buf, dv, layout };
}

/** The bound on memory calls for one getDesc, from the queue size and the largest indirect table in the ring. */
function readBound(dv: DataView, layout: SplitRingLayout, memSize: number): number {
  let maxTable = 0;
  for (let i = 0; i < layout.num; i++) {
    const o = layout.desc - MEM_BASE + 16 * i;
    if ((dv.getUint16(o + 12, true) & INDIRECT) !== 0) maxTable = Math.max(maxTable, Math.floor(dv.getUint32(o + 8, true) / 16));
  }
  // A table must lie in memory to be walked.
  maxTable = Math.min(maxTable, Math.floor(memSize / 16));
  // avail.idx + avail.ring[slot], then per descriptor visited at most: addr (2 × u32),
  // len, flags|next, and one contains(); plus one contains() for the table pointer.
  return 2 + 5 * (layout.num + maxTable) + 1;
}

function snapshot(buf: ArrayBuffer): Uint8Array {
  return new Uint8Array(buf.slice(0));
}

/** Index of the first byte that differs, or -1 (a plain loop: deep-equal on 8 KiB is slow). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** getDesc on both memory paths; checks them against each other and the reference. */
function checkGetDesc(s: { num: number; indirect: boolean; lastAvail: number; rcap: number; wcap: number }, buf: ArrayBuffer, dv: DataView, layout: SplitRingLayout): void {
  const raw = new ArrayBufferMemory(buf, { base: MEM_BASE });
  const counting = new CountingMemory(raw);
  const fast = new Vringh({ memory: raw, layout, indirect: s.indirect, lastAvailIdx: s.lastAvail });
  const slow = new Vringh({ memory: counting, layout, indirect: s.indirect, lastAvailIdx: s.lastAvail });
  const world: World = { dv, memBase: MEM_BASE, memSize: MEM_SIZE, layout, indirect: s.indirect, rcap: s.rcap, wcap: s.wcap };
  const bound = readBound(dv, layout, MEM_SIZE);
  const before = snapshot(buf);
  const iovs = [new VringIov(s.rcap), new VringIov(s.wcap), new VringIov(s.rcap), new VringIov(s.wcap)] as const;
  for (let step = 0; step <= s.num + 1; step++) {
    const at = fast.lastAvailIdx;
    expect(slow.lastAvailIdx).toBe(at);
    const ref = refGetDesc(world, at);
    const outcome = (v: Vringh, r: VringIov, w: VringIov) => {
      try {
        return { head: v.getDesc(r, w) };
      } catch (e) {
        if (e instanceof BoundExceeded) throw e;
        expect(isVringError(e), `not a VringError: ${String(e)}`).toBe(true);
        return { code: (e as VringError).code };
      }
    };
    const a = outcome(fast, iovs[0], iovs[1]);
    counting.reset(bound);
    const b = outcome(slow, iovs[2], iovs[3]);
    expect(counting.writes).toBe(0);
    expect(counting.reads).toBeLessThanOrEqual(bound);
    expect(b).toEqual(a); // the typed-array and accessor paths agree
    if (ref.kind === 'empty') {
      expect(a).toEqual({ head: -1 });
      break;
    }
    if (ref.kind === 'bad') {
      expect(a.code, `reference says ${ref.why}`).toBeDefined();
      // Not consumed: the same chain, the same error, again.
      expect(fast.lastAvailIdx).toBe(at);
      expect(outcome(fast, iovs[0], iovs[1])).toEqual(a);
      expect(fast.lastAvailIdx).toBe(at);
      break;
    }
    expect(a, `the reference accepts this chain`).toEqual({ head: ref.head });
    const got = (iov: VringIov) => Array.from({ length: iov.count }, (_, k) => ({ addr: iov.addr[k]!, len: iov.len[k]! }));
    expect(got(iovs[0])).toEqual(ref.r);
    expect(got(iovs[1])).toEqual(ref.w);
    expect(got(iovs[2])).toEqual(ref.r);
    expect(got(iovs[3])).toEqual(ref.w);
    expect(iovs[0].totalLen).toBe(ref.r.reduce((t, x) => t + x.len, 0));
    expect(fast.lastAvailIdx).toBe((at + 1) & 0xffff);
  }
  expect(firstDiff(snapshot(buf), before), 'getDesc wrote memory').toBe(-1);
}

describe('Vringh.getDesc against any ring bytes (property)', () => {
  const runs = SLOW ? 20_000 : 400;

  it('structured hostile rings: a valid chain (as the reference walker says) or a VringError, bounded reads, no writes', () => {
    fc.assert(
      fc.property(structured, (s) => {
        const { buf, dv, layout } = build(s);
        checkGetDesc(s, buf, dv, layout);
      }),
      { numRuns: runs },
    );
  });

  it('valid rings of several chains with a few bytes corrupted', () => {
    const arb = fc.record({
      num: fc.constantFrom(4, 8, 16),
      indirect: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      lastAvail: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0xfffc, max: 0xffff })),
      chains: fc.array(fc.record({ nr: fc.integer({ min: 0, max: 3 }), nw: fc.integer({ min: 0, max: 3 }), viaTable: fc.boolean(), len: fc.integer({ min: 0, max: 64 }) }), { minLength: 1, maxLength: 6 }),
      mutations: fc.array(fc.record({ at: fc.nat(0x3ff), byte: fc.nat(255) }), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(arb, (s) => {
        const buf = new ArrayBuffer(MEM_SIZE);
        const dv = new DataView(buf);
        const mem = new ArrayBufferMemory(buf, { base: MEM_BASE });
        const layout = vringLegacyLayout(MEM_BASE, s.num, 16);
        const mock = new MockSplitQueue(mem, layout);
        mock.setAvailIdx(s.lastAvail);
        let d = 0; // next free ring descriptor
        let t = 0; // next free indirect-area entry
        let seg = 0;
        for (const c of s.chains) {
          const n = Math.max(1, c.nr + c.nw);
          const entry = (k: number) => ({
            addr: DATA_AREA + 0x40 * (seg++ % 96),
            len: c.len,
            flags: (k < n - 1 ? NEXT : 0) | (k >= n - c.nw ? WRITE : 0),
          });
          if (c.viaTable && t + n <= INDIRECT_ENTRIES && d < s.num) {
            for (let k = 0; k < n; k++) mock.writeDescAt(INDIRECT_AREA + 16 * (t + k), { ...entry(k), next: k + 1 });
            mock.writeDesc(d, { addr: INDIRECT_AREA + 16 * t, len: 16 * n, flags: INDIRECT });
            mock.pushAvail(d++);
            t += n;
          } else if (d + n <= s.num) {
            for (let k = 0; k < n; k++) mock.writeDesc(d + k, { ...entry(k), next: d + k + 1 });
            mock.pushAvail(d);
            d += n;
          }
        }
        const bytes = new Uint8Array(buf);
        for (const m of s.mutations) bytes[m.at] = m.byte;
        checkGetDesc({ num: s.num, indirect: s.indirect, lastAvail: s.lastAvail, rcap: 8, wcap: 8 }, buf, dv, layout);
      }),
      { numRuns: runs },
    );
  });

  it('raw random bytes in the descriptor table, avail ring and indirect area', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 4, 8, 16),
        fc.boolean(),
        fc.nat(0xffff),
        fc.uint8Array({ minLength: 0x600, maxLength: 0x600 }),
        (num, indirect, lastAvail, bytes) => {
          const buf = new ArrayBuffer(MEM_SIZE);
          new Uint8Array(buf).set(bytes);
          const dv = new DataView(buf);
          const layout = vringLegacyLayout(MEM_BASE, num, 16);
          checkGetDesc({ num, indirect, lastAvail, rcap: 64, wcap: 64 }, buf, dv, layout);
        },
      ),
      { numRuns: runs / 2 },
    );
  });

  it('chains that are valid by construction are accepted and read back exactly', () => {
    // Build a valid chain (readable then writable, direct or via one indirect table) and
    // expect getDesc to return exactly its segments.
    const chain = fc.record({
      num: fc.constantFrom(2, 4, 8, 16),
      nr: fc.integer({ min: 0, max: 4 }),
      nw: fc.integer({ min: 0, max: 4 }),
      viaTable: fc.boolean(),
      lens: fc.array(fc.integer({ min: 0, max: 128 }), { minLength: 8, maxLength: 8 }),
      seed: fc.nat(),
    }).filter((c) => c.nr + c.nw > 0 && (c.viaTable || c.nr + c.nw <= c.num));
    fc.assert(
      fc.property(chain, (c) => {
        const buf = new ArrayBuffer(MEM_SIZE);
        const mem = new ArrayBufferMemory(buf, { base: MEM_BASE });
        const layout = vringLegacyLayout(MEM_BASE, c.num, 16);
        const mock = new MockSplitQueue(mem, layout);
        const n = c.nr + c.nw;
        const want: Seg[] = Array.from({ length: n }, (_, k) => ({ addr: DATA_AREA + 0x100 * k, len: c.lens[k]! }));
        // A permutation of slots, so next does not simply count up.
        const order = Array.from({ length: c.viaTable ? n : c.num }, (_, k) => k);
        for (let k = order.length - 1; k > 0; k--) {
          const j = (c.seed + k * 7919) % (k + 1);
          [order[k], order[j]] = [order[j]!, order[k]!];
        }
        if (c.viaTable) {
          // §2.7.5.3: the chain starts at entry 0.
          const slots = [0, ...order.filter((x) => x !== 0)].slice(0, n);
          slots.forEach((slot, k) => mock.writeDescAt(INDIRECT_AREA + 16 * slot, { ...want[k]!, flags: (k < n - 1 ? NEXT : 0) | (k >= c.nr ? WRITE : 0), next: slots[k + 1] ?? 0 }));
          mock.writeDesc(c.num - 1, { addr: INDIRECT_AREA, len: 16 * n, flags: INDIRECT });
          mock.pushAvail(c.num - 1);
        } else {
          const slots = order.slice(0, n);
          slots.forEach((slot, k) => mock.writeDesc(slot, { ...want[k]!, flags: (k < n - 1 ? NEXT : 0) | (k >= c.nr ? WRITE : 0), next: slots[k + 1] ?? 0 }));
          mock.pushAvail(slots[0]!);
        }
        const vrh = new Vringh({ memory: mem, layout, indirect: true });
        const r = new VringIov(8);
        const w = new VringIov(8);
        expect(vrh.getDesc(r, w)).toBeGreaterThanOrEqual(0);
        expect(Array.from({ length: r.count }, (_, k) => ({ addr: r.addr[k], len: r.len[k] }))).toEqual(want.slice(0, c.nr));
        expect(Array.from({ length: w.count }, (_, k) => ({ addr: w.addr[k], len: w.len[k] }))).toEqual(want.slice(c.nr));
      }),
      { numRuns: SLOW ? 5000 : 200 },
    );
  });
});

// ---- targeted cases: one rule each ---------------------------------------------------

const T_BASE = 0x6000_0000;
const T_DATA = T_BASE + 0x2000;
const T_TABLE = T_BASE + 0x1000;

/** A memory that claims every address below 2^64 exists (to reach the length and address rules). */
class EverywhereMemory extends ArrayBufferMemory {
  override contains(addr: number, len: number): boolean {
    return super.contains(addr, len) || (addr >= 0 && len >= 0);
  }
}

interface Case {
  name: string;
  code: VringErrorCode;
  indirect?: boolean;
  everywhere?: boolean;
  /** Writes the bad ring. */
  bad: (q: MockSplitQueue, dv: DataView) => void;
  /** Repairs it, so the very same chain is then returned (proving it was not consumed). */
  fix: (q: MockSplitQueue, dv: DataView) => void;
  head?: number;
  /** iov capacity; large by default so that the rule under test, not the iov size, trips. */
  cap?: number;
}

const cases: Case[] = [
  {
    name: '§2.7.5.2 descriptor loop (0 → 1 → 0)',
    code: 'DESC_LOOP',
    bad: (q) => {
      q.writeDesc(0, { addr: T_DATA, len: 1, flags: NEXT, next: 1 });
      q.writeDesc(1, { addr: T_DATA, len: 1, flags: NEXT, next: 0 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(1, { addr: T_DATA, len: 1, flags: 0 }),
  },
  {
    name: '§2.7.5.2 descriptor loop (a descriptor pointing at itself)',
    code: 'DESC_LOOP',
    bad: (q) => {
      q.writeDesc(3, { addr: T_DATA, len: 1, flags: NEXT, next: 3 });
      q.pushAvail(3);
    },
    fix: (q) => q.writeDesc(3, { addr: T_DATA, len: 1, flags: 0 }),
    head: 3,
  },
  {
    name: '§2.7.5.3 a loop inside an indirect table',
    code: 'DESC_LOOP',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1, flags: NEXT, next: 1 });
      q.writeDescAt(T_TABLE + 16, { addr: T_DATA, len: 1, flags: NEXT, next: 0 });
      q.writeDesc(0, { addr: T_TABLE, len: 32, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDescAt(T_TABLE + 16, { addr: T_DATA, len: 1, flags: 0 }),
  },
  {
    name: '§2.7.6 head ≥ queue size in the available ring',
    code: 'HEAD_OUT_OF_RANGE',
    bad: (q) => {
      q.writeDesc(2, { addr: T_DATA, len: 1 });
      q.pushAvail(8);
    },
    fix: (q, dv) => dv.setUint16(q.layout.avail - T_BASE + 4, 2, true),
    head: 2,
  },
  {
    name: '§2.7.5 next ≥ queue size',
    code: 'NEXT_OUT_OF_RANGE',
    bad: (q) => {
      q.writeDesc(0, { addr: T_DATA, len: 1, flags: NEXT, next: 8 });
      q.pushAvail(0);
    },
    fix: (q) => {
      q.writeDesc(7, { addr: T_DATA, len: 1 });
      q.writeDesc(0, { addr: T_DATA, len: 1, flags: NEXT, next: 7 });
    },
  },
  {
    name: '§2.7.5.3 next ≥ the indirect table length',
    code: 'NEXT_OUT_OF_RANGE',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1, flags: NEXT, next: 2 });
      q.writeDescAt(T_TABLE + 32, { addr: T_DATA, len: 1 }); // exists in memory, but past len/16 = 2
      q.writeDesc(0, { addr: T_TABLE, len: 32, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_TABLE, len: 48, flags: INDIRECT }),
  },
  {
    name: '§2.7.4.2 a readable descriptor after a writable one',
    code: 'READABLE_AFTER_WRITABLE',
    bad: (q) => {
      q.writeDesc(0, { addr: T_DATA, len: 1, flags: WRITE | NEXT, next: 1 });
      q.writeDesc(1, { addr: T_DATA, len: 1, flags: 0 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(1, { addr: T_DATA, len: 1, flags: WRITE }),
  },
  {
    name: '§2.7.4.2 a readable descriptor in the table after a writable direct one',
    code: 'READABLE_AFTER_WRITABLE',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1, flags: 0 });
      q.writeDesc(0, { addr: T_DATA, len: 1, flags: WRITE | NEXT, next: 1 });
      q.writeDesc(1, { addr: T_TABLE, len: 16, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1, flags: WRITE }),
  },
  {
    name: '§2.7.5.3.1 an indirect descriptor inside an indirect table',
    code: 'NESTED_INDIRECT',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_TABLE + 0x100, len: 16, flags: INDIRECT });
      q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1 }),
  },
  {
    name: '§2.7.5.3.1 INDIRECT together with NEXT',
    code: 'INDIRECT_WITH_NEXT',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1 });
      q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT | NEXT, next: 1 });
      q.writeDesc(1, { addr: T_DATA, len: 1 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT }),
  },
  {
    name: '§2.7.5.3 an indirect table of length 0',
    code: 'INDIRECT_BAD_LEN',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1 });
      q.writeDesc(0, { addr: T_TABLE, len: 0, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT }),
  },
  {
    name: '§2.7.5.3 an indirect table length that is not a multiple of 16',
    code: 'INDIRECT_BAD_LEN',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1 });
      q.writeDesc(0, { addr: T_TABLE, len: 24, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT }),
  },
  {
    name: '§2.7.5.3 INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated',
    code: 'INDIRECT_NOT_NEGOTIATED',
    indirect: false,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1 });
      q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_DATA, len: 1 }),
  },
  {
    name: '§2.7.5.2 a chain longer than 2^32 bytes ((2^32 − 1) + 2)',
    code: 'LEN_OVERFLOW',
    everywhere: true,
    bad: (q) => {
      q.writeDesc(0, { addr: T_DATA, len: 0xffff_ffff, flags: NEXT, next: 1 });
      q.writeDesc(1, { addr: T_DATA, len: 2 });
      q.pushAvail(0);
    },
    // (2^32 − 1) + 1 = 2^32 exactly is allowed.
    fix: (q) => q.writeDesc(1, { addr: T_DATA, len: 1 }),
  },
  {
    name: '§2.7.5.2 a chain longer than 2^32 bytes inside an indirect table',
    code: 'LEN_OVERFLOW',
    everywhere: true,
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 0x8000_0000, flags: NEXT, next: 1 });
      q.writeDescAt(T_TABLE + 16, { addr: T_DATA, len: 0x8000_0001 });
      q.writeDesc(0, { addr: T_TABLE, len: 32, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDescAt(T_TABLE + 16, { addr: T_DATA, len: 0x8000_0000 }),
  },
  {
    name: 'an available index that moved by more than the queue size',
    code: 'AVAIL_IDX_JUMP',
    bad: (q) => {
      q.writeDesc(0, { addr: T_DATA, len: 1 });
      q.setAvailIdx(9); // N = 8; every ring slot reads head 0
    },
    fix: (q) => q.setAvailIdx(8), // exactly N outstanding is fine
  },
  {
    name: 'an available index that moved backwards (reads as a jump of 2^16 − 1)',
    code: 'AVAIL_IDX_JUMP',
    bad: (q) => {
      q.writeDesc(0, { addr: T_DATA, len: 1 });
      q.setAvailIdx(0xffff);
    },
    fix: (q) => q.setAvailIdx(1),
  },
  {
    name: 'a buffer that starts outside the device memory',
    code: 'ADDRESS_OUT_OF_RANGE',
    bad: (q) => {
      q.writeDesc(0, { addr: T_BASE + 0x4000, len: 1 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_BASE + 0x3fff, len: 1 }),
  },
  {
    name: 'a buffer that runs past the end of the device memory',
    code: 'ADDRESS_OUT_OF_RANGE',
    bad: (q) => {
      q.writeDesc(0, { addr: T_BASE + 0x3f00, len: 0x101 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_BASE + 0x3f00, len: 0x100 }),
  },
  {
    name: 'a buffer below the device memory',
    code: 'ADDRESS_OUT_OF_RANGE',
    bad: (q) => {
      q.writeDesc(0, { addr: T_BASE - 1, len: 1 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_BASE, len: 1 }),
  },
  {
    name: 'an indirect table outside the device memory',
    code: 'ADDRESS_OUT_OF_RANGE',
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1 });
      q.writeDesc(0, { addr: T_BASE + 0x3ff0, len: 32, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT }),
  },
  {
    name: 'a buffer address of 2^53 (not a safe JS number), even where memory claims to exist',
    code: 'ADDRESS_OUT_OF_RANGE',
    everywhere: true,
    bad: (q) => {
      q.writeDesc(0, { addr: 2 ** 53, len: 1 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: 2 ** 53 - 2, len: 1 }),
  },
  {
    name: 'a buffer address of 2^64 − 1',
    code: 'ADDRESS_OUT_OF_RANGE',
    everywhere: true,
    bad: (q, dv) => {
      q.writeDesc(0, { addr: 0, len: 1 });
      dv.setBigUint64(q.layout.desc - T_BASE, 2n ** 64n - 1n, true);
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_DATA, len: 1 }),
  },
  {
    name: 'an indirect table at an address above 2^53',
    code: 'ADDRESS_OUT_OF_RANGE',
    everywhere: true,
    indirect: true,
    bad: (q) => {
      q.writeDescAt(T_TABLE, { addr: T_DATA, len: 1 });
      q.writeDesc(0, { addr: 2 ** 53 + 2 ** 40, len: 16, flags: INDIRECT });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(0, { addr: T_TABLE, len: 16, flags: INDIRECT }),
  },
  {
    name: 'more segments than the iov holds',
    code: 'CHAIN_TOO_LONG',
    cap: 4,
    bad: (q) => {
      for (let i = 0; i < 5; i++) q.writeDesc(i, { addr: T_DATA, len: 1, flags: i < 4 ? NEXT : 0, next: i + 1 });
      q.pushAvail(0);
    },
    fix: (q) => q.writeDesc(3, { addr: T_DATA, len: 1, flags: 0 }),
  },
];

describe.each([
  ['typed-array path', true],
  ['accessor path', false],
])('Vringh.getDesc: each broken rule has its own code and the chain is not consumed (%s)', (_path, view) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const buf = new ArrayBuffer(0x4000);
    const mem = c.everywhere ? new EverywhereMemory(buf, { base: T_BASE }) : new ArrayBufferMemory(buf, { base: T_BASE });
    const counting = new CountingMemory(mem);
    const layout = vringLegacyLayout(T_BASE, 8, 16);
    const q = new MockSplitQueue(mem, layout);
    const dv = new DataView(buf);
    c.bad(q, dv);
    const vrh = new Vringh({ memory: view ? mem : counting, layout, indirect: c.indirect ?? false });
    const r = new VringIov(c.cap ?? 16);
    const w = new VringIov(c.cap ?? 16);
    const before = snapshot(buf);
    counting.reset(1000);
    const e = thrown(() => vrh.getDesc(r, w));
    expect(e.code).toBe(c.code);
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toContain(c.code);
    expect(vrh.lastAvailIdx).toBe(0);
    expect(vrh.stats.errors).toBe(1);
    expect(vrh.stats.chains).toBe(0);
    // Again: same error, still not consumed, nothing written.
    expect(thrown(() => vrh.getDesc(r, w)).code).toBe(c.code);
    expect(vrh.lastAvailIdx).toBe(0);
    expect(firstDiff(snapshot(buf), before), 'getDesc wrote memory').toBe(-1);
    expect(counting.writes).toBe(0);
    // Repaired, the same chain comes out.
    c.fix(q, dv);
    expect(vrh.getDesc(r, w)).toBe(c.head ?? 0);
    expect(vrh.lastAvailIdx).toBe(1);
  });
});

describe('Vringh.getDesc: bounded work on long loops', () => {
  it('a 4096-entry indirect table that loops back to entry 0 ends in DESC_LOOP after at most 4096 entries', () => {
    const base = 0x9000_0000;
    const buf = new ArrayBuffer(0x1_4000);
    const mem = new ArrayBufferMemory(buf, { base });
    const counting = new CountingMemory(mem);
    const layout = vringLegacyLayout(base, 8, 16);
    const q = new MockSplitQueue(mem, layout);
    const table = base + 0x1000;
    // Zero-length readable entries, each pointing at the next, the last back to 0.
    for (let i = 0; i < 4096; i++) q.writeDescAt(table + 16 * i, { addr: base, len: 0, flags: NEXT, next: (i + 1) % 4096 });
    q.writeDesc(0, { addr: table, len: 16 * 4096, flags: INDIRECT });
    q.pushAvail(0);
    const vrh = new Vringh({ memory: counting, layout, indirect: true });
    // avail idx + ring entry; the ring descriptor; 4096 table entries; 5 calls per descriptor at most.
    const bound = 2 + 5 * (1 + 4096) + 1;
    counting.reset(bound);
    expect(thrown(() => vrh.getDesc(new VringIov(65536), new VringIov(1))).code).toBe('DESC_LOOP');
    expect(counting.reads).toBeLessThanOrEqual(bound);
    expect(counting.reads).toBeGreaterThan(4096); // it did walk the table: the bound is not vacuous
  });

  it('a direct chain looping through all 32768 descriptors ends in DESC_LOOP after at most N descriptors', () => {
    const base = 0x9000_0000;
    const num = 32768;
    const layout = vringLegacyLayout(base, num, 16);
    const buf = new ArrayBuffer(16 * num + (6 + 2 * num) + (6 + 8 * num) + 64); // the three parts, with room for alignment
    const mem = new ArrayBufferMemory(buf, { base });
    const counting = new CountingMemory(mem);
    const dv = new DataView(buf);
    for (let i = 0; i < num; i++) {
      dv.setUint32(16 * i, base, true); // addr = base (< 2^32), len 0: every segment is valid
      dv.setUint16(16 * i + 12, NEXT, true);
      dv.setUint16(16 * i + 14, (i + 1) % num, true);
    }
    new MockSplitQueue(mem, layout).pushAvail(0);
    const vrh = new Vringh({ memory: counting, layout });
    const bound = 2 + 5 * num;
    counting.reset(bound);
    expect(thrown(() => vrh.getDesc(new VringIov(65536), new VringIov(1))).code).toBe('DESC_LOOP');
    expect(counting.reads).toBeLessThanOrEqual(bound);
  });
});

// ---- the driver half against a hostile used ring ----------------------------------------

describe('Virtqueue.getBuf against any used-ring bytes (property)', () => {
  it('gives tokens in flight (each at most once, len ≤ writable) or VringErrors; bounded reads; writes only used_event', () => {
    const arb = fc.record({
      num: fc.constantFrom(1, 2, 4, 8),
      eventIdx: fc.boolean(),
      bufs: fc.array(fc.record({ out: fc.integer({ min: 0, max: 2 }), inLen: fc.integer({ min: 0, max: 8 }) }), { minLength: 1, maxLength: 8 }),
      elems: fc.array(
        fc.record({
          id: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 9 }) }, { weight: 1, arbitrary: fc.nat(0xffff_ffff) }),
          len: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 10 }) }, { weight: 1, arbitrary: fc.nat(0xffff_ffff) }),
        }),
        { minLength: 8, maxLength: 8 },
      ),
      usedIdx: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 10 }) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
    });
    fc.assert(
      fc.property(arb, (s) => {
        const base = 0x7000_0000;
        const buf = new ArrayBuffer(0x3000);
        const mem = new ArrayBufferMemory(buf, { base });
        const counting = new CountingMemory(mem);
        const layout = vringLegacyLayout(base, s.num, 16);
        const vq = new Virtqueue<number>({ memory: counting, layout, eventIdx: s.eventIdx });
        const writable = new Map<number, number>();
        s.bufs.forEach((b, t) => {
          const sgs = [...Array.from({ length: b.out }, () => ({ addr: base + 0x1000, len: 3 })), { addr: base + 0x2000, len: b.inLen }];
          // Without indirect a buffer must fit the queue (a longer one is a RangeError).
          if (b.out + 1 <= s.num && vq.addSgs(sgs, b.out, 1, t)) writable.set(t, b.inLen);
        });
        vq.kickPrepare();
        const dv = new DataView(buf);
        const U = layout.used - base;
        for (let k = 0; k < s.num; k++) {
          const e = s.elems[k]!;
          dv.setUint32(U + 4 + 8 * k, e.id, true);
          dv.setUint32(U + 8 + 8 * k, e.len, true);
        }
        dv.setUint16(U + 2, s.usedIdx, true);
        const usedEventOff = layout.avail - base + 4 + 2 * s.num;
        const before = snapshot(buf);
        const returned = new Set<number>();
        for (let k = 0; k < 2 * s.num + 2; k++) {
          counting.reset(8); // used.idx, id, len, and a little slack
          let t: number | undefined;
          try {
            t = vq.getBuf();
          } catch (e) {
            if (e instanceof BoundExceeded) throw e;
            expect(isVringError(e)).toBe(true);
            const err = e as VringError;
            if (err.code === 'USED_LEN_INVALID') {
              const tok = err.token as number;
              expect(writable.has(tok)).toBe(true);
              expect(returned.has(tok)).toBe(false);
              returned.add(tok);
              continue;
            }
            expect(['BAD_USED_ID', 'USED_IDX_JUMP', 'BROKEN']).toContain(err.code);
            expect(vq.isBroken).toBe(true);
            continue;
          }
          expect(counting.writes).toBeLessThanOrEqual(1); // used_event, with EVENT_IDX
          if (t === undefined) continue;
          expect(writable.has(t)).toBe(true);
          expect(returned.has(t)).toBe(false);
          returned.add(t);
          expect(vq.lastLen).toBeLessThanOrEqual(writable.get(t)!);
        }
        // Nothing but used_event changed.
        const after = snapshot(buf);
        for (let i = 0; i < after.length; i++) {
          if (after[i] !== before[i] && !(s.eventIdx && (i === usedEventOff || i === usedEventOff + 1))) {
            throw new Error(`getBuf wrote byte 0x${i.toString(16)}`);
          }
        }
      }),
      { numRuns: SLOW ? 20_000 : 400 },
    );
  });
});
