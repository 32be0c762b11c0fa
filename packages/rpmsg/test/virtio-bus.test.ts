import { describe, expect, it } from 'vitest';
import { VIRTIO_F, VirtioBus, featuresFromBits } from '@x/virtio-core';
import { FakeVirtioTransport } from '@x/virtio-core/testing';
import { RPMSG_NS_ADDR, VIRTIO_RPMSG_F, VirtioRpmsgBus, type RpmsgVirtproc } from '@x/rpmsg';
import { VringError } from '@x/vring';
import { text, until } from './helpers.js';

/**
 * The fake's echo device copies every buffer the driver sends on vq1 into the next RX
 * buffer on vq0, so an rpmsg message comes back to the driver's own endpoint at its dst.
 */
async function setup(opts: { allocBuffer?: boolean; bus?: ConstructorParameters<typeof VirtioRpmsgBus>[0]; features?: number[]; eventIdx?: boolean } = {}) {
  const bits = [VIRTIO_F.VERSION_1, ...(opts.eventIdx ? [VIRTIO_F.EVENT_IDX] : []), ...(opts.features ?? [VIRTIO_RPMSG_F.NS, VIRTIO_RPMSG_F.AS])];
  const t = new FakeVirtioTransport({ echo: true, features: featuresFromBits(bits), allocBuffer: opts.allocBuffer ?? false });
  const vbus = new VirtioBus();
  const rpmsg = new VirtioRpmsgBus(opts.bus);
  const ups: RpmsgVirtproc[] = [];
  rpmsg.on('virtproc', (vp) => ups.push(vp));
  await vbus.registerDriver(rpmsg);
  const dev = await vbus.registerDevice(t.createDevice());
  return { t, vbus, rpmsg, dev, ups };
}

/** A link of 4 buffers a side whose RX buffers are all held: the next send waits for a TX buffer. */
async function parkedSend() {
  const s = await setup({ bus: { numBufs: 4 } });
  const vp = s.ups[0]!;
  const held: Uint8Array[] = [];
  const b = vp.createEndpoint({ callback: (d, _s, e) => (e.holdRxBuffer(d), held.push(d)) });
  const a = vp.createEndpoint({ dst: b.addr });
  for (let i = 0; i < 8; i++) await a.send(`x${i}`);
  await until(() => held.length === 4, 5000);
  const waiting = a.send('stuck');
  await until(() => a.stats.txWaits === 1);
  return { ...s, a, waiting };
}

describe('VirtioRpmsgBus (Linux virtio_rpmsg_bus.c) over the virtio-core fake transport', () => {
  it('probes device id 7: vq0 "input" / vq1 "output", all 256 RX buffers posted at probe, DRIVER_OK, F_NS | F_AS negotiated', async () => {
    const { t, rpmsg, dev, ups } = await setup();
    expect(dev.driver).toBe(rpmsg);
    expect(ups).toHaveLength(1);
    const vp = ups[0]!;
    expect(rpmsg.virtprocOf(dev)).toBe(vp);
    expect(vp.role).toBe('driver');
    expect(vp.features).toBe(0b11);
    const [rvq, svq] = dev.vqs!;
    expect(rvq!.name).toBe('input');
    expect(svq!.name).toBe('output');
    // Linux: min(vring size, 256) RX buffers, every one posted.
    expect(rvq!.pending).toBe(256);
    expect(svq!.pending).toBe(0);
    expect(dev.status & 0x4).toBe(0x4);
    expect(vp.maxPayload).toBe(496);
    expect(vp.endpoint(RPMSG_NS_ADDR)).toBeDefined();
    t.dispose();
  });

  for (const allocBuffer of [false, true]) {
    it(`messages go out on vq1 and come back on vq0 (buffers from ${allocBuffer ? "the transport's allocBuffer, RFC patch 13" : "core's DMA pool"})`, async () => {
      const { t, ups } = await setup({ allocBuffer });
      const vp = ups[0]!;
      const got: string[] = [];
      const b = vp.createEndpoint({ callback: (d, src) => got.push(`${text(d)}<${src}`) });
      const a = vp.createEndpoint({ dst: b.addr });
      // More than one ring's worth: TX buffers are recycled from vq1's used ring.
      for (let i = 0; i < 600; i++) await a.send(`m${i}`);
      await until(() => got.length === 600, 5000);
      expect(got[0]).toBe(`m0<${a.addr}`);
      expect(got[599]).toBe(`m599<${a.addr}`);
      t.dispose();
    });
  }

  it('buffer count and size are options (numBufs 16, bufSize 256 → 240-byte payloads)', async () => {
    const { t, dev, ups } = await setup({ bus: { numBufs: 16, bufSize: 256 }, eventIdx: true });
    const vp = ups[0]!;
    expect(dev.vqs![0]!.pending).toBe(16);
    expect(vp.maxPayload).toBe(240);
    const got: number[] = [];
    const b = vp.createEndpoint({ callback: (d) => got.push(d.length) });
    const a = vp.createEndpoint({ dst: b.addr });
    await expect(a.send(new Uint8Array(241))).rejects.toBeInstanceOf(RangeError);
    for (let i = 0; i < 40; i++) await a.send(new Uint8Array(240));
    await until(() => got.length === 40, 5000);
    t.dispose();
  });

  it('a device without F_AS gives a core without the AS endpoint', async () => {
    const { t, ups } = await setup({ features: [VIRTIO_RPMSG_F.NS] });
    expect(ups[0]!.features).toBe(0b01);
    expect(ups[0]!.endpoint(54)).toBeUndefined();
    t.dispose();
  });

  it('unregistering the device closes the core (virtprocRemoved) and fails its waiting sends with CLOSED', async () => {
    const { t, vbus, rpmsg, dev, ups, waiting } = await parkedSend();
    const vp = ups[0]!;
    const removed: RpmsgVirtproc[] = [];
    rpmsg.on('virtprocRemoved', (v) => removed.push(v));
    await vbus.unregisterDevice(dev);
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    expect(removed).toEqual([vp]);
    expect(vp.closed).toBe(true);
    t.dispose();
  });

  it('a device removed with queues its transport broke (a link down, Linux virtio_break_device) fails waiting sends with LINK_DOWN and the transport cause (issue 6)', async () => {
    const { t, vbus, dev, a, waiting } = await parkedSend();
    // What a transport does at link down (as @x/transport-ntb): break the queues with its error as cause.
    const linkDown = Object.assign(new Error('the NTB link went down'), { code: 'LINK_DOWN' });
    const svq = dev.vqs![1]!;
    svq.brokenBy = new VringError('BROKEN', `${svq.name}: link down`, { cause: linkDown });
    await vbus.unregisterDevice(dev);
    await expect(waiting).rejects.toMatchObject({ code: 'LINK_DOWN', cause: linkDown });
    await expect(a.send('later')).rejects.toMatchObject({ code: 'LINK_DOWN', cause: linkDown });
    t.dispose();
  });

  it('a queue broken by a hostile ring (not by its transport) is no link down: waiting sends fail CLOSED', async () => {
    const { t, vbus, dev, a, waiting } = await parkedSend();
    dev.vqs![1]!.brokenBy = new VringError('BAD_USED_ID', 'used id out of range');
    await vbus.unregisterDevice(dev);
    await expect(waiting).rejects.toMatchObject({ code: 'CLOSED' });
    t.dispose();
  });

  it('rpmsg drivers registered on the bus are bound on every link', async () => {
    const { t, rpmsg, ups } = await setup();
    const probed: string[] = [];
    rpmsg.registerDriver({ name: 'd', idTable: ['svc'], probe: (ch) => probed.push(ch.name), callback: () => {} });
    ups[0]!.createChannel({ name: 'svc' });
    expect(probed).toEqual(['svc']);
    expect(() => rpmsg.registerDriver(rpmsg.drivers[0]!)).toThrow(expect.objectContaining({ code: 'BUSY' }));
    t.dispose();
  });
});
