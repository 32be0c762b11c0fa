import { afterEach, describe, expect, it } from 'vitest';
import { VringIov } from '@x/vring';
import {
  VHOST_DEV_ANY_ID,
  VHOST_NOTIFY,
  VIRTIO_CONFIG_S,
  VhostBus,
  isVhostError,
  validateVhostConfigOps,
  type VhostDevice,
  type VhostDriver,
  type VhostEventInfo,
  type VhostVirtqueue,
} from '@x/vhost-core';
import type { VhostConformanceRequirements, VhostTransportFactory, VhostTransportHarness, VhostTransportPeer } from './harness.js';

const S = VIRTIO_CONFIG_S;
const EVENT_IDX = 29n;
/**
 * What the suite's driver offers: two device-specific bits (like rpmsg's F_NS = 0 and
 * F_AS = 1), EVENT_IDX (bit 29, VIRTIO 1.2 §6) and bit 32, so both 32-bit halves of the
 * feature word cross the wire: 0b11 | 1 << 29 | 1 << 32 = 0x1_2000_0003.
 */
const OFFERED = 0x1_2000_0003n;
const REQUIREMENTS: VhostConformanceRequirements = Object.freeze({ queues: 2, queueSize: 64, bufferSize: 512 });
/** Queue 0 carries device → peer data (getOutbuf), queue 1 peer → device data (getInbuf), as vhost rpmsg's two queues. */
const TO_PEER = 0;
const FROM_PEER = 1;

/** Options of {@link describeVhostTransportConformance}. @public */
export interface VhostConformanceOptions {
  /** Buffers per round trip. Default 1000. */
  readonly buffers?: number;
  /** Seed of the buffer sizes. Default 1. */
  readonly seed?: number;
}

interface Rig {
  readonly h: VhostTransportHarness;
  readonly peer: VhostTransportPeer;
  readonly device: VhostDevice;
  readonly bus: VhostBus;
  readonly events: VhostEventInfo[];
  /** Set per test: what runs when the peer kicks queue q. */
  readonly handlers: Array<((vq: VhostVirtqueue) => void) | undefined>;
  vq(i: number): VhostVirtqueue;
}

/** xorshift32: deterministic sizes without a dependency. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Byte `i` of message `k`: a pattern that differs across messages and offsets. */
function pattern(k: number, i: number): number {
  return (k * 31 + i * 7 + 1) & 0xff;
}

async function makeRig(factory: VhostTransportFactory, cleanups: Array<() => Promise<void>>): Promise<Rig> {
  const h = await factory(REQUIREMENTS);
  const bus = new VhostBus();
  const events: VhostEventInfo[] = [];
  const handlers: Rig['handlers'] = [];
  const driver: VhostDriver = {
    name: 'conformance',
    idTable: [{ vendor: VHOST_DEV_ANY_ID, device: VHOST_DEV_ANY_ID }],
    features: OFFERED,
    async probe(dev) {
      await dev.setFeatures(OFFERED);
      await dev.createVqs(
        Array.from({ length: REQUIREMENTS.queues }, (_, q) => ({
          name: q === TO_PEER ? 'to-peer' : 'from-peer',
          size: REQUIREMENTS.queueSize,
          callback: (vq: VhostVirtqueue) => handlers[q]?.(vq),
        })),
      );
    },
    async remove(dev) {
      await dev.delVqs();
    },
    event(_dev, info) {
      events.push(info);
    },
  };
  await bus.registerDriver(driver);
  if (h.device.id === undefined) h.device.id = { vendor: VHOST_DEV_ANY_ID, device: 7 };
  await bus.registerDevice(h.device);
  cleanups.push(async () => {
    if (h.device.bus === bus) await bus.unregisterDevice(h.device);
    await h.dispose?.();
  });
  expect(h.device.probeError).toBeUndefined();
  return {
    h,
    peer: h.peer,
    device: h.device,
    bus,
    events,
    handlers,
    vq: (i) => h.device.vqs[i]!,
  };
}

/** VIRTIO 1.2 §3.1.1 steps 1–8 from the peer, optionally stopping before DRIVER_OK. */
async function bringUp(r: Rig, features: bigint, opts: { driverOk?: boolean } = {}): Promise<bigint> {
  const p = r.peer;
  await p.reset();
  await p.setStatus(S.ACKNOWLEDGE);
  await p.setStatus(S.ACKNOWLEDGE | S.DRIVER);
  const offered = await p.readDeviceFeatures();
  const accepted = features & offered;
  await p.writeDriverFeatures(accepted);
  const st = await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  expect(st & S.FEATURES_OK, 'FEATURES_OK must stick for offered features (§3.1.1 step 6)').toBe(S.FEATURES_OK);
  const eventIdx = ((accepted >> EVENT_IDX) & 1n) === 1n;
  for (let q = 0; q < REQUIREMENTS.queues; q++) await p.activateQueue(q, { eventIdx });
  if (opts.driverOk !== false) await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  return accepted;
}

/** The device drains FROM_PEER: each chain is checked against `sizes` and the pattern, then returned with len 0. */
function drainInbound(r: Rig, sizes: number[], state: { received: number; errors: string[] }): void {
  const riov = new VringIov(8);
  const buf = new Uint8Array(REQUIREMENTS.bufferSize);
  r.handlers[FROM_PEER] = (vq) => {
    for (;;) {
      vq.disableCb();
      let head: number;
      while ((head = vq.getInbuf(riov)) >= 0) {
        const k = state.received++;
        const n = riov.totalLen;
        if (n !== sizes[k]) state.errors.push(`message ${k}: ${n} bytes, expected ${sizes[k]}`);
        const got = vq.pull(riov, buf, 0, Math.min(n, buf.length));
        for (let i = 0; i < got; i++) {
          if (buf[i] !== pattern(k, i)) {
            state.errors.push(`message ${k} byte ${i}: ${buf[i]} expected ${pattern(k, i)}`);
            break;
          }
        }
        vq.putBuf(head, 0);
      }
      vq.notify();
      if (vq.enableCb()) return;
    }
  };
}

/**
 * Registers a vitest suite that checks a vhost transport against the contract of
 * `VhostConfigOps` and the RFC's device model. `factory` is called
 * once per test for a fresh {@link VhostTransportHarness}: the transport's device (not
 * yet registered) and a handle on the far-end driver ({@link VhostTransportPeer}).
 *
 * The suite registers the device on its own bus with a driver that offers features
 * 0x1_2000_0003 (bits 0, 1, EVENT_IDX 29 and 32) and creates two queues of 64
 * descriptors, then checks: features published and read back by the peer;
 * FINALIZE_FEATURES delivering a subset of the offer and refusing more (FEATURES_OK
 * does not stick); SET_STATUS / FINALIZE_FEATURES / RESET reaching the driver in
 * order; no ring touched before DRIVER_OK; createVqs / delVqs as the peer sees them;
 * reads and writes of peer memory with out-of-range access as `BUS_ERROR`; 1,000
 * buffers of random sizes each way (getInbuf / putBuf and getOutbuf / putBuf) with
 * EVENT_IDX on and off; and a reset in the middle of traffic.
 *
 * @public
 */
export function describeVhostTransportConformance(name: string, factory: VhostTransportFactory, options: VhostConformanceOptions = {}): void {
  const count = options.buffers ?? 1000;
  const seed = options.seed ?? 1;

  describe(`vhost transport conformance: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('patch 3 / ntb_dev_ops_is_valid: the transport ops pass registration-time validation', async () => {
      const r = await makeRig(factory, cleanups);
      expect(() => validateVhostConfigOps(r.device.ops)).not.toThrow();
      expect(r.device.name).toMatch(/^vhost\d+$/);
    });

    it('patch 1: the features the device offers are published and the peer reads them back', async () => {
      const r = await makeRig(factory, cleanups);
      expect(r.device.offeredFeatures).toBe(OFFERED);
      expect(await r.peer.readDeviceFeatures()).toBe(OFFERED);
    });

    it('patch 3: FINALIZE_FEATURES delivers the driver features, a subset of the offer', async () => {
      const r = await makeRig(factory, cleanups);
      // The peer drops bit 1: 0x1_2000_0003 & ~0b10 = 0x1_2000_0001.
      const accepted = await bringUp(r, OFFERED & ~2n);
      expect(accepted).toBe(0x1_2000_0001n);
      expect(r.device.features).toBe(0x1_2000_0001n);
      expect(r.device.hasFeature(0)).toBe(true);
      expect(r.device.hasFeature(1)).toBe(false);
      expect(r.device.hasFeature(32)).toBe(true);
      const fin = r.events.filter((e) => e.event === VHOST_NOTIFY.FINALIZE_FEATURES);
      expect(fin.map((e) => e.features)).toEqual([0x1_2000_0001n]);
    });

    it('§3.1.1 step 6: features the device did not offer are refused and FEATURES_OK does not stick', async () => {
      const r = await makeRig(factory, cleanups);
      const p = r.peer;
      await p.reset();
      await p.setStatus(S.ACKNOWLEDGE);
      await p.setStatus(S.ACKNOWLEDGE | S.DRIVER);
      // Bit 5 was not offered: 0x1_2000_0003 | 0x20.
      await p.writeDriverFeatures(OFFERED | 0x20n);
      // A transport may report FINALIZE_FEATURES as the features are written or just
      // before the SET_STATUS carrying FEATURES_OK (README, "For transport authors"), so
      // the refusal is checked once FEATURES_OK was asked for.
      const st = await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
      expect(r.device.features).toBe(0n);
      expect(r.device.lastError?.code).toBe('FEATURES_NOT_OFFERED');
      expect(st & S.FEATURES_OK).toBe(0);
      expect(r.device.status & S.FEATURES_OK).toBe(0);
      expect(r.events.some((e) => e.event === VHOST_NOTIFY.FINALIZE_FEATURES)).toBe(false);
      // A reset and an honest negotiation work afterwards.
      expect(await bringUp(r, OFFERED)).toBe(OFFERED);
      expect(r.device.isReady).toBe(true);
    });

    it('patch 3: SET_STATUS, FINALIZE_FEATURES and RESET reach the driver in order', async () => {
      const r = await makeRig(factory, cleanups);
      await bringUp(r, OFFERED);
      await r.peer.reset();
      const A = S.ACKNOWLEDGE;
      const D = S.DRIVER;
      const F = S.FEATURES_OK;
      const OK = S.DRIVER_OK;
      expect(r.events.map((e) => [e.event, e.status])).toEqual([
        [VHOST_NOTIFY.RESET, 0],
        [VHOST_NOTIFY.SET_STATUS, A],
        [VHOST_NOTIFY.SET_STATUS, A | D],
        [VHOST_NOTIFY.FINALIZE_FEATURES, A | D],
        [VHOST_NOTIFY.SET_STATUS, A | D | F],
        [VHOST_NOTIFY.SET_STATUS, A | D | F | OK],
        [VHOST_NOTIFY.RESET, 0],
      ]);
      // The RFC's endpoint left the status stale after RESET; core clears it.
      expect(await r.peer.getStatus()).toBe(0);
      expect(r.device.features).toBe(0n);
    });

    it('RFC §3: the device touches no ring before DRIVER_OK', async () => {
      const r = await makeRig(factory, cleanups);
      let callbacks = 0;
      r.handlers[TO_PEER] = () => void callbacks++;
      r.handlers[FROM_PEER] = () => void callbacks++;
      await bringUp(r, OFFERED & ~(1n << EVENT_IDX), { driverOk: false });
      const p = r.peer;
      for (let k = 0; k < 3; k++) {
        expect(p.addOutbuf(FROM_PEER, new Uint8Array([k, k, k]))).toBe(true);
        expect(p.addInbuf(TO_PEER, 64)).toBe(true);
      }
      // A hostile peer kicks before DRIVER_OK (§3.1.1 forbids it).
      await p.kick(FROM_PEER);
      await p.kick(TO_PEER);
      const before = [p.readRing(TO_PEER), p.readRing(FROM_PEER)];
      const riov = new VringIov(4);
      const wiov = new VringIov(4);
      const inq = r.vq(FROM_PEER);
      const outq = r.vq(TO_PEER);
      expect(inq.isReady).toBe(false);
      expect(inq.getInbuf(riov)).toBe(-1);
      expect(outq.getOutbuf(wiov)).toBe(-1);
      expect(inq.hasAvail()).toBe(false);
      inq.disableCb();
      expect(inq.enableCb()).toBe(true);
      expect(inq.notify()).toBe(false);
      expect(() => inq.putBuf(0, 0)).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
      expect(() => inq.pull(riov, new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
      expect(() => outq.push(wiov, new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
      await p.settle();
      expect(callbacks).toBe(0);
      expect(p.readRing(TO_PEER)).toEqual(before[0]);
      expect(p.readRing(FROM_PEER)).toEqual(before[1]);
      // DRIVER_OK: the same buffers are now there for the device.
      await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
      expect(inq.isReady).toBe(true);
      const head = inq.getInbuf(riov);
      expect(head).toBeGreaterThanOrEqual(0);
      const got = new Uint8Array(3);
      expect(inq.pull(riov, got)).toBe(3);
      expect([...got]).toEqual([0, 0, 0]);
      inq.putBuf(head, 0);
      expect(outq.getOutbuf(wiov)).toBeGreaterThanOrEqual(0);
    });

    it('patch 3: createVqs publishes the queues to the peer and delVqs withdraws them', async () => {
      const r = await makeRig(factory, cleanups);
      expect(r.device.vqs.map((v) => v.num)).toEqual([REQUIREMENTS.queueSize, REQUIREMENTS.queueSize]);
      expect(await r.peer.queueSize(0)).toBe(REQUIREMENTS.queueSize);
      expect(await r.peer.queueSize(1)).toBe(REQUIREMENTS.queueSize);
      await r.device.delVqs();
      expect(r.device.vqs).toEqual([]);
      expect(await r.peer.queueSize(0)).toBe(0);
      expect(await r.peer.queueSize(1)).toBe(0);
      const vqs = await r.device.createVqs([{ name: 'again', size: 16 }]);
      expect(vqs.map((v) => [v.index, v.num])).toEqual([[0, 16]]);
      expect(await r.peer.queueSize(0)).toBe(16);
    });

    it('patch 3 vhost_read / vhost_write: peer memory is read and written; out of range is BUS_ERROR', async () => {
      const r = await makeRig(factory, cleanups);
      const p = r.peer;
      const addr = p.alloc(64);
      p.writeMemory(addr, Uint8Array.from({ length: 64 }, (_, i) => i ^ 0x5a));
      const dst = new Uint8Array(16);
      await r.device.read(dst, addr + 8);
      expect([...dst]).toEqual(Array.from({ length: 16 }, (_, i) => (i + 8) ^ 0x5a));
      await r.device.write(addr + 32, Uint8Array.of(1, 2, 3, 4));
      expect([...p.readMemory(addr + 32, 4)]).toEqual([1, 2, 3, 4]);
      const outside = async (f: () => void | Promise<void>) => {
        try {
          await f();
        } catch (e) {
          return e;
        }
        return undefined;
      };
      const e1 = await outside(() => r.device.read(new Uint8Array(8), p.unreachableAddress));
      expect(isVhostError(e1, 'BUS_ERROR')).toBe(true);
      // A range that starts inside and ends outside is refused as a whole.
      const e2 = await outside(() => r.device.write(p.unreachableAddress - 4, new Uint8Array(8)));
      expect(isVhostError(e2, 'BUS_ERROR')).toBe(true);
    });

    for (const eventIdx of [false, true]) {
      it(`patch 5: ${count} buffers of random sizes peer → device via getInbuf / putBuf (EVENT_IDX ${eventIdx ? 'on' : 'off'})`, async () => {
        const r = await makeRig(factory, cleanups);
        await bringUp(r, eventIdx ? OFFERED : OFFERED & ~(1n << EVENT_IDX));
        const next = rng(seed);
        const sizes = Array.from({ length: count }, () => 1 + (next() % REQUIREMENTS.bufferSize));
        const state = { received: 0, errors: [] as string[] };
        drainInbound(r, sizes, state);
        const p = r.peer;
        let sent = 0;
        let used = 0;
        for (let rounds = 0; used < count && rounds < count * 4; rounds++) {
          while (sent < count) {
            const k = sent;
            if (!p.addOutbuf(FROM_PEER, Uint8Array.from({ length: sizes[k]! }, (_, i) => pattern(k, i)))) break;
            sent++;
          }
          await p.kick(FROM_PEER);
          for (let u = p.getUsed(FROM_PEER); u !== undefined; u = p.getUsed(FROM_PEER)) {
            expect(u.len).toBe(0);
            used++;
          }
        }
        expect(state.errors).toEqual([]);
        expect(state.received).toBe(count);
        expect(used).toBe(count);
        const vq = r.vq(FROM_PEER);
        expect(vq.stats.buffers).toBe(count);
        expect(vq.stats.completed).toBe(count);
        expect(vq.stats.callbackErrors).toBe(0);
        expect(p.interrupts(FROM_PEER)).toBeGreaterThanOrEqual(1);
        expect(p.interrupts(FROM_PEER)).toBeLessThanOrEqual(vq.stats.interrupts);
      });

      it(`patch 5: ${count} buffers of random sizes device → peer via getOutbuf / putBuf (EVENT_IDX ${eventIdx ? 'on' : 'off'})`, async () => {
        const r = await makeRig(factory, cleanups);
        await bringUp(r, eventIdx ? OFFERED : OFFERED & ~(1n << EVENT_IDX));
        const next = rng(seed + 1);
        const sizes = Array.from({ length: count }, () => 1 + (next() % REQUIREMENTS.bufferSize));
        const wiov = new VringIov(8);
        const msg = new Uint8Array(REQUIREMENTS.bufferSize);
        let produced = 0;
        const errors: string[] = [];
        r.handlers[TO_PEER] = (vq) => {
          for (;;) {
            while (produced < count) {
              const head = vq.getOutbuf(wiov);
              if (head < 0) break;
              const k = produced++;
              const n = sizes[k]!;
              if (wiov.totalLen < n) errors.push(`buffer for message ${k} has ${wiov.totalLen} bytes, need ${n}`);
              for (let i = 0; i < n; i++) msg[i] = pattern(k, i);
              const pushed = vq.push(wiov, msg, 0, n);
              vq.putBuf(head, pushed);
            }
            vq.notify();
            if (produced >= count || vq.enableCb()) return;
          }
        };
        const p = r.peer;
        let received = 0;
        for (let rounds = 0; received < count && rounds < count * 4; rounds++) {
          while (p.addInbuf(TO_PEER, REQUIREMENTS.bufferSize)) {
            // fill the ring
          }
          await p.kick(TO_PEER);
          for (let u = p.getUsed(TO_PEER); u !== undefined; u = p.getUsed(TO_PEER)) {
            const k = received++;
            expect(u.len).toBe(sizes[k]);
            for (let i = 0; i < u.len; i++) {
              if (u.data[i] !== pattern(k, i)) {
                errors.push(`message ${k} byte ${i}: ${u.data[i]} expected ${pattern(k, i)}`);
                break;
              }
            }
          }
        }
        expect(errors).toEqual([]);
        expect(received).toBe(count);
        const vq = r.vq(TO_PEER);
        expect(vq.stats.completed).toBe(count);
        expect(p.interrupts(TO_PEER)).toBeGreaterThanOrEqual(1);
        expect(p.interrupts(TO_PEER)).toBeLessThanOrEqual(vq.stats.interrupts);
      });
    }

    it('patch 3 NOTIFY_RESET: a reset in the middle of traffic quiets the queues; a new bring-up works', async () => {
      const r = await makeRig(factory, cleanups);
      await bringUp(r, OFFERED);
      const riov = new VringIov(4);
      const held: number[] = [];
      r.handlers[FROM_PEER] = (vq) => {
        // Take three chains and keep them: the reset comes before they are returned.
        for (let k = 0; k < 3; k++) {
          const h = vq.getInbuf(riov);
          if (h >= 0) held.push(h);
        }
      };
      const p = r.peer;
      for (let k = 0; k < 8; k++) expect(p.addOutbuf(FROM_PEER, new Uint8Array([k]))).toBe(true);
      await p.kick(FROM_PEER);
      expect(held.length).toBe(3);
      await p.reset();
      const vq = r.vq(FROM_PEER);
      expect(r.events.at(-1)?.event).toBe(VHOST_NOTIFY.RESET);
      expect(r.device.isReady).toBe(false);
      expect(vq.isReady).toBe(false);
      expect(vq.isAttached).toBe(false);
      expect(vq.getInbuf(riov)).toBe(-1);
      expect(() => vq.putBuf(held[0]!, 0)).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
      expect(r.device.status).toBe(0);
      expect(await p.getStatus()).toBe(0);
      // Bring the device up again and move 50 buffers.
      r.handlers[FROM_PEER] = undefined;
      await bringUp(r, OFFERED);
      const sizes = Array.from({ length: 50 }, (_, k) => 1 + ((k * 37) % REQUIREMENTS.bufferSize));
      const state = { received: 0, errors: [] as string[] };
      drainInbound(r, sizes, state);
      let sent = 0;
      let used = 0;
      for (let rounds = 0; used < 50 && rounds < 200; rounds++) {
        while (sent < 50) {
          const k = sent;
          if (!p.addOutbuf(FROM_PEER, Uint8Array.from({ length: sizes[k]! }, (_, i) => pattern(k, i)))) break;
          sent++;
        }
        await p.kick(FROM_PEER);
        while (p.getUsed(FROM_PEER) !== undefined) used++;
      }
      expect(state.errors).toEqual([]);
      expect(state.received).toBe(50);
      expect(used).toBe(50);
    });
  });
}
