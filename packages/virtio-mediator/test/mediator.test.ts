import { afterEach, describe, expect, it } from 'vitest';
import { VIRTIO_CONFIG_S } from '@x/virtio-core';
import { VHOST_NOTIFY } from '@x/vhost-core';
import { MEDIATOR_RING_FEATURES, TRANSPORT_FEATURES_MASK, VirtioMediator, deviceFeatures, ringFeatures } from '@x/virtio-mediator';
import { VirtioBus } from '@x/virtio-core';
import { PeerDriver, RPMSG, msg, rig, transfer, until, type Rig } from './helpers.js';

const S = VIRTIO_CONFIG_S;
const LIVE = S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK;
/** EVENT_IDX = bit 29, VERSION_1 = bit 32, INDIRECT_DESC = bit 28 (VIRTIO 1.2 §6). */
const EVENT_IDX = 1n << 29n;
const VERSION_1 = 1n << 32n;
const INDIRECT = 1n << 28n;
/** X for the tests: device bits 0, 1, 2 (rpmsg's F_NS = 0, F_AS = 1, and one more) and all three ring bits. */
const X = 0b111n | EVENT_IDX | VERSION_1 | INDIRECT;

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0).reverse()) await r.close();
});
async function make(...args: Parameters<typeof rig>): Promise<Rig> {
  const r = await rig(...args);
  rigs.push(r);
  return r;
}

describe('features: transport bits are per side, device bits are mediated', () => {
  it('§6 bit ranges: transport 24–41, the mediator implements 28, 29 and 32', () => {
    // Bits 24..41: (2^42 − 1) − (2^24 − 1) = 0x3ff_ff00_0000.
    expect(TRANSPORT_FEATURES_MASK).toBe(0x3ff_ff00_0000n);
    // 2^28 + 2^29 + 2^32 = 0x1000_0000 + 0x2000_0000 + 0x1_0000_0000.
    expect(MEDIATOR_RING_FEATURES).toBe(0x1_3000_0000n);
    expect(deviceFeatures(X)).toBe(0b111n);
    expect(ringFeatures(X)).toBe(0x1_3000_0000n);
    // Device bits above the transport range (e.g. 50, §6) are device bits too.
    expect(deviceFeatures(1n << 50n)).toBe(1n << 50n);
  });
});

describe("Jason Wang's X/Y/Z feature mediation (rfc-protocol §3)", () => {
  it('both drivers accept all of X: Y = Z = X, and the device bits in use are X’s', async () => {
    const local = new PeerDriver('local', [0, 1, 2]);
    const remote = new PeerDriver('remote', [0, 1, 2]);
    const r = await make(local, remote, { features: X });
    await until(() => local.dev?.status === LIVE && remote.dev?.status === LIVE, 10_000, 'both sides live');
    const dev = r.vhost.device;
    expect(r.mediator.mediated(dev)).toEqual({ offered: X, local: X, remote: X, device: 0b111n, ceiling: 0b111n });
    expect(r.events.filter((e) => e.type === 'needs-reset')).toEqual([]);
  });

  it('a device feature only the remote refuses: the local side (first) is reset and renegotiates Y ∩ Z (§2.1.2)', async () => {
    // Local negotiates first and takes bits 0 and 1; the remote is offered only those
    // (the ceiling) and takes bit 0 (its table has 0 and 2). Bit 1 is in Y but not in Z:
    // the local side gets DEVICE_NEEDS_RESET and is offered {0} plus the ring bits.
    const local = new PeerDriver('local', [0, 1]);
    const remote = new PeerDriver('remote', [0, 2]);
    const r = await make(local, remote, { features: X, localFirst: true });
    await until(() => local.probes >= 2 && local.dev?.status === LIVE && remote.dev?.status === LIVE, 10_000, 'local re-probe');
    const m = r.mediator.mediated(r.vhost.device)!;
    expect(deviceFeatures(m.local)).toBe(0b1n);
    expect(deviceFeatures(m.remote)).toBe(0b1n);
    expect(m.device).toBe(0b1n);
    expect(m.ceiling).toBe(0b1n);
    // The remote never saw bit 2 offered nor bit 1 accepted by the other side as usable.
    expect(remote.dev!.deviceFeatures & 0b111n).toBe(0b011n);
    const resets = r.events.filter((e) => e.type === 'needs-reset');
    expect(resets.map((e) => e.type === 'needs-reset' && e.side)).toEqual(['local']);
    expect(r.localEvents.map((e) => e.type)).toContain('needs-reset');
    // Data flows with the mediated set.
    const back = await transfer(local, remote, [msg(1, 0), msg(1, 1)]);
    expect(back.map((b) => [...b])).toEqual([[...msg(1, 0)], [...msg(1, 1)]]);
  });

  it('a device feature only the local side refuses: the remote side (first) is reset and renegotiates', async () => {
    const local = new PeerDriver('local', [0]);
    const remote = new PeerDriver('remote', [0, 1, 2]);
    const r = await make(local, remote, { features: X, localFirst: false });
    await until(() => remote.probes >= 2 && local.dev?.status === LIVE && remote.dev?.status === LIVE, 10_000, 'remote re-probe');
    const m = r.mediator.mediated(r.vhost.device)!;
    expect(deviceFeatures(m.remote)).toBe(0b1n);
    expect(deviceFeatures(m.local)).toBe(0b1n);
    expect(m.device).toBe(0b1n);
    expect(r.events.filter((e) => e.type === 'needs-reset').map((e) => e.type === 'needs-reset' && e.side)).toEqual(['remote']);
    expect(r.remoteEvents.map((e) => e.type)).toContain('needs-reset');
    const back = await transfer(remote, local, [msg(2, 0)]);
    expect([...back[0]!]).toEqual([...msg(2, 0)]);
  });

  it('a ring feature only one side accepts (EVENT_IDX) stays on that side: no reset, each ring runs with its own', async () => {
    const local = new PeerDriver('local', [0], { dropEventIdx: true });
    const remote = new PeerDriver('remote', [0]);
    const r = await make(local, remote, { features: X });
    await until(() => local.dev?.status === LIVE && remote.dev?.status === LIVE, 10_000, 'both sides live');
    const m = r.mediator.mediated(r.vhost.device)!;
    expect(m.local & EVENT_IDX).toBe(0n);
    expect(m.remote & EVENT_IDX).toBe(EVENT_IDX);
    expect(local.rx!.eventIdx).toBe(false);
    expect(remote.rx!.eventIdx).toBe(true);
    expect(r.vhost.device.vqs[0]!.vringh!.eventIdx).toBe(true);
    expect(m.device).toBe(0b1n);
    expect(r.events.filter((e) => e.type === 'needs-reset')).toEqual([]);
    const toRemote = Array.from({ length: 300 }, (_, k) => msg(1, k));
    const toLocal = Array.from({ length: 300 }, (_, k) => msg(2, k));
    const [a, b] = await Promise.all([transfer(local, remote, toRemote), transfer(remote, local, toLocal)]);
    a.forEach((x, k) => expect([...x]).toEqual([...toRemote[k]!]));
    b.forEach((x, k) => expect([...x]).toEqual([...toLocal[k]!]));
  });
});

describe('data both ways over the loopback transport', () => {
  it('1,000 messages each way at once arrive intact and in order; the counters add up', async () => {
    const local = new PeerDriver('local', [0, 1]);
    const remote = new PeerDriver('remote', [0, 1]);
    const r = await make(local, remote, { features: X });
    await until(() => local.dev?.status === LIVE && remote.dev?.status === LIVE);
    const toRemote = Array.from({ length: 1000 }, (_, k) => msg(1, k));
    const toLocal = Array.from({ length: 1000 }, (_, k) => msg(2, k));
    const [a, b] = await Promise.all([transfer(local, remote, toRemote), transfer(remote, local, toLocal)]);
    a.forEach((x, k) => expect([...x]).toEqual([...toRemote[k]!]));
    b.forEach((x, k) => expect([...x]).toEqual([...toLocal[k]!]));
    const st = r.mediator.stats(r.vhost.device)!;
    expect(st.toRemote.buffers).toBe(1000);
    expect(st.toLocal.buffers).toBe(1000);
    expect(st.toRemote.bytes).toBe(toRemote.reduce((n, m) => n + m.length, 0));
    expect(st.toLocal.truncated).toBe(0);
    expect(r.events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('queue size: 256 by default on both sides (Jason’s figure), configurable', async () => {
    const a = await make(new PeerDriver('local'), new PeerDriver('remote'), { features: X });
    await until(() => a.mediator.localDevice(a.vhost.device)?.status === LIVE);
    expect(a.mediator.queueSize).toBe(256);
    expect(a.vhost.device.vqs.map((q) => q.num)).toEqual([256, 256]);
    expect(a.mediator.localDevice(a.vhost.device)!.vqs!.map((q) => q.num)).toEqual([256, 256]);
    const local = new PeerDriver('local');
    const remote = new PeerDriver('remote');
    const b = await make(local, remote, { features: X, mediator: { queueSize: 16 } });
    await until(() => local.dev?.status === LIVE && remote.dev?.status === LIVE);
    expect(b.vhost.device.vqs.map((q) => q.num)).toEqual([16, 16]);
    expect(local.rx!.num).toBe(16);
    expect(remote.rx!.num).toBe(16);
    // More messages than entries: the rings wrap many times.
    const back = await transfer(local, remote, Array.from({ length: 200 }, (_, k) => msg(1, k)));
    expect(back).toHaveLength(200);
  });

  it('a message larger than the receiving buffer is cut to it and counted', async () => {
    const local = new PeerDriver('local');
    const remote = new PeerDriver('remote');
    const r = await make(local, remote, { features: X });
    await until(() => local.dev?.status === LIVE && remote.dev?.status === LIVE);
    // The remote posts 512-byte buffers; the local driver sends 512 bytes in two chains of one buffer each,
    // so to force a cut, send through a raw chain of 600 bytes: two buffers in one chain.
    const tx = local.tx!;
    const a = await local.dev!.allocBuffer(300);
    const b = await local.dev!.allocBuffer(300);
    a.view.fill(0xaa);
    b.view.fill(0xbb);
    tx.addSgs([{ addr: a.addr, len: 300 }, { addr: b.addr, len: 300 }], 2, 0, a);
    tx.kick();
    await until(() => remote.received.length === 1);
    // 600 bytes into a 512-byte buffer: 300 × 0xaa, then 212 × 0xbb.
    expect(remote.received[0]!.length).toBe(512);
    expect(remote.received[0]![299]).toBe(0xaa);
    expect(remote.received[0]![300]).toBe(0xbb);
    expect(r.mediator.stats(r.vhost.device)!.toRemote.truncated).toBe(1);
  });
});

describe('resets: each side resets without the other noticing', () => {
  it('the local side’s reset: the remote stays live; messages the remote sent meanwhile wait and arrive after the re-probe', async () => {
    const local = new PeerDriver('local', [0]);
    const remote = new PeerDriver('remote', [0]);
    const r = await make(local, remote, { features: X });
    await until(() => local.dev?.status === LIVE && remote.dev?.status === LIVE);
    await transfer(remote, local, [msg(2, 0)]);
    const before = r.events.length;
    // The local driver goes away (remove → reset of the local device) and comes back.
    await r.localBus.unregisterDriver(local);
    expect(r.mediator.localDevice(r.vhost.device)!.status).toBe(S.ACKNOWLEDGE);
    for (let k = 1; k <= 5; k++) expect(remote.send(msg(2, k))).toBe(true);
    await r.remote.settle();
    const again = new PeerDriver('local-again', [0]);
    await r.localBus.registerDriver(again);
    await until(() => again.received.length === 5, 10_000, 'held messages');
    again.received.forEach((x, k) => expect([...x]).toEqual([...msg(2, k + 1)]));
    // The remote side never saw a reset.
    expect(remote.dev!.status).toBe(LIVE);
    expect(remote.removes).toBe(0);
    expect(r.vhost.device.status).toBe(LIVE);
    expect(r.events.slice(before).filter((e) => e.type === 'needs-reset')).toEqual([]);
    // And both ways work again.
    await transfer(again, remote, [msg(1, 9)]);
    await transfer(remote, again, [msg(2, 9)]);
  });

  it('the remote side’s reset: the local side stays live; traffic resumes after the remote re-probes', async () => {
    const local = new PeerDriver('local', [0]);
    const remote = new PeerDriver('remote', [0]);
    const r = await make(local, remote, { features: X });
    await until(() => local.dev?.status === LIVE && remote.dev?.status === LIVE);
    await transfer(local, remote, [msg(1, 0)]);
    const notes: number[] = [];
    r.vhost.device.registerNotifier((_d, info) => void notes.push(info.event));
    await r.remoteBus.unregisterDriver(remote); // remote remove → reset → RESET at the mediator
    expect(notes).toContain(VHOST_NOTIFY.RESET);
    expect(r.vhost.device.isReady).toBe(false);
    // Local messages sent while the remote is down wait in the local ring.
    for (let k = 1; k <= 5; k++) expect(local.send(msg(1, k))).toBe(true);
    const again = new PeerDriver('remote-again', [0]);
    await r.remoteBus.registerDriver(again);
    await until(() => again.received.length === 5, 10_000, 'held messages');
    again.received.forEach((x, k) => expect([...x]).toEqual([...msg(1, k + 1)]));
    expect(local.dev!.status).toBe(LIVE);
    expect(local.removes).toBe(0);
    expect(local.probes).toBe(1);
    await transfer(again, local, [msg(2, 3)]);
  });

  it('the remote vhost device going away unregisters the local device (the local driver’s remove runs)', async () => {
    const local = new PeerDriver('local');
    const remote = new PeerDriver('remote');
    const r = await make(local, remote, { features: X });
    await until(() => local.dev?.status === LIVE);
    const localDev = r.mediator.localDevice(r.vhost.device)!;
    await r.vhostBus.unregisterDriver(r.mediator);
    expect(local.removes).toBe(1);
    expect(localDev.bus).toBeUndefined();
    expect(r.mediator.remotes).toEqual([]);
  });
});

describe('VirtioMediator options: argument checks name the argument', () => {
  it('TypeError / RangeError', () => {
    const bus = new VirtioBus();
    expect(() => new VirtioMediator(undefined as never)).toThrow(TypeError);
    expect(() => new VirtioMediator({ bus, devices: [] })).toThrow(/options\.devices/);
    // RING_PACKED (34) is a transport bit the mediator does not implement.
    expect(() => new VirtioMediator({ bus, devices: [{ deviceId: RPMSG, features: 1n << 34n }] })).toThrow(/transport bits 0x400000000/);
    expect(() => new VirtioMediator({ bus, devices: [{ deviceId: RPMSG, features: 1n }], queueSize: 300 })).toThrow(/options\.queueSize must be a power of two/);
    expect(() => new VirtioMediator({ bus, devices: [{ deviceId: RPMSG, features: 1 as never }] })).toThrow(TypeError);
    expect(() => new VirtioMediator({ bus, devices: [{ deviceId: RPMSG, features: 1n, queues: 3 }] })).toThrow(/routes must be given/);
    expect(
      () =>
        new VirtioMediator({
          bus,
          devices: [{ deviceId: RPMSG, features: 1n, routes: [{ from: 'local', fromQueue: 1, toQueue: 0 }, { from: 'local', fromQueue: 1, toQueue: 1 }] }],
        }),
    ).toThrow(/already used by another route/);
    const m = new VirtioMediator({ bus, devices: [{ deviceId: RPMSG, features: X }, { deviceId: 3, features: 1n }] });
    expect(m.idTable).toEqual([
      { vendor: 0xffffffff, device: RPMSG },
      { vendor: 0xffffffff, device: 3 },
    ]);
    expect(m.features).toBe(X | 1n);
  });
});
