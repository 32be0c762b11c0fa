import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { VIRTQ_USED } from '@x/vring';
import { VirtioBus, isVirtioError, type VirtioBusEvent } from '@x/virtio-core';
import { VhostBus } from '@x/vhost-core';
import {
  LOOPBACK_DOORBELL as DB,
  VIRTIO_MMIO as R,
  VIRTIO_MMIO_MAGIC,
  attachVhost,
  attachVirtio,
  createLoopbackLink,
  isLoopbackError,
  openVirtio,
  type LoopbackLink,
} from '@x/transport-loopback';
import { VhostEchoDriver } from '@x/transport-loopback/testing';
import { EchoClient, message } from './helpers.js';

/**
 * A device side written by hand on the raw bytes (no @x/vhost-core): it claims the
 * link, sets whatever registers it likes, and — if `onWrite` is given — acknowledges
 * every register write after `onWrite` scribbled on the register block.
 */
class RawDevice {
  readonly i32: Int32Array;
  readonly dv: DataView;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(link: LoopbackLink, regs: Partial<Record<keyof typeof R, number>>, onWrite?: (off: number, dev: RawDevice) => void) {
    this.i32 = new Int32Array(link.regs);
    this.dv = new DataView(link.regs);
    for (const [k, v] of Object.entries(regs)) this.set(R[k as keyof typeof R], v);
    this.db(DB.DEVICE_ATTACHED, 1);
    Atomics.add(this.i32, (DB.PAGE >> 2) + DB.PRESENCE, 1);
    Atomics.notify(this.i32, (DB.PAGE >> 2) + DB.PRESENCE);
    if (onWrite !== undefined) this.#loop = this.#run(onWrite);
  }

  set(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, true);
  }
  get(off: number): number {
    return this.dv.getUint32(off, true);
  }
  db(w: number, v?: number): number {
    if (v !== undefined) Atomics.store(this.i32, (DB.PAGE >> 2) + w, v);
    return Atomics.load(this.i32, (DB.PAGE >> 2) + w);
  }
  raise(bits: number): void {
    this.set(R.INTERRUPT_STATUS, this.get(R.INTERRUPT_STATUS) | bits);
    Atomics.add(this.i32, (DB.PAGE >> 2) + DB.IRQ, 1);
    Atomics.notify(this.i32, (DB.PAGE >> 2) + DB.IRQ);
  }

  async #run(onWrite: (off: number, dev: RawDevice) => void): Promise<void> {
    const w = (DB.PAGE >> 2) + DB.DEVICE;
    let acked = this.db(DB.REG_SEQ);
    while (!this.#stopped) {
      const seen = Atomics.load(this.i32, w);
      const seq = this.db(DB.REG_SEQ);
      if (seq !== acked) {
        onWrite(this.db(DB.REG_OFFSET), this);
        acked = seq;
        this.db(DB.REG_ACK, seq);
        Atomics.notify(this.i32, (DB.PAGE >> 2) + DB.REG_ACK);
      }
      const r = (Atomics as unknown as { waitAsync: (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: unknown } }).waitAsync(this.i32, w, seen, 20);
      if (r.async) await r.value;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.db(DB.DEVICE_ATTACHED, 0);
    Atomics.notify(this.i32, (DB.PAGE >> 2) + DB.DEVICE);
    await this.#loop;
  }
}

const GOOD = { MAGIC_VALUE: VIRTIO_MMIO_MAGIC, VERSION: 2, DEVICE_ID: 7, VENDOR_ID: 0x1af4 };
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a hostile or absent device side: typed errors, bounded waits, no hang', () => {
  it('no device ever attaches: openVirtio fails with TIMEOUT, or ABORTED when the signal fires', async () => {
    const link = createLoopbackLink({ deviceId: 7 });
    await expect(openVirtio(link, { attachTimeoutMs: 30 })).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'TIMEOUT'));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('user gave up')), 20).unref();
    await expect(openVirtio(link, { attachTimeoutMs: 10_000, signal: ac.signal })).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'ABORTED'));
    // A failed attach releases the link for the next driver.
    await expect(openVirtio(link, { attachTimeoutMs: 10 })).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'TIMEOUT'));
  });

  it('§4.2.2: MagicValue other than 0x74726976 is BAD_MAGIC; Version other than 2 is BAD_VERSION', async () => {
    // "virt" written big-endian by mistake: 76 69 72 74 read as LE is 0x74726976; BE gives 0x76697274.
    const a = createLoopbackLink({ deviceId: 7 });
    new RawDevice(a, { ...GOOD, MAGIC_VALUE: 0x76697274 });
    await expect(openVirtio(a, { attachTimeoutMs: 100 })).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'BAD_MAGIC'));
    const b = createLoopbackLink({ deviceId: 7 });
    new RawDevice(b, { ...GOOD, VERSION: 1 });
    await expect(openVirtio(b, { attachTimeoutMs: 100 })).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'BAD_VERSION'));
  });

  it('a device that never acknowledges a register write: each op fails with TIMEOUT after timeoutMs', async () => {
    const link = createLoopbackLink({ deviceId: 7 });
    const dev = new RawDevice(link, GOOD);
    const t = await openVirtio(link, { timeoutMs: 30 });
    cleanups.push(() => t.close());
    await expect(Promise.resolve(t.ops.setStatus(1))).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'TIMEOUT'));
    await expect(Promise.resolve(t.ops.getFeatures())).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'TIMEOUT'));
    // Through virtio core: registration resets the device; the TIMEOUT arrives as a typed error.
    const bus = new VirtioBus({ opTimeoutMs: 1000 });
    const err = await bus.registerDevice(t.createDevice()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isVirtioError(err)).toBe(true);
    expect(isLoopbackError((err as Error).cause, 'TIMEOUT')).toBe(true);
    await dev.stop();
  });

  it('a device that detaches while a write waits: NO_DEVICE at once, not a timeout', async () => {
    const link = createLoopbackLink({ deviceId: 7 });
    const dev = new RawDevice(link, GOOD);
    const t = await openVirtio(link, { timeoutMs: 60_000 });
    cleanups.push(() => t.close());
    const pending = Promise.resolve(t.ops.setStatus(1)).catch((e: unknown) => e);
    setTimeout(() => void dev.stop(), 10).unref();
    expect(isLoopbackError(await pending, 'NO_DEVICE')).toBe(true);
    await expect(Promise.resolve(t.ops.reset())).rejects.toSatisfy((e: unknown) => isLoopbackError(e, 'NO_DEVICE'));
  });

  it('§4.2.3.2: impossible queue registers are typed errors (QueueNumMax 0, above 32768, QueueReady live before setup, ready refused)', async () => {
    const cases: Array<[string, (off: number, d: RawDevice) => void, string]> = [
      ['no queue', (off, d) => off === R.QUEUE_SEL && d.set(R.QUEUE_NUM_MAX, 0), 'NO_QUEUE'],
      ['QueueNumMax 65536', (off, d) => off === R.QUEUE_SEL && d.set(R.QUEUE_NUM_MAX, 65536), 'BAD_REGISTER'],
      [
        'live before setup',
        (off, d) => {
          if (off === R.QUEUE_SEL) {
            d.set(R.QUEUE_NUM_MAX, 16);
            d.set(R.QUEUE_READY, 1);
          }
        },
        'BAD_REGISTER',
      ],
      [
        'ready refused',
        (off, d) => {
          if (off === R.QUEUE_SEL) d.set(R.QUEUE_NUM_MAX, 16);
          if (off === R.QUEUE_READY) d.set(R.QUEUE_READY, 0);
        },
        'QUEUE_REFUSED',
      ],
    ];
    for (const [what, onWrite, code] of cases) {
      const link = createLoopbackLink({ deviceId: 7 });
      const dev = new RawDevice(link, GOOD, onWrite);
      const t = await openVirtio(link, { timeoutMs: 1000 });
      const e = await t.setupVq(0, { name: 'q' }, { eventIdx: false, indirect: false }).catch((x: unknown) => x);
      expect(isLoopbackError(e, code as never), `${what}: ${String(e)}`).toBe(true);
      // The ring memory was given back: the whole region is free again.
      const big = t.allocBuffer(link.memory.byteLength);
      t.freeBuffer(big);
      await t.close();
      await dev.stop();
    }
  });

  it('an interrupt storm with garbage InterruptStatus bits: handled in bounded turns, timers still run', async () => {
    const link = createLoopbackLink({ deviceId: 7 });
    const dev = new RawDevice(link, GOOD);
    const t = await openVirtio(link);
    cleanups.push(async () => {
      await t.close();
      await dev.stop();
    });
    let timerRan = false;
    setTimeout(() => (timerRan = true), 5).unref();
    const until = Date.now() + 50;
    let raised = 0;
    while (Date.now() < until) {
      for (let i = 0; i < 1000; i++) dev.raise(0xffff_ffff);
      raised += 1000;
      await new Promise((r) => setImmediate(r));
    }
    await t.settle(5000);
    expect(timerRan).toBe(true);
    expect(t.stats.interrupts).toBeGreaterThan(0);
    expect(t.stats.interrupts).toBeLessThanOrEqual(raised);
  });

  it('garbage in the used ring (§2.7.8): the queue breaks with a VringError, the link and the other queue live on', async () => {
    const link = createLoopbackLink({ deviceId: 7 });
    const vhostBus = new VhostBus();
    await vhostBus.registerDriver(new VhostEchoDriver({ deviceId: 7 }));
    const vhost = await attachVhost(link, vhostBus);
    const bus = new VirtioBus();
    const client = new EchoClient(7);
    await bus.registerDriver(client);
    const virtio = await attachVirtio(link, bus);
    cleanups.push(async () => {
      await virtio.close();
      await vhost.close();
    });
    await client.echo([message(1)]);
    // The device side (this test, on the raw bytes) moves rx used.idx by 1000 > queue size.
    const rx = client.rx!;
    const usedIdx = rx.layout.used + VIRTQ_USED.IDX;
    const cur = virtio.memory.read16(usedIdx);
    virtio.memory.write16(usedIdx, (cur + 1000) & 0xffff);
    new DataView(link.regs).setUint32(R.INTERRUPT_STATUS, 1, true);
    const i32 = new Int32Array(link.regs);
    Atomics.add(i32, (DB.PAGE >> 2) + DB.IRQ, 1);
    Atomics.notify(i32, (DB.PAGE >> 2) + DB.IRQ);
    await virtio.settle();
    expect(rx.isBroken || client.error !== undefined).toBe(true);
    // The tx queue and the registers still work.
    expect(client.tx!.isBroken).toBe(false);
    expect(await virtio.device!.readStatus()).toBe(0x0f);
  });

  it('fuzz: a device that acknowledges every write but scribbles random values on random registers gives only typed errors (probe, or probe-failed with TRANSPORT / FEATURES_NOT_ACCEPTED / NO_BUFFER_SPACE), never a hang', async () => {
    const offsets = Object.values(R).filter((o) => o < R.CONFIG);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...offsets), fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.constantFrom(0, 1, 2, 8, 16, 256, 0x8000, 0x10000, 0xff))), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        async (scribbles, every) => {
          const link = createLoopbackLink({ deviceId: 7, memorySize: 64 * 1024 });
          let n = 0;
          const ready = new Map<number, number>();
          const dev = new RawDevice(link, { ...GOOD, QUEUE_NUM_MAX: 16, DEVICE_FEATURES: 0xffff_ffff }, (off, d) => {
            // Mostly a plausible device: QueueReady is kept per queue, Status 0 resets.
            if (off === R.QUEUE_SEL) d.set(R.QUEUE_READY, ready.get(d.get(R.QUEUE_SEL)) ?? 0);
            if (off === R.QUEUE_READY) ready.set(d.get(R.QUEUE_SEL), d.get(R.QUEUE_READY));
            if (off === R.STATUS && d.get(R.STATUS) === 0) ready.clear();
            if (++n % every === 0) {
              for (let k = 0; k < 2; k++) {
                const [o, v] = scribbles[(n + k) % scribbles.length]!;
                d.set(o, v);
              }
            }
          });
          const events: VirtioBusEvent[] = [];
          const bus = new VirtioBus({ opTimeoutMs: 2000, onEvent: (e) => events.push(e) });
          await bus.registerDriver(new EchoClient(7));
          try {
            const t = await attachVirtio(link, bus, { timeoutMs: 200, attachTimeoutMs: 200 }).catch((e: unknown) => e);
            if (t instanceof Error || !('close' in (t as object))) {
              expect(isLoopbackError(t) || isVirtioError(t), String(t)).toBe(true);
            } else {
              await (t as { close(): Promise<void> }).close();
            }
            for (const e of events) if ('error' in e) expect(isVirtioError(e.error)).toBe(true);
          } finally {
            await dev.stop();
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
