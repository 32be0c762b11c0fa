import { afterEach, describe, expect, it } from 'vitest';
import { VIRTIO_CONFIG_S, VirtioBus, type VirtioBusEvent } from '@x/virtio-core';
import { ConfigTree, VHOST_NOTIFY, VhostBus, VhostConfigFs, type VhostEventInfo } from '@x/vhost-core';
import { attachVhost, attachVirtio, createLoopbackLink, openVhost, type LoopbackVhostTransport, type LoopbackVirtioTransport } from '@x/transport-loopback';
import { VhostEchoDriver } from '@x/transport-loopback/testing';
import { EchoClient, message } from './helpers.js';

const S = VIRTIO_CONFIG_S;
const RPMSG = 7;

interface Pair {
  virtio: LoopbackVirtioTransport;
  vhost: LoopbackVhostTransport;
  client: EchoClient;
  echo: VhostEchoDriver;
  virtioBus: VirtioBus;
  vhostBus: VhostBus;
  events: VirtioBusEvent[];
  vhostEvents: VhostEventInfo[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pair(options: { dropEventIdx?: boolean; queueSize?: number } = {}): Promise<Pair> {
  const link = createLoopbackLink({ deviceId: RPMSG });
  const vhostBus = new VhostBus();
  const echo = new VhostEchoDriver({ deviceId: RPMSG, ...(options.queueSize === undefined ? {} : { queueSize: options.queueSize }) });
  await vhostBus.registerDriver(echo);
  const vhost = await attachVhost(link, vhostBus);
  const vhostEvents: VhostEventInfo[] = [];
  vhost.device.registerNotifier((_d, info) => void vhostEvents.push(info));
  const events: VirtioBusEvent[] = [];
  const virtioBus = new VirtioBus({ onEvent: (e) => events.push(e) });
  const client = new EchoClient(RPMSG, { dropEventIdx: options.dropEventIdx ?? false });
  await virtioBus.registerDriver(client);
  const virtio = await attachVirtio(link, virtioBus);
  cleanups.push(async () => {
    await virtio.close();
    await vhost.close();
  });
  return { virtio, vhost, client, echo, virtioBus, vhostBus, events, vhostEvents };
}

describe('virtio driver ↔ vhost driver over a loopback link (one thread)', () => {
  it('§3.1.1: the virtio side probes through the registers; both sides agree on status and features', async () => {
    const p = await pair();
    const dev = p.virtio.device!;
    expect(dev.driver).toBe(p.client);
    expect(dev.status).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
    // The echo driver offers VERSION_1 | EVENT_IDX | INDIRECT_DESC = 2^32 + 2^29 + 2^28.
    expect(dev.deviceFeatures).toBe(0x1_3000_0000n);
    expect(dev.features).toBe(0x1_3000_0000n);
    expect(p.vhost.device.features).toBe(0x1_3000_0000n);
    expect(p.vhost.device.status).toBe(0x0f);
    expect(p.vhost.device.isReady).toBe(true);
    // The device's queues default to 256 entries (VhostDeviceConfig.queueSize); the driver took them whole.
    expect(dev.vqs!.map((q) => q.num)).toEqual([256, 256]);
    expect(p.events.filter((e) => e.type === 'error' || e.type === 'probe-failed')).toEqual([]);
  });

  for (const dropEventIdx of [false, true]) {
    it(`echo end to end: 2,000 messages come back intact and in order (EVENT_IDX ${dropEventIdx ? 'off' : 'on'}, §2.7.7, §2.7.10)`, async () => {
      const p = await pair({ dropEventIdx });
      expect(p.virtio.device!.features & (1n << 29n)).toBe(dropEventIdx ? 0n : 1n << 29n);
      const msgs = Array.from({ length: 2000 }, (_, k) => message(k));
      const replies = await p.client.echo(msgs);
      replies.forEach((r, k) => expect([...r]).toEqual([...msgs[k]!]));
      expect(p.echo.echoed).toBe(2000);
      expect(p.echo.lastError).toBeUndefined();
      await p.virtio.settle();
      // Suppression works both ways: fewer doorbells and interrupts than buffers.
      expect(p.virtio.stats.kicks).toBeGreaterThan(0);
      expect(p.vhost.stats.interrupts).toBeGreaterThan(0);
    });
  }

  it('a reset mid-traffic (§2.1, §3.1.1): the device gets RESET, its rings go quiet, and a re-probe echoes again', async () => {
    const p = await pair();
    const dev = p.virtio.device!;
    // Keep 16 messages in flight, then reset before all come back.
    for (let k = 0; k < 16; k++) expect(p.client.send(message(k))).toBe(true);
    await dev.reset();
    expect(await dev.readStatus()).toBe(0);
    expect(p.vhost.device.status).toBe(0);
    expect(p.vhost.device.isReady).toBe(false);
    expect(p.vhost.device.vqs.every((q) => !q.isAttached)).toBe(true);
    expect(p.vhostEvents.at(-1)?.event).toBe(VHOST_NOTIFY.RESET);
    expect(p.echo.resets).toBeGreaterThanOrEqual(1);
    // Re-initialise: unbind (remove detaches what is left) and bind again.
    await p.virtioBus.unregisterDriver(p.client);
    const again = new EchoClient(RPMSG, { name: 'echo-client-2' });
    await p.virtioBus.registerDriver(again);
    expect(dev.driver).toBe(again);
    expect(dev.status).toBe(0x0f);
    const msgs = Array.from({ length: 300 }, (_, k) => message(k + 1000));
    const replies = await again.echo(msgs);
    replies.forEach((r, k) => expect([...r]).toEqual([...msgs[k]!]));
    expect(p.events.filter((e) => e.type === 'error' || e.type === 'probe-failed')).toEqual([]);
  });

  it('a reset while the echo is running (the device is mid-batch on the other side of the doorbell) leaves no stale chain', async () => {
    const p = await pair({ queueSize: 16 });
    const dev = p.virtio.device!;
    const msgs = Array.from({ length: 500 }, (_, k) => message(k));
    const running = p.client.echo(msgs, 5_000).catch((e: unknown) => e);
    // Let some traffic flow, then reset under it.
    while (p.client.replies.length < 50) await new Promise((r) => setImmediate(r));
    await p.virtioBus.unregisterDriver(p.client); // remove → dev.reset() with buffers in flight
    expect(await running).toBeInstanceOf(Error);
    // Core reset the device and, as the device stays registered, acknowledged it again.
    expect(p.vhost.device.status).toBe(S.ACKNOWLEDGE);
    expect(p.vhostEvents.some((e) => e.event === VHOST_NOTIFY.RESET)).toBe(true);
    const again = new EchoClient(RPMSG, { name: 'echo-client-2' });
    await p.virtioBus.registerDriver(again);
    expect(dev.driver).toBe(again);
    const more = Array.from({ length: 100 }, (_, k) => message(k + 7));
    const replies = await again.echo(more);
    replies.forEach((r, k) => expect([...r]).toEqual([...more[k]!]));
    expect(p.echo.lastError).toBeUndefined();
  });

  it('§2.1.2: the vhost driver going away sets DEVICE_NEEDS_RESET; virtio core resets, and the re-probe fails with a typed error', async () => {
    const p = await pair();
    const dev = p.virtio.device!;
    await p.vhostBus.unregisterDriver(p.echo); // remove → delVqs: DeviceID 0, NEEDS_RESET, config interrupt
    const deadline = Date.now() + 10_000;
    while (!p.events.some((e) => e.type === 'probe-failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(p.events.map((e) => e.type)).toContain('needs-reset');
    const failed = p.events.find((e) => e.type === 'probe-failed');
    expect(failed).toBeDefined();
    // The queues are gone: QueueNumMax reads 0 (VIRTIO 1.2 §4.2.3.2).
    expect(String((failed as { error: Error }).error.message)).toMatch(/NO_QUEUE/);
    expect(dev.driver).toBeUndefined();
  });

  it('config space: the device writes it, the generation moves, the driver gets a configuration interrupt (§2.5.1, §4.2.2)', async () => {
    const p = await pair();
    const dev = p.virtio.device!;
    let changed = 0;
    (p.client as { configChanged?: () => void }).configChanged = () => void changed++;
    const g0 = await p.virtio.ops.generation!();
    await p.vhost.device.writeConfig(4, Uint8Array.of(0x78, 0x56, 0x34, 0x12));
    // Two steps per update (odd while writing, even after): g0 + 2.
    expect(await p.virtio.ops.generation!()).toBe(g0 + 2);
    // Little-endian u32 at offset 4: bytes 78 56 34 12 → 0x12345678 (§2.5).
    expect(await dev.readConfig32(4)).toBe(0x12345678);
    await p.virtio.settle();
    expect(p.virtio.stats.configInterrupts).toBe(1);
    expect(changed).toBe(1);
    // The driver writes config (after FEATURES_OK, §3.1.1); the device reads the bytes.
    await dev.writeConfig16(0, 0xbeef);
    const back = new Uint8Array(2);
    await p.vhost.device.readConfig(0, back);
    expect([...back]).toEqual([0xef, 0xbe]);
  });

  it('one driver and one device per link: a second attach of either side is ALREADY_ATTACHED; close releases it', async () => {
    const link = createLoopbackLink({ deviceId: RPMSG });
    const vhostBus = new VhostBus();
    await vhostBus.registerDriver(new VhostEchoDriver({ deviceId: RPMSG }));
    const vhost = await attachVhost(link, vhostBus);
    await expect(attachVhost(link, new VhostBus())).rejects.toMatchObject({ code: 'ALREADY_ATTACHED' });
    const a = await attachVirtio(link, new VirtioBus());
    await expect(attachVirtio(link, new VirtioBus())).rejects.toMatchObject({ code: 'ALREADY_ATTACHED' });
    await a.close();
    const b = await attachVirtio(link, new VirtioBus());
    await b.close();
    await vhost.close();
    expect(vhost.closed).toBe(true);
    // Idempotent.
    await vhost.close();
  });
});

describe('the configuration tree binds the loopback device (RFC patch 6)', () => {
  it('openVhost with configFs adds vhost-transport/<name>; linking a client item registers the device; close removes it', async () => {
    const tree = new ConfigTree();
    const vhostBus = new VhostBus();
    const cfs = new VhostConfigFs(tree, vhostBus);
    await vhostBus.registerDriver(new VhostEchoDriver({ deviceId: RPMSG }));
    const link = createLoopbackLink({ deviceId: RPMSG });
    const vhost = openVhost(link, { name: 'lb0', configFs: cfs });
    expect(vhost.device.bus).toBeUndefined();
    // A second transport of the same name is refused, and the link is given back.
    const other = createLoopbackLink({ deviceId: RPMSG });
    expect(() => openVhost(other, { name: 'lb0', configFs: cfs })).toThrow(expect.objectContaining({ code: 'CONFIG_PATH' }));
    const again = openVhost(other);
    await again.close();
    await tree.load({
      vhost: {
        'vhost-client': { 'vhost-echo': { 'ffffffff:00000007': { queue_size: 32 } } },
        'vhost-transport': { lb0: { 'ffffffff:00000007': { $link: '/vhost/vhost-client/vhost-echo/ffffffff:00000007' } } },
      },
    });
    expect(vhost.device.bus).toBe(vhostBus);
    const bus = new VirtioBus();
    const client = new EchoClient(RPMSG);
    await bus.registerDriver(client);
    const virtio = await attachVirtio(link, bus);
    expect(virtio.device!.vqs!.map((q) => q.num)).toEqual([32, 32]);
    const replies = await client.echo([message(3)]);
    expect([...replies[0]!]).toEqual([...message(3)]);
    await virtio.close();
    await vhost.close();
    expect(vhost.device.bus).toBeUndefined();
    expect(cfs.transports.hasEntry('lb0')).toBe(false);
  });
});
