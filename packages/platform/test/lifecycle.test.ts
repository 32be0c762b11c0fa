// Clean start and shutdown (issue 5): start() resolves once every system runs; stop()
// aborts the systems, terminates the workers and clears every timer, and is idempotent.
import { describe, expect, it } from 'vitest';
import { Topology, isPlatformError, type SystemSpec, type TopologyMode } from '@x/platform';

const fixtures = new URL('./fixtures/systems.ts', import.meta.url);
const sys = (name: string, exp: string, more: Partial<SystemSpec> = {}): SystemSpec => ({ name, entry: fixtures, export: exp, lines: ['x'], ...more });

/** The kinds of handles that would keep the process alive, counted. */
function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of process.getActiveResourcesInfo()) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** No kind of handle (worker port, timer, immediate…) is more numerous than before. */
async function expectNoHandleLeft(before: Record<string, number>): Promise<void> {
  await new Promise((r) => setImmediate(r)); // let the workers' 'exit' callbacks run
  const after = handles();
  const grown = Object.keys(after).filter((k) => after[k]! > (before[k] ?? 0));
  expect(grown.map((k) => `${k}: ${before[k] ?? 0} -> ${after[k]}`)).toEqual([]);
}

describe.each<TopologyMode>(['threads', 'deterministic'])('%s mode', (mode) => {
  it('start() resolves when every system is running; stop() ends them and leaves no handle behind; a second stop() is a no-op', async () => {
    const before = handles();
    const t = new Topology({ mode, lines: ['x'], systems: [sys('s1', 'server'), sys('s2', 'server')] });
    expect(t.state).toBe('new');
    await t.start();
    expect(t.state).toBe('running');
    expect(t.events.filter((e) => e.type === 'running').map((e) => e.system).sort()).toEqual(['s1', 's2']);
    expect(t.status('s1')).toBe('running');
    const stop = t.stop();
    expect(t.stop()).toBe(stop);
    await stop;
    expect(t.state).toBe('stopped');
    await t.stop();
    // Each server saw the stop: signal aborted, pending wait rejected with STOPPED.
    const reports = t.events.filter((e) => e.type === 'report').map((e) => (e.type === 'report' ? e.data : undefined));
    expect(reports).toEqual([
      { stopped: true, aborted: true, wait: 'STOPPED' },
      { stopped: true, aborted: true, wait: 'STOPPED' },
    ]);
    expect(t.events.filter((e) => e.type === 'exit').map((e) => (e.type === 'exit' ? [e.system, e.status] : []))).toEqual(
      expect.arrayContaining([
        ['s1', 'stopped'],
        ['s2', 'stopped'],
      ]),
    );
    expect(t.status('s1')).toBe('stopped');
    expect(t.status('s2')).toBe('stopped');
    // Workers, their message ports and every timer are gone.
    await expectNoHandleLeft(before);
  });

  it('start() twice is BAD_STATE; stop() before start() just stops', async () => {
    const t = new Topology({ mode, lines: ['x'], systems: [sys('s1', 'echo')] });
    await t.start();
    await expect(t.start()).rejects.toSatisfy((e: unknown) => isPlatformError(e, 'BAD_STATE'));
    await t.stop();
    const u = new Topology({ mode, lines: ['x'], systems: [sys('s1', 'echo')] });
    await u.stop();
    expect(u.state).toBe('stopped');
    await expect(u.start()).rejects.toSatisfy((e: unknown) => isPlatformError(e, 'BAD_STATE'));
  });

  it('a system gets its own name, mode, peers and a structured-cloned config; logs and reports reach the owner', async () => {
    const t = new Topology({ mode, lines: ['x'], systems: [sys('e1', 'echo', { config: { n: 1, list: [1, 2], bytes: new Uint8Array([9]) } }), sys('e2', 'badReport')] });
    await t.start();
    await t.waitForEvent((e) => e.system === 'e1' && e.type === 'exit', { timeoutMs: 10_000 });
    await t.waitForEvent((e) => e.system === 'e2' && e.type === 'exit', { timeoutMs: 10_000 });
    await t.stop();
    const ev = t.events.filter((e) => e.type === 'log' || e.type === 'report');
    expect(ev.find((e) => e.type === 'log')).toMatchObject({ system: 'e1', message: 'hello from e1' });
    expect(ev.find((e) => e.type === 'report' && e.system === 'e1')).toMatchObject({
      data: { name: 'e1', mode, config: { n: 1, list: [1, 2], bytes: new Uint8Array([9]) }, peers: ['e2'] },
    });
    // A report holding a function is refused in the system with a TypeError.
    expect(ev.find((e) => e.type === 'report' && e.system === 'e2')).toMatchObject({ data: 'TypeError' });
    expect(t.events.find((e) => e.type === 'exit' && e.system === 'e1')).toMatchObject({ status: 'exited' });
  });

  it('a module without the named function fails start() with SYSTEM_CRASHED (start-failed), and the topology is stopped', async () => {
    const t = new Topology({ mode, lines: ['x'], systems: [sys('ok', 'server'), sys('bad', 'notAFunction')] });
    const e = await t.start().catch((x: unknown) => x);
    expect(isPlatformError(e, 'SYSTEM_CRASHED')).toBe(true);
    expect((e as Error).cause).toMatchObject({ name: 'PlatformError', code: 'BAD_CONFIG' });
    expect(t.state).toBe('stopped');
    expect(t.events.find((x) => x.type === 'crash')).toMatchObject({ system: 'bad', reason: 'start-failed' });
    expect(t.status('bad')).toBe('crashed');
  });
});

describe('threads mode', () => {
  it('a system that never finishes loading fails start() with START_TIMEOUT; its worker is terminated', async () => {
    const before = handles();
    const t = new Topology({
      mode: 'threads',
      systems: [{ name: 'stuck', entry: new URL('./fixtures/hang-on-load.ts', import.meta.url) }],
    });
    await expect(t.start({ timeoutMs: 1_500 })).rejects.toSatisfy((e: unknown) => isPlatformError(e, 'START_TIMEOUT'));
    expect(t.state).toBe('stopped');
    expect(t.status('stuck')).toBe('stopped');
    await expectNoHandleLeft(before);
  });

  it('stop() wakes a system blocked in waitSync (Atomics.wait): it returns "stopped" and ends on its own', async () => {
    const t = new Topology({ mode: 'threads', lines: ['x'], systems: [sys('b', 'blocker')] });
    await t.start();
    await t.stop();
    expect(t.events.find((e) => e.type === 'report')).toMatchObject({ data: { end: 'stopped', turns: 0, aborted: true } });
    expect(t.events.find((e) => e.type === 'exit')).toMatchObject({ system: 'b', status: 'stopped' });
  });

  it('a system that ignores the stop is terminated after stopTimeoutMs and marked stopped', async () => {
    const before = handles();
    const t = new Topology({ mode: 'threads', stopTimeoutMs: 300, systems: [{ name: 'spin', entry: fixtures, export: 'stubborn' }] });
    await t.start();
    await t.stop();
    expect(t.status('spin')).toBe('stopped');
    expect(t.events.at(-1)).toMatchObject({ type: 'exit', system: 'spin', status: 'stopped' });
    await expectNoHandleLeft(before);
  });
});
