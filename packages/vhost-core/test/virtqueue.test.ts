import { describe, expect, it } from 'vitest';
import { ArrayBufferMemory, VRING_DESC_F, VringIov, isVringError, vringLegacyLayout, vringModernLayout } from '@x/vring';
import { MockSplitQueue } from '@x/vring/testing';
import { VHOST_DEV_ANY_ID, VHOST_NOTIFY, VIRTIO_CONFIG_S as S, VhostBus, VhostDevice, VhostVirtqueue, isVhostError } from '@x/vhost-core';
import { FakeVhostTransport } from '@x/vhost-core/testing';
import { ManualTransport } from './helpers.js';

const INDIRECT = 28n;
const EVENT_IDX = 29n;
const FROM_PEER = 1;
const TO_PEER = 0;

/** A fake transport with a driver that creates two queues of 8; brought up to DRIVER_OK with `features`. */
async function rig(features: bigint, opts: { driverOk?: boolean; callback?: (vq: VhostVirtqueue) => void } = {}) {
  const t = new FakeVhostTransport({ id: { vendor: VHOST_DEV_ANY_ID, device: 7 } });
  const bus = new VhostBus();
  await bus.registerDriver({
    name: 'test',
    idTable: [{ vendor: VHOST_DEV_ANY_ID, device: 7 }],
    async probe(d) {
      await d.setFeatures((1n << INDIRECT) | (1n << EVENT_IDX) | 1n);
      await d.createVqs([
        { name: 'to-peer', size: 8 },
        { name: 'from-peer', size: 8, ...(opts.callback === undefined ? {} : { callback: opts.callback }) },
      ]);
    },
    remove: (d) => d.delVqs(),
  });
  await bus.registerDevice(t.device);
  const p = t.peer;
  await p.reset();
  await p.setStatus(S.ACKNOWLEDGE);
  await p.setStatus(S.ACKNOWLEDGE | S.DRIVER);
  await p.writeDriverFeatures(features);
  await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  const eventIdx = ((features >> EVENT_IDX) & 1n) === 1n;
  await p.activateQueue(TO_PEER, { eventIdx });
  await p.activateQueue(FROM_PEER, { eventIdx });
  if (opts.driverOk !== false) await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  return { t, p, dev: t.device, vq: (i: number) => t.device.vqs[i]! };
}

describe('VhostVirtqueue over Vringh (RFC patch 5)', () => {
  it('takes EVENT_IDX and INDIRECT_DESC for the ring from the negotiated features, when the ring goes live', async () => {
    const on = await rig((1n << EVENT_IDX) | (1n << INDIRECT));
    expect(on.vq(FROM_PEER).vringh?.eventIdx).toBe(true);
    expect(on.vq(FROM_PEER).vringh?.indirect).toBe(true);
    const off = await rig(1n);
    expect(off.vq(FROM_PEER).vringh?.eventIdx).toBe(false);
    expect(off.vq(FROM_PEER).vringh?.indirect).toBe(false);
  });

  it('no ring before DRIVER_OK: attached but not live, kicks ignored and counted', async () => {
    let runs = 0;
    const r = await rig(1n, { driverOk: false, callback: () => void runs++ });
    const vq = r.vq(FROM_PEER);
    expect(vq.isAttached).toBe(true);
    expect(vq.isReady).toBe(false);
    expect(vq.vringh).toBeUndefined();
    r.p.addOutbuf(FROM_PEER, Uint8Array.of(1));
    await r.p.kick(FROM_PEER);
    expect(vq.stats.kicks).toBe(1);
    expect(vq.stats.kicksIgnored).toBe(1);
    expect(runs).toBe(0);
    await r.p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
    expect(vq.isReady).toBe(true);
    expect(vq.hasAvail()).toBe(true);
  });

  it('getInbuf refuses a device-writable chain with WRONG_DIRECTION and leaves it in the ring (vringh -EPROTO)', async () => {
    const r = await rig(1n);
    const vq = r.vq(FROM_PEER);
    r.p.addInbuf(FROM_PEER, 16);
    await r.p.kick(FROM_PEER);
    const riov = new VringIov(4);
    const wiov = new VringIov(4);
    expect(() => vq.getInbuf(riov)).toThrow(expect.objectContaining({ code: 'WRONG_DIRECTION' }));
    expect(() => vq.getInbuf(riov)).toThrow(expect.objectContaining({ code: 'WRONG_DIRECTION' }));
    // getBuf takes any chain: it is still there.
    const head = vq.getBuf(riov, wiov);
    expect(head).toBeGreaterThanOrEqual(0);
    expect([riov.count, wiov.count, wiov.totalLen]).toEqual([0, 1, 16]);
    // And getOutbuf refuses a device-readable chain.
    r.p.addOutbuf(TO_PEER, Uint8Array.of(1, 2));
    await r.p.kick(TO_PEER);
    expect(() => r.vq(TO_PEER).getOutbuf(wiov)).toThrow(expect.objectContaining({ code: 'WRONG_DIRECTION' }));
  });

  it('a hostile ring gives RING_ERROR with the VringError as cause, in bounded work (§2.7.5.2: no loops)', async () => {
    const r = await rig(1n);
    const layout = r.p.virtqueue(FROM_PEER)!.layout;
    const mock = new MockSplitQueue(r.p.memory, layout);
    const buf = r.p.alloc(16);
    // Descriptor 0 chains to itself.
    mock.writeDesc(0, { addr: buf, len: 16, flags: VRING_DESC_F.NEXT, next: 0 });
    mock.pushAvail(0);
    const riov = new VringIov(16);
    let err: unknown;
    try {
      r.vq(FROM_PEER).getInbuf(riov);
    } catch (e) {
      err = e;
    }
    expect(isVhostError(err, 'RING_ERROR')).toBe(true);
    expect(isVringError((err as Error).cause, 'DESC_LOOP')).toBe(true);
    // A descriptor pointing outside the window the device has.
    mock.writeDesc(1, { addr: r.p.unreachableAddress, len: 8 });
    mock.setAvailIdx(0);
    mock.pushAvail(1);
    expect(() => r.vq(FROM_PEER).getInbuf(riov)).toThrow(expect.objectContaining({ code: 'RING_ERROR' }));
  });

  it('kicked runs the callback only while enabled; a kick during the callback runs it once more; errors are recorded', async () => {
    const seen: string[] = [];
    let reenter = true;
    let fail: unknown;
    const r = await rig(1n, {
      callback: (vq) => {
        seen.push('run');
        if (reenter) {
          reenter = false;
          vq.kicked();
        }
        if (fail !== undefined) throw fail;
      },
    });
    const vq = r.vq(FROM_PEER);
    vq.kicked();
    expect(seen).toEqual(['run', 'run']);
    vq.disableCb();
    vq.kicked();
    expect(seen.length).toBe(2);
    vq.enableCb();
    fail = new Error('boom');
    vq.kicked();
    expect(vq.stats.callbackErrors).toBe(1);
    expect(vq.lastError).toBe(fail);
    fail = undefined;
    vq.setCallback(async () => {
      throw new Error('async boom');
    });
    vq.kicked();
    await Promise.resolve();
    await Promise.resolve();
    expect(vq.stats.callbackErrors).toBe(2);
    expect((vq.lastError as Error).message).toBe('async boom');
  });

  it('notify raises the interrupt only when the ring asks (§2.7.7), putBufs completes a batch', async () => {
    const r = await rig(1n);
    const vq = r.vq(FROM_PEER);
    for (let k = 0; k < 3; k++) r.p.addOutbuf(FROM_PEER, Uint8Array.of(k));
    await r.p.kick(FROM_PEER);
    const riov = new VringIov(2);
    const heads = [vq.getInbuf(riov), vq.getInbuf(riov), vq.getInbuf(riov)];
    vq.putBufs(heads, [0, 0, 0]);
    expect(vq.notify()).toBe(true);
    await r.p.settle();
    expect(r.p.interrupts(FROM_PEER)).toBe(1);
    // The peer disables its callback: VRING_AVAIL_F_NO_INTERRUPT.
    r.p.virtqueue(FROM_PEER)!.disableCb();
    r.p.addOutbuf(FROM_PEER, Uint8Array.of(9));
    await r.p.kick(FROM_PEER);
    vq.putBuf(vq.getInbuf(riov), 0);
    expect(vq.notify()).toBe(false);
    expect(vq.stats).toMatchObject({ buffers: 4, completed: 4, interrupts: 1, interruptsSuppressed: 1 });
  });

  it('a deactivated queue goes quiet; a reset drops the attachment', async () => {
    const r = await rig(1n);
    const vq = r.vq(FROM_PEER);
    await r.p.deactivateQueue(FROM_PEER);
    expect(vq.isAttached).toBe(false);
    expect(vq.isReady).toBe(false);
    expect(() => vq.putBuf(0, 0)).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
    await r.p.reset();
    expect(r.vq(TO_PEER).isAttached).toBe(false);
  });
});

describe('VhostVirtqueue.attach (a transport activating a queue)', () => {
  const make = () => {
    const t = new ManualTransport();
    const dev = new VhostDevice(t.ops, { id: { vendor: 1, device: 7 } });
    t.device = dev;
    return { dev, vq: new VhostVirtqueue({ device: dev, index: 0, num: 16, notify: () => {} }) };
  };
  const mem = new ArrayBufferMemory(new ArrayBuffer(0x10000), { base: 0x10000 });

  it('refuses a second ring (BUSY), a bigger ring than published (RING_ERROR), a ring outside memory (BUS_ERROR)', () => {
    const { vq } = make();
    expect(() => vq.attach(mem, vringLegacyLayout(0x10000, 32, 4096))).toThrow(/32 entries, more than the 16/);
    // vringSize(16, 4096) = align(16·16 + 2·(3+16), 4096) + 6 + 8·16 = 4096 + 134 = 4230 bytes: from 0x1f000 it ends past 0x20000.
    expect(() => vq.attach(mem, vringLegacyLayout(0x1f000, 16, 4096))).toThrow(expect.objectContaining({ code: 'BUS_ERROR' }));
    expect(() => vq.attach(mem, { num: 16, desc: 0x10008, avail: 0x11000, used: 0x12000 })).toThrow(expect.objectContaining({ code: 'RING_ERROR' }));
    vq.attach(mem, vringModernLayout(8, { desc: 0x10000 }));
    expect(vq.layout?.num).toBe(8);
    expect(() => vq.attach(mem, vringModernLayout(8, { desc: 0x14000 }))).toThrow(expect.objectContaining({ code: 'BUSY' }));
  });

  it('detach(reason) records why the ring went (a lost link) as lostBy; an orderly detach does not; attach clears it', () => {
    const { vq } = make();
    vq.attach(mem, vringModernLayout(8, { desc: 0x10000 }));
    vq.detach();
    expect(vq.lostBy).toBeUndefined();
    vq.attach(mem, vringModernLayout(8, { desc: 0x10000 }));
    const why = new Error('link down');
    vq.detach(why);
    expect(vq.isAttached).toBe(false);
    expect(vq.lostBy).toBe(why);
    vq.attach(mem, vringModernLayout(8, { desc: 0x10000 }));
    expect(vq.lostBy).toBeUndefined();
  });

  it('checks constructor arguments by name', () => {
    const { dev } = make();
    expect(() => new VhostVirtqueue({ device: dev, index: 0, num: 24, notify: () => {} })).toThrow(/options\.num must be a power of two/);
    expect(() => new VhostVirtqueue({ device: dev, index: -1, num: 8, notify: () => {} })).toThrow(RangeError);
    expect(() => new VhostVirtqueue({ device: dev, index: 0, num: 8 } as never)).toThrow(/options\.notify must be a function/);
  });

  it('an event on a device without queues is fine', async () => {
    const { dev } = make();
    expect(await dev.handleEvent(VHOST_NOTIFY.RESET)).toBeUndefined();
  });
});

describe('VhostVirtqueue completions check every argument before writing the used ring', () => {
  it('putBuf / putBufs refuse a fractional or out-of-range head, a len outside u32, a count beyond the arrays', async () => {
    const r = await rig(1n);
    const vq = r.vq(FROM_PEER);
    for (let k = 0; k < 2; k++) r.p.addOutbuf(FROM_PEER, Uint8Array.of(k));
    await r.p.kick(FROM_PEER);
    const riov = new VringIov(2);
    const heads = [vq.getInbuf(riov), vq.getInbuf(riov)];
    const usedBefore = r.p.readRing(FROM_PEER);
    expect(() => vq.putBuf(1.5, 0)).toThrow(RangeError);
    expect(() => vq.putBuf(8, 0)).toThrow(/head must be an integer in 0\.\.7/);
    expect(() => vq.putBuf(heads[0]!, -1)).toThrow(/len must be a u32/);
    expect(() => vq.putBuf(heads[0]!, 2 ** 32)).toThrow(/len must be a u32/);
    expect(() => vq.putBufs(heads, [0, 0], 3)).toThrow(/count must be an integer/);
    expect(() => vq.putBufs(heads, [0, 2 ** 32])).toThrow(/lens\[1\] must be a u32/);
    expect(r.p.readRing(FROM_PEER)).toEqual(usedBefore);
    vq.putBufs(heads, [0, 0]);
    expect(vq.stats.completed).toBe(2);
  });
});
