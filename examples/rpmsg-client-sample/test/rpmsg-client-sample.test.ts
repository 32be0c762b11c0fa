import { describe, expect, it } from 'vitest';
import { main } from '../src/main.js';

const MSG = JSON.stringify('hello world!');

/**
 * Linux samples/rpmsg/rpmsg_client_sample.c with RFC patches 15/16 on both sides: each
 * side sends "hello world!" once it may (the EP only after AS binds its dst), answers
 * every message, and stops after receiving 100.
 */
describe('rpmsg client sample (RFC patches 15/16) between VirtioRpmsgBus and VhostRpmsgBus', () => {
  it('each side receives exactly 100 messages, numbered 1..100 in order, then says goodbye', async () => {
    const r = await main({ firstDelayMs: 5, pollMs: 1 });
    for (const [side, log] of [
      ['virtio', r.virtio],
      ['vhost', r.vhost],
    ] as const) {
      expect(log[0], side).toMatch(/^new channel: 0x[0-9a-f]+ -> 0x[0-9a-f]+!$/);
      const incoming = log.filter((l) => l.startsWith('incoming msg'));
      expect(incoming, side).toHaveLength(100);
      incoming.forEach((l, i) => expect(l, side).toMatch(new RegExp(`^incoming msg ${i + 1} \\(src: 0x[0-9a-f]+\\): ${MSG.replace(/[!]/g, '\\$&')}$`)));
      const bye = log.indexOf('goodbye!');
      expect(bye, side).toBe(log.indexOf(incoming[99]!) + 1);
      expect(log.filter((l) => l.startsWith('rpmsg_send failed')), side).toEqual([]);
    }
    // The RC's channel was created with src ANY and dst = the EP's endpoint; the EP's dst is the RC's address after AS.
    const rcLine = r.virtio[0]!.match(/(0x[0-9a-f]+) -> (0x[0-9a-f]+)/)!;
    const epSrc = r.vhost.find((l) => l.startsWith('incoming msg 1 '))!.match(/src: (0x[0-9a-f]+)/)![1];
    expect(epSrc).toBe(rcLine[1]);
  });
});
