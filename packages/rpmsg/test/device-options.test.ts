// The device transport's performance options (issue 7): `stableViews` must never hand a
// stale or wrongly sized view, and `busyTurns` must save kicks without losing or
// reordering a message.
import { describe, expect, it } from 'vitest';
import { RpmsgVringhTransport, isRpmsgError, type RpmsgEndpoint } from '@x/rpmsg';
import { createRpmsgPair, type RpmsgPairOptions } from '@x/rpmsg/testing';
import { until } from './helpers.js';

/** Message i: length 1 + (i·37 mod 496) (every size of a 512-byte buffer's payload), bytes (i + k) & 0xff. */
function message(i: number): Uint8Array {
  const m = new Uint8Array(1 + ((i * 37) % 496));
  for (let k = 0; k < m.length; k++) m[k] = (i + k) & 0xff;
  return m;
}

async function send(ep: RpmsgEndpoint, data: Uint8Array): Promise<void> {
  try {
    ep.trySend(data);
  } catch (e) {
    if (!isRpmsgError(e, 'NO_BUFFER')) throw e;
    await ep.send(data);
  }
}

/**
 * Streams `count` messages each way and checks every one (length, bytes, order). Every
 * 7th message the receiver holds (zero-copy) and checks only when it releases it,
 * 20 messages later, so a view reused for another buffer would show.
 */
async function stream(options: RpmsgPairOptions, count: number) {
  const pair = createRpmsgPair({ queueSize: 64, ...options });
  const bad: string[] = [];
  const make = (side: 'driver' | 'device') => {
    const vp = side === 'driver' ? pair.driver : pair.device;
    let next = 0;
    const held: Array<{ data: Uint8Array; i: number; ep: RpmsgEndpoint }> = [];
    const check = (data: Uint8Array, i: number): void => {
      const want = message(i);
      if (data.length !== want.length || data.some((b, k) => b !== want[k])) bad.push(`${side} #${i}`);
    };
    const ep = vp.createEndpoint({
      callback: (data, _src, e) => {
        const i = next++;
        if (i % 7 === 0) {
          e.holdRxBuffer(data);
          held.push({ data, i, ep: e });
        } else check(data, i);
        while (held.length > 0 && (held.length > 20 || next === count)) {
          const h = held.shift()!;
          check(h.data, h.i);
          h.ep.releaseRxBuffer(h.data);
        }
      },
    });
    return { ep, got: () => next };
  };
  const atDevice = make('device');
  const atDriver = make('driver');
  const a = pair.driver.createEndpoint({ dst: atDevice.ep.addr });
  const b = pair.device.createEndpoint({ dst: atDriver.ep.addr });
  await Promise.all([
    (async () => {
      for (let i = 0; i < count; i++) await send(a, message(i));
    })(),
    (async () => {
      for (let i = 0; i < count; i++) await send(b, message(i));
    })(),
  ]);
  await until(() => atDevice.got() === count && atDriver.got() === count, 20_000);
  const stats = { ...pair.link.stats };
  pair.close();
  return { bad, stats };
}

describe('RpmsgVringhTransport performance options', () => {
  it('stableViews: 3000 messages each way of every length, some held zero-copy, arrive intact and in order', async () => {
    const r = await stream({ stableViews: true, shared: true }, 3000);
    expect(r.bad).toEqual([]);
  });

  it('stableViews with macrotask doorbells and EVENT_IDX: intact as well', async () => {
    const r = await stream({ stableViews: true, schedule: 'macrotask', eventIdx: true }, 2000);
    expect(r.bad).toEqual([]);
  });

  it('busyTurns (vhost-net busyloop): every message intact and in order, with fewer kicks than without', async () => {
    const plain = await stream({ schedule: 'macrotask' }, 3000);
    const busy = await stream({ schedule: 'macrotask', busyTurns: 64 }, 3000);
    expect(plain.bad).toEqual([]);
    expect(busy.bad).toEqual([]);
    expect(busy.stats.doorbells).toBeLessThan(plain.stats.doorbells);
  });

  it('busyTurns is checked by name', () => {
    const q = { getBuf: () => undefined } as never;
    for (const bad of [-1, 1.5, 1_000_001, Number.NaN]) {
      expect(() => new RpmsgVringhTransport({ txQueue: q, rxQueue: q, features: 0, busyTurns: bad })).toThrow(RangeError);
    }
  });
});
