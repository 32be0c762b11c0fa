import { describe, expect, it } from 'vitest';
import { ArrayBufferMemory, RegionMemory } from '@x/vring';
import { VirtioBus, VirtioDevice, checkVirtioConfigOps, isVirtioError, type VirtioConfigOps } from '@x/virtio-core';
import { FakeVirtioTransport } from '@x/virtio-core/testing';

function opsWith(change: (o: Record<string, unknown>) => void, allocBuffer = false): VirtioConfigOps {
  const t = new FakeVirtioTransport({ allocBuffer });
  const o: Record<string, unknown> = { ...t.ops };
  change(o);
  return o as unknown as VirtioConfigOps;
}

function problem(ops: VirtioConfigOps): string {
  try {
    checkVirtioConfigOps(ops);
    return 'ok';
  } catch (e) {
    expect(isVirtioError(e, 'INVALID_OPS')).toBe(true);
    return (e as Error).message;
  }
}

describe('ops validated at registration (like Linux ntb_dev_ops_is_valid)', () => {
  it('accepts complete ops with either buffer source', () => {
    expect(problem(opsWith(() => undefined))).toBe('ok');
    expect(problem(opsWith(() => undefined, true))).toBe('ok');
  });

  for (const name of ['getFeatures', 'finalizeFeatures', 'getStatus', 'setStatus', 'reset', 'findVqs', 'delVqs', 'getConfig', 'setConfig']) {
    it(`refuses ops without the required op ${name}`, () => {
      expect(problem(opsWith((o) => delete o[name]))).toMatch(new RegExp(`required op ${name} is missing`));
    });
  }

  it('refuses optional ops that are not functions', () => {
    expect(problem(opsWith((o) => (o['generation'] = 1)))).toMatch(/optional op generation is not a function/);
    expect(problem(opsWith((o) => (o['transportFeatures'] = {})))).toMatch(/transportFeatures/);
  });

  it('refuses half of a paired op (allocBuffer / freeBuffer)', () => {
    expect(problem(opsWith((o) => delete o['freeBuffer'], true))).toMatch(/paired/);
    expect(problem(opsWith((o) => (o['freeBuffer'] = () => undefined)))).toMatch(/paired/);
  });

  it('refuses ops with no buffer source, or a dmaRegion core cannot use', () => {
    expect(problem(opsWith((o) => delete o['dmaRegion']))).toMatch(/no buffer source/);
    const mem = new ArrayBufferMemory(new ArrayBuffer(4096), { base: 0x1000 });
    expect(problem(opsWith((o) => (o['dmaRegion'] = { memory: mem, addr: 0x1000, size: 8192 })))).toMatch(/not inside/);
    expect(problem(opsWith((o) => (o['dmaRegion'] = { memory: mem, addr: -1, size: 0 })))).toMatch(/dmaRegion.addr.*dmaRegion.size/);
    // A window onto another memory may not be able to give a view: core needs one.
    const noView = { ...mem, view: undefined, contains: mem.contains.bind(mem) };
    expect(problem(opsWith((o) => (o['dmaRegion'] = { memory: noView, addr: 0x1000, size: 16 })))).toMatch(/no view/);
    const win = new RegionMemory();
    win.map({ busAddr: 0x1000, size: 4096, target: { ...mem, view: () => undefined, contains: () => true } as never, targetAddr: 0 });
    expect(problem(opsWith((o) => (o['dmaRegion'] = { memory: win, addr: 0x1000, size: 16 })))).toMatch(/gives no view/);
  });

  it('names every problem at once', () => {
    const msg = problem(opsWith((o) => {
      delete o['reset'];
      delete o['delVqs'];
      o['allocBuffer'] = () => undefined;
    }));
    expect(msg).toMatch(/reset is missing.*delVqs is missing.*paired/);
  });

  it('registerDevice refuses invalid ops before touching the transport', async () => {
    const t = new FakeVirtioTransport();
    const ops = { ...t.ops, dmaRegion: undefined };
    const dev = new VirtioDevice({ id: t.id, ops });
    await expect(new VirtioBus().registerDevice(dev)).rejects.toSatisfy((e) => isVirtioError(e, 'INVALID_OPS'));
    expect(t.model.statusWrites).toEqual([]);
    expect(dev.bus).toBeUndefined();
  });
});
