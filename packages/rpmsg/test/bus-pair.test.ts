import { describe, expect, it } from 'vitest';
import { RPMSG_ADDR_ANY, type RpmsgChannel } from '@x/rpmsg';
import { busPair } from './fake-loopback.js';
import { text, until } from './helpers.js';

describe('VirtioRpmsgBus ↔ VhostRpmsgBus through vhost-core\'s fake transport (rfc-protocol §2.3, §2.9)', () => {
  it('RFC flow: configfs channel → DRIVER_OK → NS CREATE|AS_ANNOUNCE → channel on the RC → AS ASSIGN binds the EP → both talk', async () => {
    const p = await busPair();
    const epGot: string[] = [];
    const rcGot: string[] = [];
    p.ep.registerDriver({ name: 'sample', idTable: ['rpmsg-client-sample'], callback: (ch, d) => (epGot.push(text(d)), void ch.endpoint!.send('pong')) });
    p.rc.registerDriver({ name: 'sample', idTable: ['rpmsg-client-sample'], probe: (ch) => void ch.endpoint!.send('ping'), callback: (_c, d) => rcGot.push(text(d)) });
    await p.tree.mkdir('/rpmsg/channel/rpmsg-client-sample/c1');
    await p.tree.link(`/rpmsg/virtproc/${p.epDevice.name}`, '/rpmsg/channel/rpmsg-client-sample/c1');
    const dev = await p.connect();
    await until(() => rcGot.length === 1, 5000);
    expect(epGot).toEqual(['ping']);
    expect(rcGot).toEqual(['pong']);
    const rcCh = p.rc.virtprocOf(dev)!.channels[0]!;
    const epCh = p.ep.virtprocOf(p.epDevice)!.channels[0]!;
    expect(rcCh).toMatchObject({ name: 'rpmsg-client-sample', origin: 'remote', dst: epCh.src });
    expect(epCh.dst).toBe(rcCh.src);
    await p.close();
  });

  it('unlinking on the EP removes the channel on the RC; the RC\'s AS FREE arrives for a channel already gone (no drop)', async () => {
    const p = await busPair();
    const removed: RpmsgChannel[] = [];
    p.rc.on('virtproc', (vp) => vp.on('channelRemoved', (c) => removed.push(c)));
    p.ep.registerDriver({ name: 's', idTable: ['svc'], callback: () => {} });
    p.rc.registerDriver({ name: 's', idTable: ['svc'], callback: () => {} });
    await p.tree.mkdir('/rpmsg/channel/svc/c1');
    await p.tree.link(`/rpmsg/virtproc/${p.epDevice.name}`, '/rpmsg/channel/svc/c1');
    const dev = await p.connect();
    const epVp = p.ep.virtprocOf(p.epDevice)!;
    await until(() => epVp.channels[0]?.dst !== RPMSG_ADDR_ANY && epVp.channels[0]?.dst !== undefined, 5000);
    await p.tree.unlink(`/rpmsg/virtproc/${p.epDevice.name}`, 'c1');
    await until(() => removed.length === 1, 5000);
    expect(p.rc.virtprocOf(dev)!.channels).toEqual([]);
    await until(() => epVp.stats.staleControl === 2, 5000);
    expect(epVp.stats.dropped).toBe(0);
    await p.close();
  });

  it('the RC unregistering its device takes the EP\'s link down (reset)', async () => {
    const p = await busPair();
    await p.connect();
    expect(p.ep.virtprocs).toHaveLength(1);
    await p.close();
    expect(p.ep.virtprocs).toHaveLength(0);
  });
});
