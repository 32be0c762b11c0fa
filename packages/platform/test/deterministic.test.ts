// Deterministic mode (issue 5): all systems in one thread, doorbells as queued tasks on
// a scheduler the test steps, timers on a virtual clock; two runs give the same events.
import { describe, expect, it } from 'vitest';
import { Topology, isPlatformError, type TopologyConfig, type TopologyEvent } from '@x/platform';

const fixtures = new URL('./fixtures/systems.ts', import.meta.url);

const leftRight: TopologyConfig = {
  mode: 'deterministic',
  lines: ['l', 'r'],
  systems: [
    { name: 'left', entry: fixtures, export: 'left', lines: ['l', 'r'] },
    { name: 'right', entry: fixtures, export: 'right', lines: ['l', 'r'] },
  ],
};

const brief = (e: TopologyEvent): string =>
  `${e.at} ${e.type} ${e.system}${e.type === 'log' ? ` ${e.message}` : e.type === 'exit' ? ` ${e.status}` : ''}`;

describe('the deterministic scheduler', () => {
  it('runs in the order the rules give (rings latch; a wait on a moved counter returns at once; sleep(3) is 3 virtual ms)', async () => {
    const t = new Topology(leftRight);
    await t.start();
    // start() calls left then right. left rings r and waits on l; right finds r already
    // rung (count 1), sleeps 3 ms, rings l and returns; then left wakes on l and returns.
    await t.waitForEvent((e) => e.type === 'exit' && e.system === 'left');
    await t.stop();
    expect(t.events.map(brief)).toEqual([
      '0 running left',
      '0 log left left rang at 0',
      '0 running right',
      '0 log right right woke (count 1) at 0',
      '3 log right right rang at 3',
      '3 exit right exited',
      '3 log left left woke (count 1) at 3',
      '3 exit left exited',
    ]);
  });

  it('nothing moves until stepped; virtual time moves only through advance()', async () => {
    const t = new Topology(leftRight);
    const s = t.scheduler!;
    await t.start();
    expect(t.events).toHaveLength(4);
    expect(s.pending).toBeGreaterThan(0); // the peer-status deliveries of start
    await s.runUntilIdle();
    expect(s.pending).toBe(0);
    expect(s.timers).toBe(1); // right's sleep(3)
    expect(t.events).toHaveLength(4);
    await s.advance(2);
    expect(s.now).toBe(2);
    expect(t.events).toHaveLength(4);
    await s.advance(1);
    expect(s.now).toBe(3);
    expect(t.events.map(brief).slice(4)).toEqual(['3 log right right rang at 3', '3 exit right exited', '3 log left left woke (count 1) at 3', '3 exit left exited']);
    expect(await s.step()).toBe(false);
    await t.stop();
  });

  it('is deterministic: two runs of three relaying systems with timers give the same events', async () => {
    const once = async (): Promise<string[]> => {
      const names = ['a', 'b', 'c'];
      const t = new Topology({
        mode: 'deterministic',
        lines: names,
        systems: names.map((name, i) => ({ name, entry: fixtures, export: 'relay', lines: names, config: { next: names[(i + 1) % 3], rounds: 20, delay: i + 1 } })),
      });
      await t.start();
      for (const n of names) await t.waitForEvent((e) => e.type === 'exit' && e.system === n);
      await t.stop();
      expect(t.events.filter((e) => e.type === 'crash')).toEqual([]);
      return t.events.map((e) => JSON.stringify(e));
    };
    const first = await once();
    const second = await once();
    expect(second).toEqual(first);
    // A real interleaving: 3 × 20 relays, 3 timers and the life-cycle events.
    expect(first.filter((e) => e.includes(' got ')).length).toBe(60);
    expect(first.filter((e) => e.includes(' timer at ')).length).toBe(3);
  });

  it('waitForEvent rejects with IDLE when nothing is left to run, TIMEOUT past its virtual deadline', async () => {
    const t = new Topology({ mode: 'deterministic', lines: ['x'], systems: [{ name: 's', entry: fixtures, export: 'server', lines: ['x'] }] });
    await t.start();
    // server has a 60 s timer: a 1 s virtual deadline comes first.
    await expect(t.waitForEvent((e) => e.type === 'exit', { timeoutMs: 1_000 })).rejects.toSatisfy((e: unknown) => isPlatformError(e, 'TIMEOUT'));
    await expect(t.waitForEvent((e) => e.type === 'exit')).rejects.toSatisfy((e: unknown) => isPlatformError(e, 'IDLE'));
    expect(t.scheduler!.now).toBe(60_000);
    await t.stop();
    expect(t.events.at(-1)).toMatchObject({ type: 'exit', system: 's', status: 'stopped' });
  });

  it('a livelock (a handler ringing its own line) fails with STEP_LIMIT, and stop() still ends it', async () => {
    const t = new Topology({ mode: 'deterministic', lines: ['x'], systems: [{ name: 'loop', entry: fixtures, export: 'looper', lines: ['x'] }] });
    await t.start();
    await expect(t.scheduler!.runUntilIdle({ maxSteps: 1_000 })).rejects.toSatisfy((e: unknown) => isPlatformError(e, 'STEP_LIMIT'));
    await t.stop();
    expect(t.state).toBe('stopped');
    expect(t.status('loop')).toBe('stopped');
  });
});
