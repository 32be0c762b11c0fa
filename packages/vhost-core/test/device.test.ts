import { describe, expect, it } from 'vitest';
import { VHOST_NOTIFY, VIRTIO_CONFIG_S as S, VhostBus, VhostDevice, isVhostError, type VhostEventInfo } from '@x/vhost-core';
import { FakeVhostTransport } from '@x/vhost-core/testing';
import { ManualTransport, recordingDriver } from './helpers.js';

const A = S.ACKNOWLEDGE; // 1
const D = S.DRIVER; // 2
const OK = S.DRIVER_OK; // 4
const F = S.FEATURES_OK; // 8

async function manual(offer = 0x3n, hooks: Parameters<typeof recordingDriver>[2] = {}) {
  const t = new ManualTransport();
  const dev = new VhostDevice(t.ops, { id: { vendor: 0x104c, device: 7 }, parent: 'manual' });
  t.device = dev;
  const drv = recordingDriver('rpmsg', undefined, {
    ...hooks,
    probe: async (d) => {
      await d.setFeatures(offer);
      await hooks.probe?.(d);
    },
  });
  const bus = new VhostBus();
  await bus.registerDriver(drv);
  await bus.registerDevice(dev);
  return { t, dev, drv, bus };
}

describe('VIRTIO_CONFIG_S and VHOST_NOTIFY values', () => {
  it('status bits are VIRTIO 1.2 §2.1 / Linux VIRTIO_CONFIG_S_*; events are the RFC enum vhost_notify_event', () => {
    expect(S).toEqual({ ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8, NEEDS_RESET: 64, FAILED: 128 });
    expect(VHOST_NOTIFY).toEqual({ SET_STATUS: 0, FINALIZE_FEATURES: 1, RESET: 2 });
  });
});

describe('features are a property of the device (RFC patch 1)', () => {
  it('setFeatures offers features ∩ config.features and publishes them through the transport', async () => {
    const t = new FakeVhostTransport({ config: { features: 0x1_0000_0001n } });
    const bus = new VhostBus();
    await bus.registerDriver(recordingDriver('rpmsg', undefined, { probe: (d) => d.setFeatures(0x1_0000_0003n) }));
    t.device.id = { vendor: 1, device: 7 };
    await bus.registerDevice(t.device);
    // 0x1_0000_0003 & 0x1_0000_0001 = 0x1_0000_0001: bit 1 is masked by the configuration.
    expect(t.device.offeredFeatures).toBe(0x1_0000_0001n);
    expect(await t.peer.readDeviceFeatures()).toBe(0x1_0000_0001n);
  });

  it('FINALIZE_FEATURES records a subset of the offer as the device features (vdev->features)', async () => {
    const { t, dev, drv } = await manual(0x3n);
    expect(t.published).toBe(0x3n);
    await t.write(A);
    await t.write(A | D);
    expect(await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x2n)).toBeUndefined();
    expect(dev.features).toBe(0x2n);
    expect(dev.hasFeature(1)).toBe(true);
    expect(dev.hasFeature(0)).toBe(false);
    expect(drv.events.at(-1)).toEqual({ event: VHOST_NOTIFY.FINALIZE_FEATURES, status: A | D, features: 0x2n });
    expect(await t.write(A | D | F)).toBeUndefined();
    expect(t.status).toBe(A | D | F);
  });

  it('§2.2.1: features the device did not offer are refused, and FEATURES_OK is cleared again (§3.1.1 step 6)', async () => {
    const { t, dev, drv } = await manual(0x3n);
    await t.write(A);
    await t.write(A | D);
    // 0x7 & ~0x3 = 0x4: bit 2 was not offered.
    const err = await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x7n);
    expect(isVhostError(err, 'FEATURES_NOT_OFFERED')).toBe(true);
    expect(err?.message).toMatch(/include 0x4, which the device did not offer \(offered 0x3/);
    expect(dev.features).toBe(0n);
    expect(drv.events.some((e) => e.event === VHOST_NOTIFY.FINALIZE_FEATURES)).toBe(false);
    const err2 = await t.write(A | D | F);
    expect(err2).toBe(err);
    // The peer re-reads the status: FEATURES_OK did not stick (1 | 2 = 3).
    expect(t.status).toBe(3);
    expect(dev.status).toBe(3);
  });

  it('a driver hook that throws on FINALIZE_FEATURES refuses the features', async () => {
    const cause = new Error('F_AS not negotiated');
    const { t, dev } = await manual(0x3n, {
      event: (_d, info) => {
        if (info.event === VHOST_NOTIFY.FINALIZE_FEATURES && (info.features & 2n) === 0n) throw cause;
      },
    });
    await t.write(A);
    await t.write(A | D);
    const err = await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x1n);
    expect(isVhostError(err, 'DRIVER_ERROR')).toBe(true);
    expect(err?.cause).toBe(cause);
    expect(dev.features).toBe(0n);
    await t.write(A | D | F);
    expect(t.status & F).toBe(0);
  });

  it('features are fixed once the peer set FEATURES_OK: setFeatures and FINALIZE_FEATURES are refused', async () => {
    const { t, dev } = await manual(0x3n);
    await t.write(A);
    await t.write(A | D);
    await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x1n);
    await t.write(A | D | F);
    await expect(dev.setFeatures(0x1n)).rejects.toMatchObject({ code: 'BAD_STATUS' });
    const err = await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x3n);
    expect(err?.code).toBe('BAD_STATUS');
    expect(dev.features).toBe(0x1n);
  });

  it('checks feature arguments: bigint within 64 bits', async () => {
    const { dev } = await manual();
    await expect(dev.setFeatures(1 as never)).rejects.toThrow(TypeError);
    await expect(dev.setFeatures(1n << 64n)).rejects.toThrow(RangeError);
    expect(() => dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES)).toThrow(TypeError);
    expect(() => dev.handleEvent(3 as never)).toThrow(RangeError);
    expect(() => dev.hasFeature(64)).toThrow(RangeError);
  });
});

describe('the device status machine (VIRTIO 1.2 §2.1, §3.1.1)', () => {
  it.each([
    // [writes, final register value, rule]
    [[D], D | S.NEEDS_RESET, /DRIVER without ACKNOWLEDGE/],
    [[A, A | F], A | F | S.NEEDS_RESET, /FEATURES_OK without DRIVER/],
    // 1 | 2 | 4 = 7; with NEEDS_RESET (64): 71.
    [[A, A | D, A | D | OK], 71, /DRIVER_OK without FEATURES_OK/],
    [[A, A | D, A], A | S.NEEDS_RESET, /clears 0x2: the driver MUST NOT clear a device status bit/],
  ])('writes %o → BAD_STATUS, NEEDS_RESET raised (register %i)', async (writes, register, rule) => {
    const { t, dev } = await manual();
    let err;
    for (const w of writes) err = await t.write(w);
    expect(err?.code).toBe('BAD_STATUS');
    expect(err?.message).toMatch(rule);
    expect(t.status).toBe(register);
    expect(dev.isReady).toBe(false);
  });

  it('FEATURES_OK before FINALIZE_FEATURES is refused by clearing it', async () => {
    const { t } = await manual();
    await t.write(A);
    await t.write(A | D);
    const err = await t.write(A | D | F);
    expect(err?.code).toBe('BAD_STATUS');
    expect(err?.message).toMatch(/FEATURES_OK before FINALIZE_FEATURES/);
    expect(t.status).toBe(A | D);
  });

  it('a full bring-up reaches DRIVER_OK; FAILED and NEEDS_RESET take readiness away; status 0 is a reset', async () => {
    const { t, dev, drv } = await manual();
    for (const s of [A, A | D]) await t.write(s);
    await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x3n);
    for (const s of [A | D | F, A | D | F | OK]) expect(await t.write(s)).toBeUndefined();
    expect(dev.isReady).toBe(true);
    expect(await t.write(A | D | F | OK | S.FAILED)).toBeUndefined();
    expect(dev.isReady).toBe(false);
    expect(drv.events.at(-1)?.status).toBe(A | D | F | OK | S.FAILED);
    // Writing 0 resets (§2.1: "writing 0 … resets the device").
    expect(await t.write(0)).toBeUndefined();
    expect(drv.events.at(-1)).toEqual({ event: VHOST_NOTIFY.RESET, status: 0, features: 0n });
    // The device itself can ask for a reset.
    for (const s of [A, A | D]) await t.write(s);
    await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x3n);
    for (const s of [A | D | F, A | D | F | OK]) await t.write(s);
    expect(dev.isReady).toBe(true);
    await dev.setStatus(A | D | F | OK | S.NEEDS_RESET);
    expect(dev.isReady).toBe(false);
    expect(dev.status & S.NEEDS_RESET).toBe(S.NEEDS_RESET);
  });

  it('RESET clears the status register (the RFC endpoint never did), features and readiness, and tells the driver', async () => {
    const { t, dev, drv } = await manual();
    for (const s of [A, A | D]) await t.write(s);
    await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 0x3n);
    await t.write(A | D | F);
    t.statusWrites = [];
    expect(await dev.handleEvent(VHOST_NOTIFY.RESET)).toBeUndefined();
    expect(t.statusWrites).toEqual([0]);
    expect(dev.status).toBe(0);
    expect(dev.features).toBe(0n);
    expect(drv.events.at(-1)?.event).toBe(VHOST_NOTIFY.RESET);
  });

  it('handleEvent never rejects: a transport failure comes back as an error value', async () => {
    const t = new ManualTransport({
      getStatus: () => {
        throw new Error('link down');
      },
    });
    const dev = new VhostDevice(t.ops, { id: { vendor: 1, device: 7 } });
    t.device = dev;
    const err = await dev.handleEvent(VHOST_NOTIFY.SET_STATUS);
    expect(isVhostError(err, 'DRIVER_ERROR')).toBe(true);
    expect((err?.cause as Error).message).toBe('link down');
    expect(dev.lastError).toBe(err);
  });
});

describe('notifier chain (RFC vhost_register_notifier)', () => {
  it('runs the bound driver hook first, then notifiers in order; unregistering stops one', async () => {
    const { t, dev } = await manual(0x3n, { event: (_d, i) => void order.push(`driver ${i.event}`) });
    const order: string[] = [];
    const offA = dev.registerNotifier((_d, i: VhostEventInfo) => void order.push(`a ${i.event}`));
    dev.registerNotifier((_d, i: VhostEventInfo) => void order.push(`b ${i.event}`));
    await t.write(A);
    offA();
    await t.write(A | D);
    expect(order).toEqual(['driver 0', 'a 0', 'b 0', 'driver 0', 'b 0']);
  });

  it('events wait for a probe in progress (they are serialized with bind / unbind)', async () => {
    const t = new ManualTransport();
    const dev = new VhostDevice(t.ops, { id: { vendor: 1, device: 7 } });
    t.device = dev;
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const bus = new VhostBus();
    await bus.registerDriver(
      recordingDriver('slow', undefined, {
        probe: async () => {
          order.push('probe start');
          await gate;
          order.push('probe end');
        },
        event: (_d, i) => void order.push(`event ${i.event}`),
      }),
    );
    const reg = bus.registerDevice(dev);
    await Promise.resolve();
    t.status = A;
    const ev = dev.handleEvent(VHOST_NOTIFY.SET_STATUS);
    await new Promise((r) => setTimeout(r, 0));
    release();
    await reg;
    await ev;
    expect(order).toEqual(['probe start', 'probe end', 'event 0']);
  });
});

describe('device wrappers', () => {
  it('createVqs: default size from config.queueSize, BUSY while queues exist, INVALID_OPS for a bad transport answer', async () => {
    const t = new ManualTransport();
    const dev = new VhostDevice(t.ops, { id: { vendor: 1, device: 7 }, config: { queueSize: 32 } });
    t.device = dev;
    const vqs = await dev.createVqs([{ name: 'rx' }, { name: 'tx', size: 8 }]);
    expect(vqs.map((v) => [v.name, v.index, v.num])).toEqual([
      ['rx', 0, 32],
      ['tx', 1, 8],
    ]);
    await expect(dev.createVqs([{ name: 'again' }])).rejects.toMatchObject({ code: 'BUSY' });
    await dev.delVqs();
    await expect(dev.createVqs([{ name: 'bad', size: 12 }])).rejects.toThrow(/specs\[0\]\.size must be a power of two/);
    await expect(dev.createVqs([])).rejects.toThrow(RangeError);
    const liar = new ManualTransport({ createVqs: () => [] });
    const dev2 = new VhostDevice(liar.ops, { id: { vendor: 1, device: 7 } });
    await expect(dev2.createVqs([{ name: 'rx' }])).rejects.toMatchObject({ code: 'INVALID_OPS' });
  });

  it('config is validated and fixed while registered', async () => {
    const t = new ManualTransport();
    expect(() => new VhostDevice(t.ops, { config: { queueSize: 100 } })).toThrow(/config\.queueSize must be a power of two/);
    expect(() => new VhostDevice(t.ops, { config: { queueSize: 16, bufferCount: 17 } })).toThrow(/config\.bufferCount/);
    const { dev } = await manual();
    expect(() => (dev.config = { queueSize: 8 })).toThrow(expect.objectContaining({ code: 'BUSY' }));
  });

  it('read / write check their arguments; the optional config space answers NOT_SUPPORTED without its ops', async () => {
    const { dev } = await manual();
    expect(() => dev.read([] as never, 0)).toThrow(TypeError);
    expect(() => dev.write(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => dev.read(new Uint8Array(2), 2 ** 53 - 1)).toThrow(RangeError);
    await expect(dev.readConfig(0, new Uint8Array(4))).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
    const space = new Uint8Array(16);
    const t = new ManualTransport({
      readConfig: (off, dst) => dst.set(space.subarray(off, off + dst.length)),
      writeConfig: (off, src) => space.set(src, off),
    });
    const dev2 = new VhostDevice(t.ops);
    await dev2.writeConfig(4, Uint8Array.of(9, 8));
    const out = new Uint8Array(3);
    await dev2.readConfig(3, out);
    expect([...out]).toEqual([0, 9, 8]);
  });
});
