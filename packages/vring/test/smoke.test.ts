import { describe, expect, it } from 'vitest';
import { VringIov } from '@x/vring';
import { createRingPair } from '@x/vring/testing';

describe('smoke', () => {
  it('moves one buffer', () => {
    const p = createRingPair<number>({ num: 8, eventIdx: true, indirectSegments: 4 });
    const mem = p.driverMemory;
    mem.write(p.dataAddr, new Uint8Array([1, 2, 3, 4]));
    expect(p.vq.addSgs([{ addr: p.dataAddr, len: 4 }, { addr: p.dataAddr + 100, len: 8 }], 1, 1, 7)).toBe(true);
    expect(p.vq.kickPrepare()).toBe(true);
    const r = new VringIov(8), w = new VringIov(8);
    const head = p.vrh.getDesc(r, w);
    expect(head).toBe(0);
    const buf = new Uint8Array(4);
    expect(p.vrh.pull(r, buf)).toBe(4);
    expect([...buf]).toEqual([1, 2, 3, 4]);
    expect(p.vrh.push(w, new Uint8Array([9, 9, 9]))).toBe(3);
    p.vrh.complete(head, 3);
    expect(p.vrh.needNotify()).toBe(true);
    expect(p.vq.getBuf()).toBe(7);
    expect(p.vq.lastLen).toBe(3);
    expect(mem.read8(p.dataAddr + 100)).toBe(9);
  });
});
