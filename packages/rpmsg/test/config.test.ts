import { describe, expect, it } from 'vitest';
import {
  RPMSG_ADDR_ANY,
  rpmsgChannelItem,
  rpmsgChannelItemStatus,
  rpmsgChannelLink,
  rpmsgChannelUnlink,
  rpmsgVirtprocAttach,
  rpmsgVirtprocDetach,
  rpmsgVirtprocItem,
} from '@x/rpmsg';
import { createRpmsgPair } from '@x/rpmsg/testing';
import { collect, until } from './helpers.js';

describe('rpmsg configuration subtree logic (RFC patch 9, rfc-protocol §2.8)', () => {
  it('linking channel/<name>/<cN> to virtproc/<dev> before the link is up creates the channel at DRIVER_OK (attach)', async () => {
    const { driver, device, close } = createRpmsgPair();
    const item = rpmsgChannelItem('rpmsg-client-sample', 'c1');
    const vp = rpmsgVirtprocItem('vhost0');
    expect(rpmsgChannelItemStatus(item)).toBe('FREE');
    rpmsgChannelLink(item, vp);
    expect(rpmsgChannelItemStatus(item)).toBe('BUSY');
    expect(item.channel).toBeUndefined();
    device.registerDriver({ name: 'sample', idTable: ['rpmsg-client-sample'], callback: () => {} });
    rpmsgVirtprocAttach(vp, device);
    expect(item.channel).toMatchObject({ name: 'rpmsg-client-sample', origin: 'local', announce: true });
    // Announced: the virtio side gets the channel.
    await until(() => driver.channels.length === 1);
    expect(driver.channels[0]!.dst).toBe(item.channel!.src);
    close();
  });

  it('linking while the link is up creates the channel at once; a second link of the item is refused with BUSY', () => {
    const { device, close } = createRpmsgPair();
    const vp = rpmsgVirtprocItem('vhost0');
    rpmsgVirtprocAttach(vp, device);
    const item = rpmsgChannelItem('svc', 'c1');
    rpmsgChannelLink(item, vp);
    expect(device.channels.map((c) => c.name)).toEqual(['svc']);
    expect(() => rpmsgChannelLink(item, vp)).toThrow(expect.objectContaining({ code: 'BUSY' }));
    expect(() => rpmsgChannelLink(item, rpmsgVirtprocItem('vhost1'))).toThrow(expect.objectContaining({ code: 'BUSY' }));
    close();
  });

  it('unlinking deletes the channel (announcing the removal) and frees the item', async () => {
    const { driver, device, close } = createRpmsgPair();
    device.registerDriver({ name: 'd', idTable: ['svc'], callback: () => {} });
    const vp = rpmsgVirtprocItem('vhost0');
    rpmsgVirtprocAttach(vp, device);
    const item = rpmsgChannelItem('svc', 'c1');
    rpmsgChannelLink(item, vp);
    await until(() => driver.channels.length === 1);
    rpmsgChannelUnlink(item, vp);
    expect(rpmsgChannelItemStatus(item)).toBe('FREE');
    expect(device.channels).toEqual([]);
    await until(() => driver.channels.length === 0);
    expect(() => rpmsgChannelUnlink(item, vp)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    close();
  });

  it('two items of one channel name give two channels only if they can coexist; a duplicate becomes a warning at attach', () => {
    const { device, close } = createRpmsgPair();
    const ev = collect(device);
    const vp = rpmsgVirtprocItem('vhost0');
    rpmsgChannelLink(rpmsgChannelItem('svc', 'c1'), vp);
    rpmsgChannelLink(rpmsgChannelItem('svc', 'c2'), vp);
    rpmsgVirtprocAttach(vp, device);
    // Linux rpmsg_find_device: src and dst ANY match any channel of that name.
    expect(device.channels).toHaveLength(1);
    expect(ev.warnings.map((e) => e.code)).toEqual(['CHANNEL_EXISTS']);
    close();
  });

  it('detach (link down) keeps the items linked for the next attach', () => {
    const first = createRpmsgPair();
    const vp = rpmsgVirtprocItem('vhost0');
    const item = rpmsgChannelItem('svc', 'c1');
    rpmsgChannelLink(item, vp);
    rpmsgVirtprocAttach(vp, first.device);
    expect(() => rpmsgVirtprocAttach(vp, first.device)).toThrow(expect.objectContaining({ code: 'BUSY' }));
    first.close();
    rpmsgVirtprocDetach(vp);
    expect(item.channel).toBeUndefined();
    expect(rpmsgChannelItemStatus(item)).toBe('BUSY');
    const second = createRpmsgPair();
    rpmsgVirtprocAttach(vp, second.device);
    expect(item.channel?.dst).toBe(RPMSG_ADDR_ANY);
    second.close();
  });
});
