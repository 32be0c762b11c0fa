import { describe, expect, it } from 'vitest';
import {
  CORE_TRANSPORT_FEATURES,
  VIRTIO_BUFFER_ALIGN,
  VIRTIO_CONFIG_S,
  VIRTIO_F,
  VirtioBus,
  VirtioDevice,
  checkVirtioConfigOps,
  isVirtioError,
  type VirtioBuffer,
  type VirtioBusEvent,
  type VirtioBusOptions,
  type VirtioConfigOps,
  type VirtioDeviceId,
} from '@x/virtio-core';
import { EchoDriver, type EchoDriverOptions } from './echo-driver.js';

/**
 * What a conformance factory returns: a fresh transport under test, bound to one
 * device, with a cooperating far end.
 *
 * @public
 */
export interface VirtioTransportUnderTest {
  /** The transport's ops for one device. */
  readonly ops: VirtioConfigOps;
  /** The device's identity, as the transport discovered it. */
  readonly id: VirtioDeviceId;
  /**
   * The far end is an echo device on two queues, as rpmsg uses them: queue 0 (rx) takes
   * device-writable buffers, queue 1 (tx) device-readable ones, and the bytes of each
   * tx buffer come back, in order, in the next rx buffer (truncated to its size). It
   * must offer VERSION_1 and should offer EVENT_IDX and INDIRECT_DESC.
   */
  readonly echo?: true;
  /** Bytes of configuration space to read back (0 or absent: skip that check). */
  readonly configSize?: number;
  /** Tears the transport and its far end down. */
  dispose(): void | Promise<void>;
}

/** Makes a fresh {@link VirtioTransportUnderTest} for each test. @public */
export type VirtioTransportFactory = () => VirtioTransportUnderTest | Promise<VirtioTransportUnderTest>;

/** Options of {@link describeVirtioTransportConformance}. @public */
export interface VirtioTransportConformanceOptions {
  /** Messages per echo round trip. Default 1000. */
  roundTrips?: number;
  /** Per-test time limit in ms (the echo round trips fail with counts when exceeded). Default 30000. */
  timeoutMs?: number;
  /** Options of the bus the suite registers the device on. */
  busOptions?: Omit<VirtioBusOptions, 'onEvent'>;
}

interface Bound {
  readonly target: VirtioTransportUnderTest;
  readonly bus: VirtioBus;
  readonly dev: VirtioDevice;
  readonly drv: EchoDriver;
  readonly events: VirtioBusEvent[];
}

const S = VIRTIO_CONFIG_S;

/**
 * Registers the conformance suite of the `VirtioConfigOps` contract with vitest
 * (`describe` / `it`). A transport author calls it from a test file with a factory that
 * returns a fresh transport and its far end for each test; see
 * {@link VirtioTransportUnderTest} for the contract, including the echo function.
 *
 * The suite checks, through the raw ops and through `VirtioBus`: registration-time
 * validation; 64-bit features stable across reads and resets; the status byte round
 * trip and reset to 0; the FEATURES_OK handshake; findVqs sizes, indices, names and
 * notify; delVqs and queues made again; config reads around the generation counter;
 * allocBuffer / freeBuffer (the op or core's fallback): distinct, aligned, reachable,
 * reused after free; and, with `echo`, 1,000 buffers of random sizes round trip intact
 * with EVENT_IDX on and off, and a reset with buffers in flight followed by a working
 * re-initialisation.
 *
 * @public
 */
export function describeVirtioTransportConformance(
  name: string,
  factory: VirtioTransportFactory,
  options: VirtioTransportConformanceOptions = {},
): void {
  const roundTrips = options.roundTrips ?? 1000;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const busOptions = options.busOptions ?? {};

  async function withTarget(fn: (t: VirtioTransportUnderTest) => Promise<void>): Promise<void> {
    const t = await factory();
    try {
      await fn(t);
    } finally {
      await t.dispose();
    }
  }

  async function bind(t: VirtioTransportUnderTest, drvOptions: EchoDriverOptions = {}): Promise<Bound> {
    const events: VirtioBusEvent[] = [];
    const bus = new VirtioBus({ ...busOptions, onEvent: (e) => events.push(e) });
    const dev = new VirtioDevice({ id: t.id, ops: t.ops, name: 'conformance' });
    await bus.registerDevice(dev);
    const drv = new EchoDriver('conformance-echo', t.id, drvOptions);
    await bus.registerDriver(drv);
    if (dev.driver !== drv) throw dev.lastError ?? new Error('the conformance driver did not bind');
    return { target: t, bus, dev, drv, events };
  }

  async function withBound(drvOptions: EchoDriverOptions, fn: (b: Bound) => Promise<void>): Promise<void> {
    await withTarget(async (t) => {
      const b = await bind(t, drvOptions);
      try {
        await fn(b);
      } finally {
        await b.bus.unregisterDevice(b.dev);
      }
      const errors = b.events.filter((e) => e.type === 'error' || e.type === 'probe-failed');
      expect(errors, 'bus reported errors').toEqual([]);
    });
  }

  describe(`VirtioConfigOps conformance: ${name}`, () => {
    it('ops pass registration-time validation (Linux ntb_dev_ops_is_valid)', async () => {
      await withTarget(async (t) => {
        expect(() => checkVirtioConfigOps(t.ops)).not.toThrow();
        expect(t.id.device).toBeGreaterThan(0);
      });
    });

    it('getFeatures: a 64-bit bigint, the same on every read and across a reset (§2.2)', async () => {
      await withTarget(async (t) => {
        await t.ops.reset();
        const a = await t.ops.getFeatures();
        const b = await t.ops.getFeatures();
        await t.ops.reset();
        const c = await t.ops.getFeatures();
        expect(typeof a).toBe('bigint');
        expect(a >= 0n && a < 1n << 64n).toBe(true);
        expect(b).toBe(a);
        expect(c).toBe(a);
        // An echo far end must offer VERSION_1, bit 32: the high feature word is carried.
        if (t.echo === true) expect((a >> 32n) & 1n).toBe(1n);
      });
    });

    it('status: each step of §3.1.1 reads back, and reset() reads 0 (§2.1)', async () => {
      await withTarget(async (t) => {
        await t.ops.reset();
        expect(await t.ops.getStatus()).toBe(0);
        await t.ops.setStatus(S.ACKNOWLEDGE);
        expect((await t.ops.getStatus()) & ~S.NEEDS_RESET).toBe(S.ACKNOWLEDGE);
        await t.ops.setStatus(S.ACKNOWLEDGE | S.DRIVER);
        expect((await t.ops.getStatus()) & ~S.NEEDS_RESET).toBe(S.ACKNOWLEDGE | S.DRIVER);
        await t.ops.reset();
        expect(await t.ops.getStatus()).toBe(0);
      });
    });

    it('FEATURES_OK handshake: the device keeps FEATURES_OK for a subset it offered (§3.1.1 steps 4-6)', async () => {
      await withTarget(async (t) => {
        await t.ops.reset();
        await t.ops.setStatus(S.ACKNOWLEDGE);
        await t.ops.setStatus(S.ACKNOWLEDGE | S.DRIVER);
        const offered = await t.ops.getFeatures();
        await t.ops.finalizeFeatures(offered & CORE_TRANSPORT_FEATURES);
        await t.ops.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
        expect((await t.ops.getStatus()) & S.FEATURES_OK).toBe(S.FEATURES_OK);
        await t.ops.reset();
        expect(await t.ops.getStatus()).toBe(0);
      });
      await withBound({}, async ({ dev }) => {
        expect(dev.status).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
        expect((await dev.readStatus()) & 0x0f).toBe(0x0f);
        expect(dev.features & ~dev.deviceFeatures).toBe(0n);
      });
    });

    it('findVqs: sizes, indices and names as asked; notify does not break the queue (§2.7, §4)', async () => {
      await withTarget(async (t) => {
        const bus = new VirtioBus(busOptions);
        const dev = new VirtioDevice({ id: t.id, ops: t.ops });
        await bus.registerDevice(dev);
        const seen: number[] = [];
        await bus.registerDriver({
          name: 'conformance-sizes',
          idTable: [t.id],
          featureTable: [],
          probe: async (d) => {
            const vqs = await d.findVqs([{ name: 'small', size: 8 }, { name: 'default' }]);
            for (const vq of vqs) seen.push(vq.num);
            expect(vqs.map((q) => q.index)).toEqual([0, 1]);
            expect(vqs.map((q) => q.name)).toEqual(['small', 'default']);
            const buf = await d.allocBuffer(64);
            expect(vqs[0]!.addInbuf(buf.addr, 64, buf)).toBe(true);
            await d.ready();
            expect(vqs[0]!.kick()).toBe(true);
            expect(vqs[0]!.isBroken).toBe(false);
          },
          remove: async (d) => {
            await d.reset();
            for (const vq of d.vqs ?? []) while (vq.detachUnusedBuf() !== undefined);
            await d.delVqs();
          },
        });
        expect(dev.lastError).toBeUndefined();
        expect(seen).toHaveLength(2);
        expect(seen[0]).toBeLessThanOrEqual(8);
        for (const n of seen) expect(n > 0 && (n & (n - 1)) === 0).toBe(true);
        await bus.unregisterDevice(dev);
      });
    });

    it('delVqs, then queues are made again on the next probe', async () => {
      await withTarget(async (t) => {
        const b = await bind(t);
        const first = b.dev.vqs;
        await b.bus.unregisterDriver(b.drv);
        expect(b.dev.vqs).toBeUndefined();
        expect(b.drv.removed).toBe(1);
        const again = new EchoDriver('conformance-echo-2', t.id);
        await b.bus.registerDriver(again);
        expect(b.dev.lastError).toBeUndefined();
        expect(b.dev.vqs).toHaveLength(2);
        expect(b.dev.vqs).not.toBe(first);
        await b.bus.unregisterDevice(b.dev);
      });
    });

    it('config: reads hold still around the generation counter (§2.5.1, §4.1.4.3)', async () => {
      await withBound({}, async ({ target, dev }) => {
        if (target.ops.generation !== undefined) {
          const g1 = await target.ops.generation();
          const g2 = await target.ops.generation();
          expect(typeof g1).toBe('number');
          expect(g2).toBe(g1);
        }
        const n = target.configSize ?? 0;
        if (n > 0) {
          const a = await dev.readConfig(0, n);
          const b = await dev.readConfig(0, n);
          expect([...b]).toEqual([...a]);
        }
      });
    });

    it('allocBuffer / freeBuffer (RFC patch 12, or core fallback): distinct, aligned, reachable, reused after free', async () => {
      await withBound({ rxBuffers: 1, txBuffers: 1 }, async ({ target, dev }) => {
        const sizes = [1, 16, 100, 512, 4096, 3, 64, 1000];
        const bufs: VirtioBuffer[] = [];
        for (const s of sizes) bufs.push(await dev.allocBuffer(s));
        bufs.forEach((b, i) => {
          expect(b.addr % VIRTIO_BUFFER_ALIGN).toBe(0);
          expect(b.size).toBe(sizes[i]);
          expect(b.view.length).toBe(sizes[i]);
          b.view.fill(i + 1);
        });
        const sorted = [...bufs].sort((x, y) => x.addr - y.addr);
        for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.addr).toBeGreaterThanOrEqual(sorted[i - 1]!.addr + sorted[i - 1]!.size);
        bufs.forEach((b, i) => expect(b.view.every((x) => x === i + 1)).toBe(true));
        const region = target.ops.dmaRegion;
        if (target.ops.allocBuffer === undefined && region !== undefined) {
          // Reachable: the bytes written through the view are at the bus address.
          for (const [i, b] of bufs.entries()) {
            const back = new Uint8Array(b.size);
            region.memory.read(b.addr, back);
            expect(back.every((x) => x === i + 1)).toBe(true);
          }
        }
        for (const b of bufs) await dev.freeBuffer(b);
        await expect(dev.freeBuffer(bufs[0]!)).rejects.toSatisfy((e: unknown) => isVirtioError(e, 'BAD_BUFFER'));
        // Reused: far more bytes than a small window holds go through alloc/free.
        for (let i = 0; i < 2000; i++) await dev.freeBuffer(await dev.allocBuffer(4096));
      });
    });

    it('echo: 1,000 buffers of random sizes round trip intact with EVENT_IDX on (§2.7.7, §2.7.10)', { timeout: timeoutMs + 5000 }, async (ctx) => {
      await withTarget(async (t) => {
        if (t.echo !== true) return ctx.skip();
        const b = await bind(t);
        try {
          if (!b.dev.hasFeature(VIRTIO_F.EVENT_IDX)) return ctx.skip();
          await b.drv.roundTrip(roundTrips, 0x5eed_0001, timeoutMs);
          expect(b.drv.error).toBeUndefined();
        } finally {
          await b.bus.unregisterDevice(b.dev);
        }
      });
    });

    it('echo: 1,000 buffers of random sizes round trip intact with EVENT_IDX off (§2.7.7)', { timeout: timeoutMs + 5000 }, async (ctx) => {
      await withTarget(async (t) => {
        if (t.echo !== true) return ctx.skip();
        const b = await bind(t, { dropEventIdx: true });
        try {
          expect(b.dev.hasFeature(VIRTIO_F.EVENT_IDX)).toBe(false);
          await b.drv.roundTrip(roundTrips, 0x5eed_0002, timeoutMs);
          expect(b.drv.error).toBeUndefined();
        } finally {
          await b.bus.unregisterDevice(b.dev);
        }
      });
    });

    it('reset with buffers in flight, then re-initialisation works (§3.1.1, §2.1)', { timeout: timeoutMs + 5000 }, async () => {
      await withTarget(async (t) => {
        // Fewer rx buffers than tx buffers, so some tx buffers stay in flight.
        const b = await bind(t, { rxBuffers: 8, txBuffers: 16 });
        const { dev, drv, bus } = b;
        if (t.echo === true) {
          drv.repost = false;
          const sent = drv.sendOnly(16);
          const expected = Math.min(sent, drv.rxPosted);
          const deadline = Date.now() + timeoutMs;
          while (drv.received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
          expect(drv.received).toBe(expected);
        }
        expect(dev.vqs!.some((q) => q.pending > 0)).toBe(true);
        await dev.reset();
        expect(await dev.readStatus()).toBe(0);
        await bus.unregisterDriver(drv);
        expect(dev.status).toBe(S.ACKNOWLEDGE);
        const again = new EchoDriver('conformance-echo-again', t.id);
        await bus.registerDriver(again);
        expect(dev.lastError).toBeUndefined();
        expect(dev.status).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
        if (t.echo === true) await again.roundTrip(50, 0x5eed_0003, timeoutMs);
        await bus.unregisterDevice(dev);
        expect(b.events.filter((e) => e.type === 'error' || e.type === 'probe-failed')).toEqual([]);
      });
    });
  });
}
