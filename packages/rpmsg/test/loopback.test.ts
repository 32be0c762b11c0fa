import { describe, expect, it } from 'vitest';
import { RPMSG_AS_ADDR, RPMSG_NS_ADDR } from '@x/rpmsg';
import { loopbackPair } from './loopback-link.js';
import { text, until } from './helpers.js';

describe('VirtioRpmsgBus ↔ VhostRpmsgBus over @x/transport-loopback (issue 4, rfc-protocol §2.3 / §2.9)', () => {
  it('configured channel announced at DRIVER_OK, bound by AS, then 1,000 messages each way in order', async () => {
    const p = await loopbackPair();
    const atEp: string[] = [];
    const atRc: string[] = [];
    p.ep.registerDriver({ name: 'svc', idTable: ['svc'], callback: (_ch, d) => atEp.push(text(d)) });
    p.rc.registerDriver({ name: 'svc', idTable: ['svc'], callback: (_ch, d) => atRc.push(text(d)) });
    await p.tree.mkdir('/rpmsg/channel/svc/c1');
    await p.tree.link(`/rpmsg/virtproc/${p.epDevice.name}`, '/rpmsg/channel/svc/c1');
    const dev = await p.connect();
    const rcVp = p.rc.virtprocOf(dev)!;
    const epVp = p.ep.virtprocOf(p.epDevice)!;
    await until(() => rcVp.channels.length === 1 && epVp.channels[0]?.dst === rcVp.channels[0]?.src, 10_000);
    const rcCh = rcVp.channels[0]!;
    const epCh = epVp.channels[0]!;
    expect(rcCh.dst).toBe(epCh.src);
    expect(p.tree.read('/rpmsg/channel/svc/c1/dst')).toBe(rcCh.src);
    const n = 1000;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      sends.push(rcCh.endpoint!.send(`rc${i}`));
      sends.push(epCh.endpoint!.send(`ep${i}`));
    }
    await Promise.all(sends);
    await until(() => atEp.length === n && atRc.length === n, 20_000);
    expect(atEp).toEqual(Array.from({ length: n }, (_, i) => `rc${i}`));
    expect(atRc).toEqual(Array.from({ length: n }, (_, i) => `ep${i}`));
    expect(epVp.endpoint(RPMSG_NS_ADDR)!.stats.rxMessages).toBe(1);
    expect(epVp.endpoint(RPMSG_AS_ADDR)!.stats.rxMessages).toBe(1);
    expect(epVp.stats.dropped + rcVp.stats.dropped).toBe(0);
    await p.close();
  });

  it('the RC going away takes the EP link down; reattaching brings the configured channel back', async () => {
    const p = await loopbackPair();
    p.ep.registerDriver({ name: 'svc', idTable: ['svc'], callback: () => {} });
    await p.tree.mkdir('/rpmsg/channel/svc/c1');
    await p.tree.link(`/rpmsg/virtproc/${p.epDevice.name}`, '/rpmsg/channel/svc/c1');
    await p.connect();
    await until(() => p.ep.virtprocs.length === 1, 10_000);
    await p.disconnect();
    await until(() => p.ep.virtprocs.length === 0, 10_000);
    expect(p.tree.read(`/rpmsg/virtproc/${p.epDevice.name}/state`)).toBe('down');
    expect(p.tree.read('/rpmsg/channel/svc/c1/state')).toBe('BUSY');
    const dev = await p.connect();
    await until(() => p.rc.virtprocOf(dev)?.channels.length === 1, 10_000);
    expect(p.rc.virtprocOf(dev)!.channels[0]!.name).toBe('svc');
    await p.close();
  });
});
