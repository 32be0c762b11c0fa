import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RPMSG_AS_ADDR, RPMSG_NS_ADDR, writeAsMsg, writeNsMsg, writeRpmsgHeader } from '@x/rpmsg';
import { createRpmsgPair } from '@x/rpmsg/testing';
import { text, until } from './helpers.js';

const SLOW = process.env.X_SLOW === '1';
const RUNS = SLOW ? 50_000 : 1_500;

const QUEUE = 8;
const BUF = 128;
const RX_ADDR = 0x400;

/** A message as a hostile peer might write it: header fields, payload bytes, used length. */
interface Hostile {
  src: number;
  dst: number;
  len: number;
  flags: number;
  payload: Uint8Array;
  /** Used length as a fraction of the frame (≤ 1) or past it (device side only). */
  used: number;
}

const payloadArb = fc.oneof(
  fc.uint8Array({ maxLength: BUF }),
  // Name-service and address-service shaped payloads, well-formed or not.
  fc.record({ name: fc.string({ maxLength: 12 }).filter((s) => !s.includes('\0')), addr: fc.nat(), flags: fc.nat({ max: 7 }), as: fc.boolean(), cut: fc.nat({ max: 48 }), term: fc.boolean() }).map((r) => {
    const b = new Uint8Array(r.as ? 44 : 40);
    try {
      if (r.as) writeAsMsg(b, 0, r.name, r.addr >>> 0, RX_ADDR, r.flags);
      else writeNsMsg(b, 0, r.name, r.addr >>> 0, r.flags);
    } catch {
      // a name too long for the field: leave zeros
    }
    if (!r.term) b.fill(0x41, 0, 32);
    return b.subarray(0, Math.min(b.length, r.cut === 0 ? b.length : r.cut));
  }),
);

const hostileArb: fc.Arbitrary<Hostile> = fc.record({
  src: fc.oneof(fc.constant(0x401), fc.nat()),
  dst: fc.oneof(fc.constant(RX_ADDR), fc.constant(RPMSG_NS_ADDR), fc.constant(RPMSG_AS_ADDR), fc.nat({ max: 0xffffffff })),
  len: fc.oneof(fc.constant(-1), fc.nat({ max: 0xffff })),
  flags: fc.nat({ max: 0xffff }),
  payload: payloadArb,
  used: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1.5, noNaN: true })),
});

function encode(m: Hostile): Uint8Array {
  const n = Math.min(m.payload.length, BUF - 16);
  const b = new Uint8Array(16 + n);
  writeRpmsgHeader(b, 0, m.src >>> 0, m.dst >>> 0, m.len < 0 ? n : m.len, m.flags);
  b.set(m.payload.subarray(0, n), 16);
  return b;
}

/**
 * Issue 4 "Wire": whatever bytes the other side writes into a buffer, the receiver
 * counts each buffer as delivered, dropped (a typed event) or — when the ring itself
 * lies about the used length — a ring fault; nothing throws, and every buffer comes
 * back, so the link still carries two full rings of traffic each way afterwards.
 */
describe('malformed-message fuzzing (issue 4 "Wire"; fast-check)', () => {
  for (const from of ['device', 'driver'] as const) {
    it(`any bytes from the ${from} side: delivered or dropped with a typed code, never a stuck queue (${RUNS} cases)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(hostileArb, { minLength: 1, maxLength: 12 }), async (msgs) => {
          const pair = createRpmsgPair({ queueSize: QUEUE, bufSize: BUF });
          const rxSide = from === 'device' ? pair.driver : pair.device;
          const txSide = from === 'device' ? pair.device : pair.driver;
          const codes: string[] = [];
          let faults = 0;
          rxSide.on('dropped', (e) => codes.push(e.code));
          rxSide.on('warning', (e) => {
            if (e.code === 'RING_ERROR') faults++;
          });
          const delivered: number[] = [];
          rxSide.createEndpoint({ src: RX_ADDR, callback: (d) => delivered.push(d.length) });
          let injected = 0;
          for (const m of msgs) {
            const bytes = encode(m);
            const frameLen = bytes.length;
            // The driver's outbuf length is what it adds (≤ its buffer); the device's used
            // length is whatever it writes in the used ring.
            const used = Math.min(Math.floor(frameLen * m.used), from === 'driver' ? BUF : 0xffff);
            await until(() => pair.link.inject(from, bytes, used));
            injected++;
          }
          // Each buffer ends one way: delivered (to our endpoint or the NS / AS service,
          // which may then drop it as a malformed control message), dropped by the core's
          // header checks, or refused by the ring.
          const ns = rxSide.endpoint(RPMSG_NS_ADDR)!.stats;
          const as = rxSide.endpoint(RPMSG_AS_ADDR)!.stats;
          const headerDrops = (): number => codes.filter((c) => c === 'TRUNCATED' || c === 'BAD_LENGTH' || c === 'NO_ENDPOINT').length;
          const accounted = (): number => delivered.length + ns.rxMessages + as.rxMessages + headerDrops() + faults;
          await until(() => accounted() >= injected);
          expect(accounted()).toBe(injected);
          expect(rxSide.stats.dropped).toBe(codes.length);
          for (const c of codes) {
            expect(['TRUNCATED', 'BAD_LENGTH', 'NO_ENDPOINT', 'MALFORMED', 'NAME_UNTERMINATED', 'BAD_FLAGS', 'NO_CHANNEL', 'BUSY', 'BAD_ADDRESS']).toContain(c);
          }
          // Liveness: two rings' worth each way still gets through.
          const a = pair.driver.createEndpoint({ src: 0x7000 });
          const b = pair.device.createEndpoint({ src: 0x7000 });
          const gotA: string[] = [];
          const gotB: string[] = [];
          const ra = (async () => {
            for await (const m of a) if (gotA.push(text(m.data)) === 2 * QUEUE) break;
          })();
          const rb = (async () => {
            for await (const m of b) if (gotB.push(text(m.data)) === 2 * QUEUE) break;
          })();
          for (let i = 0; i < 2 * QUEUE; i++) {
            await a.sendTo(`a${i}`, 0x7000, { timeoutMs: 5000 });
            await b.sendTo(`b${i}`, 0x7000, { timeoutMs: 5000 });
          }
          await Promise.all([ra, rb]);
          expect(gotB).toEqual(Array.from({ length: 2 * QUEUE }, (_, i) => `a${i}`));
          expect(gotA).toEqual(Array.from({ length: 2 * QUEUE }, (_, i) => `b${i}`));
          pair.close();
        }),
        { numRuns: RUNS },
      );
    });
  }
});
