import { describe, expect, it } from 'vitest';
import { ConfigGroup, ConfigTree, VHOST_DEV_ANY_ID, VhostBus, VhostConfigFs, vhostClientItemName, type ConfigJson } from '@x/vhost-core';
import { FakeVhostTransport } from '@x/vhost-core/testing';
import { recordingDriver } from './helpers.js';

const ANY = VHOST_DEV_ANY_ID;
const RPMSG_ITEM = '/vhost/vhost-client/rpmsg/ffffffff:00000007';
const FAKE = '/vhost/vhost-transport/fake0';

async function setup(driverFeatures = 0x3n) {
  const tree = new ConfigTree();
  const bus = new VhostBus();
  const cfs = new VhostConfigFs(tree, bus);
  const state = { sizes: [] as number[] };
  const drv = recordingDriver('rpmsg', [{ vendor: ANY, device: 7 }], {
    features: driverFeatures,
    probe: async (d) => {
      await d.setFeatures(driverFeatures);
      state.sizes = (await d.createVqs([{ name: 'rx' }, { name: 'tx' }])).map((v) => v.num);
    },
  });
  await bus.registerDriver(drv);
  const t = new FakeVhostTransport({ name: 'fake0', configFs: cfs });
  return { tree, bus, cfs, drv, t, state };
}

describe('the vhost configuration subtree (RFC patch 6, vhost_cfs.c)', () => {
  it('names client items %08x:%08x (vendor, device), one per id table entry, like vhost_cfs_add_driver_item', async () => {
    // vhost_rpmsg's entry {VIRTIO_DEV_ANY_ID, VIRTIO_ID_RPMSG = 7} → "ffffffff:00000007" (rfc-protocol §2.8).
    expect(vhostClientItemName({ vendor: ANY, device: 7 })).toBe('ffffffff:00000007');
    // SigmaStar's ids 0x104c:0xb500, each zero-padded to 8 hex digits.
    expect(vhostClientItemName({ vendor: 0x104c, device: 0xb500 })).toBe('0000104c:0000b500');
    const { tree, bus } = await setup();
    const two = recordingDriver('two', [
      { vendor: 0x104c, device: 0xb500 },
      { vendor: ANY, device: 1 },
      { vendor: 0x104c, device: 0xb500 },
    ]);
    await bus.registerDriver(two);
    expect([...(tree.get('/vhost/vhost-client/two') as ConfigGroup).children.keys()]).toEqual(['0000104c:0000b500', 'ffffffff:00000001']);
    expect(tree.find(RPMSG_ITEM)).toBeDefined();
    expect(tree.find(FAKE)).toBeDefined();
    await bus.unregisterDriver(two);
    expect(tree.find('/vhost/vhost-client/two')).toBeUndefined();
  });

  it('groups exist for drivers registered before the subtree was made', async () => {
    const bus = new VhostBus();
    await bus.registerDriver(recordingDriver('early'));
    const tree = new ConfigTree();
    const cfs = new VhostConfigFs(tree, bus);
    expect(tree.find('/vhost/vhost-client/early/ffffffff:00000007')).toBeDefined();
    cfs.dispose();
    await bus.registerDriver(recordingDriver('late'));
    expect(tree.find('/vhost/vhost-client/late')).toBeUndefined();
  });

  it('linking a transport item to a client item registers the device with its ids; unlinking unregisters it', async () => {
    const { tree, bus, drv, t } = await setup();
    expect(t.device.bus).toBeUndefined();
    expect(tree.read(`${FAKE}/device`)).toBe('');
    await tree.link(FAKE, RPMSG_ITEM);
    expect(t.device.bus).toBe(bus);
    expect(t.device.id).toEqual({ vendor: ANY, device: 7 });
    expect(t.device.driver).toBe(drv);
    expect(tree.read(`${FAKE}/device`)).toBe('vhost0');
    await tree.unlink(FAKE, 'ffffffff:00000007');
    expect(t.device.bus).toBeUndefined();
    expect(drv.log).toEqual(['probe vhost0', 'remove vhost0']);
    expect(tree.read(`${FAKE}/device`)).toBe('');
  });

  it('refuses a second link from a transport item (BUSY) and a link to anything but a client item (CONFIG_LINK)', async () => {
    const { tree, bus, cfs } = await setup();
    await bus.registerDriver(recordingDriver('net', [{ vendor: ANY, device: 1 }]));
    await tree.link(FAKE, RPMSG_ITEM);
    await expect(tree.link(FAKE, '/vhost/vhost-client/net/ffffffff:00000001')).rejects.toMatchObject({
      code: 'BUSY',
      path: `${FAKE}/ffffffff:00000001`,
    });
    expect([...tree.get(FAKE).links.keys()]).toEqual(['ffffffff:00000007']);
    const t1 = new FakeVhostTransport({ name: 'fake1' });
    cfs.addTransport(t1.device);
    await expect(tree.link('/vhost/vhost-transport/fake1', '/vhost/vhost-client/rpmsg')).rejects.toMatchObject({
      code: 'CONFIG_LINK',
      path: '/vhost/vhost-transport/fake1/rpmsg',
    });
    await expect(tree.link('/vhost/vhost-transport/fake1', FAKE)).rejects.toMatchObject({ code: 'CONFIG_LINK' });
    // Two transports may link to the same client item: two devices, vhost0 and vhost1.
    await tree.link('/vhost/vhost-transport/fake1', RPMSG_ITEM);
    expect(t1.device.name).toBe('vhost1');
    // A device registered by code cannot also be registered by a link.
    const t2 = new FakeVhostTransport({ name: 'fake2', id: { vendor: 1, device: 9 } });
    cfs.addTransport(t2.device);
    await bus.registerDevice(t2.device);
    await expect(tree.link('/vhost/vhost-transport/fake2', RPMSG_ITEM)).rejects.toMatchObject({ code: 'BUSY' });
  });

  it.each([
    ['queue_size', 300, /300 breaks the rule: queue_size must be a power of two in 1\.\.32768 \(VIRTIO 1\.2 §2\.7\)/],
    ['queue_size', 65536, /power of two in 1\.\.32768/],
    ['queue_size', 0, /power of two/],
    ['buffer_size', 0, /buffer_size must be an integer in 1\.\.2\^32-1/],
    ['buffer_count', 1.5, /buffer_count must be an integer/],
    ['features', '0x4', /features must be a subset of what rpmsg supports \(0x3\); extra bits 0x4/],
    ['features', 'lots', /must be a non-negative integer/],
  ])('attribute %s = %j is refused with CONFIG_VALUE naming the attribute path', async (name, value, rule) => {
    const { tree } = await setup();
    let err: unknown;
    try {
      await tree.set(RPMSG_ITEM, { [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CONFIG_VALUE', path: `${RPMSG_ITEM}/${name}` });
    expect((err as Error).message).toMatch(rule);
  });

  it('checks buffer_count against queue_size across attributes, and stores a batch all or nothing', async () => {
    const { tree } = await setup();
    await expect(tree.set(RPMSG_ITEM, { queue_size: 64, buffer_count: 128 })).rejects.toMatchObject({
      code: 'CONFIG_VALUE',
      path: `${RPMSG_ITEM}/buffer_count`,
      message: expect.stringMatching(/buffer_count 128 must not exceed queue_size 64/),
    });
    expect(tree.read(`${RPMSG_ITEM}/queue_size`)).toBe(256);
    expect(await tree.set(RPMSG_ITEM, { queue_size: 64, buffer_count: 64 })).toEqual(['queue_size', 'buffer_count']);
  });

  it('the linked device gets the item configuration; attributes are fixed while linked (BUSY)', async () => {
    const { tree, t, state } = await setup(0x3n);
    await tree.set(RPMSG_ITEM, { queue_size: 64, buffer_count: 32, buffer_size: 1024, features: 1n });
    await tree.link(FAKE, RPMSG_ITEM);
    expect(t.device.config).toEqual({ queueSize: 64, bufferCount: 32, bufferSize: 1024, features: 1n });
    // createVqs with no size took queue_size; setFeatures(0x3) offered 0x3 & 0x1.
    expect(state.sizes).toEqual([64, 64]);
    expect(t.device.offeredFeatures).toBe(1n);
    expect(await t.peer.readDeviceFeatures()).toBe(1n);
    expect(await t.peer.queueSize(0)).toBe(64);
    await expect(tree.set(RPMSG_ITEM, { queue_size: 128 })).rejects.toMatchObject({ code: 'BUSY', path: RPMSG_ITEM });
    // Writing the value it already has is not a change (load of a dump must be a no-op).
    await tree.load({ vhost: { 'vhost-client': { rpmsg: { 'ffffffff:00000007': { queue_size: 64 } } } } });
  });

  it('unregistering the driver drops the links to its items, which unregisters the devices', async () => {
    const { tree, bus, drv, t } = await setup();
    await tree.link(FAKE, RPMSG_ITEM);
    await bus.unregisterDriver(drv);
    expect(tree.find('/vhost/vhost-client/rpmsg')).toBeUndefined();
    expect(tree.get(FAKE).links.size).toBe(0);
    expect(t.device.bus).toBeUndefined();
    expect(bus.devices).toEqual([]);
  });

  it('removeTransport unlinks (unregisters) first, then removes the item', async () => {
    const { tree, cfs, t } = await setup();
    await tree.link(FAKE, RPMSG_ITEM);
    await cfs.removeTransport('fake0');
    expect(t.device.bus).toBeUndefined();
    expect(tree.find(FAKE)).toBeUndefined();
    await expect(cfs.removeTransport('fake0')).rejects.toMatchObject({ code: 'CONFIG_PATH', path: FAKE });
  });

  it('a configuration file round-trips: load → dump → load into a fresh system → the same dump', async () => {
    const doc: ConfigJson = {
      $comment: 'rpmsg over the fake transport, 64-entry queues, F_NS only',
      vhost: {
        'vhost-client': { rpmsg: { 'ffffffff:00000007': { queue_size: 64, buffer_count: 0, buffer_size: 512, features: '0x1' } } },
        'vhost-transport': { fake0: { 'ffffffff:00000007': { $link: RPMSG_ITEM } } },
      },
    };
    const a = await setup();
    await a.tree.load(doc);
    expect(a.t.device.name).toBe('vhost0');
    const dumped = a.tree.dump();
    const { $comment: _c, ...withoutComment } = doc;
    expect(dumped).toEqual(withoutComment);
    const b = await setup();
    await b.tree.load(JSON.parse(JSON.stringify(dumped)));
    expect(b.tree.dump()).toEqual(dumped);
    expect(b.t.device.bus).toBe(b.bus);
    expect(b.t.device.config.queueSize).toBe(64);
    // Loading it again changes nothing and links nothing twice.
    await b.tree.load(dumped);
    expect(b.drv.log).toEqual(['probe vhost0']);
  });

  it('a bad configuration file names the path and the rule, and leaves the system as it was', async () => {
    const s = await setup();
    const before = s.tree.dump();
    const bad: ConfigJson = {
      vhost: {
        'vhost-client': { rpmsg: { 'ffffffff:00000007': { queue_size: 128 } } },
        'vhost-transport': { fake0: { 'ffffffff:00000008': { $link: '/vhost/vhost-client/rpmsg/ffffffff:00000008' } } },
      },
    };
    await expect(s.tree.load(bad)).rejects.toMatchObject({
      code: 'CONFIG_LINK',
      path: FAKE,
      message: expect.stringMatching(/the link target \/vhost\/vhost-client\/rpmsg\/ffffffff:00000008 does not exist/),
    });
    expect(s.tree.dump()).toEqual(before);
    const worse: ConfigJson = { vhost: { 'vhost-client': { rpmsg: { 'ffffffff:00000007': { queue_size: 100 } } } } };
    await expect(s.tree.load(worse)).rejects.toMatchObject({ code: 'CONFIG_VALUE', path: `${RPMSG_ITEM}/queue_size` });
    const unknown: ConfigJson = { vhost: { 'vhost-transport': { ntb0: {} } } };
    await expect(s.tree.load(unknown)).rejects.toMatchObject({
      code: 'CONFIG_PATH',
      path: '/vhost/vhost-transport/ntb0',
      message: expect.stringMatching(/does not allow creating items/),
    });
    // A link made earlier in the same document is undone: the device is unregistered again.
    const second: ConfigJson = {
      vhost: {
        'vhost-transport': {
          fake0: { a: { $link: RPMSG_ITEM }, b: { $link: RPMSG_ITEM } },
        },
      },
    };
    await expect(s.tree.load(second)).rejects.toMatchObject({ code: 'BUSY', path: `${FAKE}/b` });
    expect(s.t.device.bus).toBeUndefined();
    expect(s.drv.log).toEqual(['probe vhost0', 'remove vhost0']);
    expect(s.tree.dump()).toEqual(before);
  });
});
