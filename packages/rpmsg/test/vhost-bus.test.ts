import { describe, expect, it } from 'vitest';
import { ConfigTree, VIRTIO_CONFIG_S as S, VhostBus, VhostConfigFs } from '@x/vhost-core';
import { FakeVhostTransport } from '@x/vhost-core/testing';
import {
  RPMSG_ADDR_ANY,
  RPMSG_AS_ADDR,
  RPMSG_NS_ADDR,
  RpmsgConfigFs,
  RpmsgVirtproc,
  RpmsgVirtqueueTransport,
  VhostRpmsgBus,
  type RpmsgVirtprocOptions,
} from '@x/rpmsg';
import { collect, text, until } from './helpers.js';

/**
 * The far end of a FakeVhostTransport run as Linux's virtio_rpmsg_bus would: the §3.1.1
 * sequence through the fake's register block, then an rpmsg core over its two rings.
 */
async function virtioSide(t: FakeVhostTransport, features = 0x3n, options: RpmsgVirtprocOptions = {}) {
  const peer = t.peer;
  await peer.reset();
  await peer.setStatus(S.ACKNOWLEDGE);
  await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER);
  const offered = await peer.readDeviceFeatures();
  await peer.writeDriverFeatures(offered & features);
  await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  await peer.activateQueue(0, { eventIdx: false });
  await peer.activateQueue(1, { eventIdx: false });
  const rvq = peer.virtqueue(0)!;
  const svq = peer.virtqueue(1)!;
  const numBufs = Math.min(256, rvq.num);
  const bufferBase = peer.alloc(2 * numBufs * 512, 16);
  const transport = new RpmsgVirtqueueTransport({ rvq, svq, memory: peer.memory, bufferBase, numRxBufs: numBufs, numTxBufs: numBufs, features: Number(offered & features) });
  rvq.setCallback(() => transport.rxDone());
  svq.setCallback(() => transport.txDone());
  const vp = new RpmsgVirtproc(transport, { name: 'rc', role: 'driver', ...options });
  await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  transport.start();
  await peer.settle();
  return { vp, offered, transport };
}

async function setup(options: ConstructorParameters<typeof VhostRpmsgBus>[0] = {}) {
  const tree = new ConfigTree();
  const vbus = new VhostBus();
  const vcfs = new VhostConfigFs(tree, vbus);
  const rcfs = new RpmsgConfigFs(tree);
  const rpmsg = new VhostRpmsgBus({ configFs: rcfs, ...options });
  await vbus.registerDriver(rpmsg);
  const t = new FakeVhostTransport({ name: 'ep0', configFs: vcfs });
  await tree.link('/vhost/vhost-transport/ep0', '/vhost/vhost-client/vhost_rpmsg/ffffffff:00000007');
  return { tree, vbus, rpmsg, rcfs, t, device: t.device };
}

describe('VhostRpmsgBus (RFC patch 14) over the vhost-core fake transport', () => {
  it('binds to {ANY, 7}, offers F_NS | F_AS (0x3) and adds rpmsg/virtproc/<device>', async () => {
    const { tree, rpmsg, device, t } = await setup();
    expect(device.driver).toBe(rpmsg);
    expect(await t.peer.readDeviceFeatures()).toBe(0x3n);
    expect(tree.read(`/rpmsg/virtproc/${device.name}/state`)).toBe('down');
    expect(tree.read(`/rpmsg/virtproc/${device.name}/buffer_size`)).toBe(512);
    t.dispose();
  });

  it('announces the configured channels once the peer sets DRIVER_OK; AS ASSIGN binds dst; messages flow both ways', async () => {
    const { tree, rpmsg, device, t } = await setup();
    rpmsg.registerDriver({ name: 'sample', idTable: ['rpmsg-client-sample'], callback: (ch, data) => void ch.endpoint!.send(`echo ${text(data)}`) });
    await tree.mkdir('/rpmsg/channel/rpmsg-client-sample/c1');
    await tree.link(`/rpmsg/virtproc/${device.name}`, '/rpmsg/channel/rpmsg-client-sample/c1');
    expect(tree.read('/rpmsg/channel/rpmsg-client-sample/c1/state')).toBe('BUSY');
    // Nothing before DRIVER_OK.
    expect(rpmsg.virtprocs).toHaveLength(0);
    const got: string[] = [];
    const { vp } = await virtioSide(t, 0x3n);
    vp.registerDriver({
      name: 'sample',
      idTable: ['rpmsg-client-sample'],
      probe: (ch) => void ch.endpoint!.send('hello world!'),
      callback: (_ch, data) => got.push(text(data)),
    });
    const ep = rpmsg.virtprocOf(device)!;
    expect(ep).toBeDefined();
    expect(tree.read(`/rpmsg/virtproc/${device.name}/state`)).toBe('up');
    await until(() => got.length === 1, 5000);
    expect(got).toEqual(['echo hello world!']);
    const local = ep.channels[0]!;
    const remote = vp.channels[0]!;
    expect(local.dst).toBe(remote.src);
    expect(tree.read('/rpmsg/channel/rpmsg-client-sample/c1/dst')).toBe(remote.src);
    // The virtio side's NS CREATE reached an endpoint at 53 on the vhost side (the RFC dropped it).
    expect(ep.endpoint(RPMSG_NS_ADDR)!.stats.rxMessages).toBe(1);
    expect(ep.endpoint(RPMSG_AS_ADDR)!.stats.rxMessages).toBe(1);
    expect(ep.stats.dropped).toBe(0);
    t.dispose();
  });

  it('busyTurns and stableViews reach each link\'s transport: 500 messages each way arrive in order; bad values are refused by name', async () => {
    expect(() => new VhostRpmsgBus({ busyTurns: -1 })).toThrow(/busyTurns/);
    expect(() => new VhostRpmsgBus({ busyTurns: 2.5 })).toThrow(RangeError);
    expect(() => new VhostRpmsgBus({ stableViews: 'yes' as never })).toThrow(TypeError);
    const { rpmsg, device, t } = await setup({ busyTurns: 8, stableViews: true });
    const { vp } = await virtioSide(t);
    const ep = rpmsg.virtprocOf(device)!;
    const atVhost: string[] = [];
    const atVirtio: string[] = [];
    const a = ep.createEndpoint({ callback: (d) => atVhost.push(text(d)) });
    const b = vp.createEndpoint({ dst: a.addr, callback: (d) => atVirtio.push(text(d)) });
    const back = ep.createEndpoint({ dst: b.addr });
    for (let i = 0; i < 500; i++) {
      await b.send(`to vhost ${i}`);
      await back.send(`to virtio ${i}`);
    }
    await until(() => atVhost.length === 500 && atVirtio.length === 500, 20_000);
    expect(atVhost).toEqual(Array.from({ length: 500 }, (_, i) => `to vhost ${i}`));
    expect(atVirtio).toEqual(Array.from({ length: 500 }, (_, i) => `to virtio ${i}`));
    t.dispose();
  });

  it('unlinking the channel item deletes the channel on both sides', async () => {
    const { tree, rpmsg, device, t } = await setup();
    rpmsg.registerDriver({ name: 's', idTable: ['svc'], callback: () => {} });
    await tree.mkdir('/rpmsg/channel/svc/c1');
    await tree.link(`/rpmsg/virtproc/${device.name}`, '/rpmsg/channel/svc/c1');
    const { vp } = await virtioSide(t);
    await until(() => vp.channels.length === 1, 5000);
    await tree.unlink(`/rpmsg/virtproc/${device.name}`, 'c1');
    expect(rpmsg.virtprocOf(device)!.channels).toHaveLength(0);
    await until(() => vp.channels.length === 0, 5000);
    expect(tree.read('/rpmsg/channel/svc/c1/state')).toBe('FREE');
    t.dispose();
  });

  it('a second link of the same channel item is refused with BUSY', async () => {
    const { tree, device, rcfs, t } = await setup();
    rcfs.addChannelName('svc');
    rcfs.addVirtproc('other');
    await tree.mkdir('/rpmsg/channel/svc/c1');
    await tree.link(`/rpmsg/virtproc/${device.name}`, '/rpmsg/channel/svc/c1');
    await expect(tree.link('/rpmsg/virtproc/other', '/rpmsg/channel/svc/c1')).rejects.toMatchObject({ code: 'BUSY' });
    await expect(tree.set('/rpmsg/channel/svc/c1', { src: 0x500 })).rejects.toMatchObject({ code: 'BUSY' });
    t.dispose();
  });

  it('a reset takes the link down; the next DRIVER_OK brings it and the configured channels back', async () => {
    const { tree, rpmsg, device, t } = await setup();
    rpmsg.registerDriver({ name: 's', idTable: ['svc'], callback: () => {} });
    await tree.mkdir('/rpmsg/channel/svc/c1');
    await tree.link(`/rpmsg/virtproc/${device.name}`, '/rpmsg/channel/svc/c1');
    const first = await virtioSide(t);
    await until(() => first.vp.channels.length === 1, 5000);
    const removed: unknown[] = [];
    rpmsg.on('virtprocRemoved', (v) => removed.push(v));
    await t.peer.reset();
    first.vp.close();
    expect(removed).toHaveLength(1);
    expect(rpmsg.virtprocOf(device)).toBeUndefined();
    const second = await virtioSide(t);
    await until(() => second.vp.channels.length === 1, 5000);
    expect(rpmsg.virtprocOf(device)!.channels.map((c) => c.name)).toEqual(['svc']);
    t.dispose();
  });

  it('rings its transport took away for a lost link (VhostVirtqueue.detach(reason)) make the reset a link down: calls fail with LINK_DOWN and that cause (issue 6)', async () => {
    const { rpmsg, device, t } = await setup();
    const first = await virtioSide(t);
    const vp = rpmsg.virtprocOf(device)!;
    const ept = vp.createEndpoint({ dst: 0x400 });
    const linkDown = Object.assign(new Error('the NTB link went down'), { code: 'LINK_DOWN' });
    // What @x/transport-ntb does at link down: detach the rings with its error, then reset the device.
    for (const vq of device.vqs) vq.detach(linkDown);
    await t.peer.reset();
    first.vp.close();
    expect(rpmsg.virtprocOf(device)).toBeUndefined();
    await expect(ept.send('after')).rejects.toMatchObject({ code: 'LINK_DOWN', cause: linkDown });
    // An orderly reset of the next link is CLOSED again (attach cleared lostBy).
    const second = await virtioSide(t);
    const vp2 = rpmsg.virtprocOf(device)!;
    const ept2 = vp2.createEndpoint({ dst: 0x400 });
    await t.peer.reset();
    second.vp.close();
    await expect(ept2.send('after')).rejects.toMatchObject({ code: 'CLOSED' });
    t.dispose();
  });

  it('with requireAs, a driver without F_AS is refused at FINALIZE_FEATURES (as the RFC); by default F_NS alone works', async () => {
    const strict = await setup({ requireAs: true });
    const peer = strict.t.peer;
    await peer.reset();
    await peer.setStatus(S.ACKNOWLEDGE);
    await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER);
    await peer.writeDriverFeatures(0x1n);
    expect((await peer.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK)) & S.FEATURES_OK).toBe(0);
    strict.t.dispose();

    const { rpmsg, device, t } = await setup({ channels: [{ name: 'svc' }] });
    rpmsg.registerDriver({ name: 's', idTable: ['svc'], callback: (ch, d) => void ch.endpoint!.send(`re ${text(d)}`) });
    const { vp } = await virtioSide(t, 0x1n);
    const got: string[] = [];
    vp.registerDriver({ name: 's', idTable: ['svc'], probe: (ch) => void ch.endpoint!.send('x'), callback: (_c, d) => got.push(text(d)) });
    await until(() => got.length === 1, 5000);
    // Bound by the first message (OpenAMP's rule), since there is no AS.
    expect(rpmsg.virtprocOf(device)!.channels[0]!.dst).not.toBe(RPMSG_ADDR_ANY);
    expect(rpmsg.virtprocOf(device)!.endpoint(RPMSG_AS_ADDR)).toBeUndefined();
    t.dispose();
  });

  it('malformed messages from the virtio side are dropped and reported on the vhost side', async () => {
    const { rpmsg, device, t } = await setup();
    const { vp } = await virtioSide(t);
    const ep = rpmsg.virtprocOf(device)!;
    const ev = collect(ep);
    const e = vp.createEndpoint();
    await e.sendTo('to nobody', 0x9999);
    await e.sendTo(new Uint8Array(10), RPMSG_NS_ADDR);
    await until(() => ev.dropped.length === 2, 5000);
    expect(ev.dropped.map((x) => x.code)).toEqual(['NO_ENDPOINT', 'MALFORMED']);
    t.dispose();
  });
});
