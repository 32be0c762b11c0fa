// A crashed system (issue 5): reported to the topology owner as a typed CrashEvent, and
// to the other systems only through the shared world: the crashed system's status word
// in the control region plus a ring of the reserved peer-status line, surfaced in each
// system's context as a PeerDownEvent. Nobody hangs: the watcher below was waiting on a
// line the dead system would have rung, and ends its wait on the peer-down event.
import { describe, expect, it } from 'vitest';
import { Topology, isPlatformError, type CrashEvent, type SystemSpec, type TopologyMode } from '@x/platform';

const fixtures = new URL('./fixtures/systems.ts', import.meta.url);
const sys = (name: string, exp: string): SystemSpec => ({ name, entry: fixtures, export: exp, lines: ['x'] });

async function crashWithWatcher(mode: TopologyMode, victim: string, kill = false) {
  const t = new Topology({ mode, lines: ['x'], systems: [sys('watcher', 'watcher'), sys('victim', victim)] });
  try {
    await t.start();
    if (kill) await t.kill('victim');
    const crash = (await t.waitForEvent((e) => e.type === 'crash', { timeoutMs: 10_000 })) as CrashEvent;
    const report = await t.waitForEvent((e) => e.type === 'report' && e.system === 'watcher', { timeoutMs: 10_000 });
    return { crash, report: report.type === 'report' ? report.data : undefined, status: t.status('victim') };
  } finally {
    await t.stop();
  }
}

describe.each<TopologyMode>(['threads', 'deterministic'])('%s mode', (mode) => {
  it('a system that throws: CrashEvent (threw) with a copy of its error, and PeerDownEvent in the other system', async () => {
    const { crash, report, status } = await crashWithWatcher(mode, 'thrower');
    expect(crash).toMatchObject({ type: 'crash', system: 'victim', reason: 'threw', exitCode: undefined });
    expect(isPlatformError(crash.error, 'SYSTEM_CRASHED')).toBe(true);
    expect(crash.error.system).toBe('victim');
    // The cause keeps the thrown error's name, message and code (structural guards work).
    expect(crash.error.cause).toMatchObject({ name: 'Error', message: 'thrower gave up', code: 'E_TEST' });
    expect(status).toBe('crashed');
    expect(report).toEqual({
      outcome: 'ABORTED',
      events: [{ peer: 'victim', status: 'crashed', code: 'SYSTEM_CRASHED', reason: 'threw', exitCode: undefined }],
      status: ['crashed'],
    });
  });

  it('a line handler that throws crashes its system the same way', async () => {
    const { crash, report } = await crashWithWatcher(mode, 'handlerThrower');
    expect(crash).toMatchObject({ system: 'victim', reason: 'threw' });
    expect(crash.error.cause).toMatchObject({ message: 'handler failed' });
    expect(report).toMatchObject({ outcome: 'ABORTED', events: [{ peer: 'victim', status: 'crashed', reason: 'threw' }] });
  });

  it('kill() (fault injection): the system dies, the owner gets CrashEvent (killed), the peer a PeerDownEvent', async () => {
    const { crash, report, status } = await crashWithWatcher(mode, mode === 'threads' ? 'blocker' : 'server', true);
    expect(crash).toMatchObject({ system: 'victim', reason: 'killed' });
    expect(isPlatformError(crash.error, 'SYSTEM_CRASHED')).toBe(true);
    expect(status).toBe('crashed');
    expect(report).toMatchObject({ outcome: 'ABORTED', events: [{ peer: 'victim', status: 'crashed', code: 'SYSTEM_CRASHED', reason: 'killed' }] });
  });
});

describe('threads mode: the worker itself fails', () => {
  it("a worker that exits (process.exit(3)): CrashEvent 'exit-code' 3, and the peer reads reason and code from the status block", async () => {
    const { crash, report } = await crashWithWatcher('threads', 'exiter');
    expect(crash).toMatchObject({ system: 'victim', reason: 'exit-code', exitCode: 3 });
    expect(report).toMatchObject({ outcome: 'ABORTED', events: [{ peer: 'victim', status: 'crashed', reason: 'exit-code', exitCode: 3 }] });
  });

  it("an uncaught error in the worker (outside the system's handlers): CrashEvent 'worker-error'", async () => {
    const { crash, report } = await crashWithWatcher('threads', 'uncaught');
    expect(crash).toMatchObject({ system: 'victim', reason: 'worker-error' });
    expect((crash.error.cause as Error).message).toBe('uncaught boom');
    expect(report).toMatchObject({ outcome: 'ABORTED', events: [{ peer: 'victim', status: 'crashed', reason: 'worker-error' }] });
  });
});

describe('a normal end is not a crash', () => {
  it.each<TopologyMode>(['threads', 'deterministic'])('%s: a peer that returns is reported to the others as exited, to the owner as an ExitEvent', async (mode) => {
    const t = new Topology({ mode, lines: ['x'], systems: [sys('watcher', 'watcher'), sys('victim', 'echo')] });
    try {
      await t.start();
      const report = await t.waitForEvent((e) => e.type === 'report' && e.system === 'watcher', { timeoutMs: 10_000 });
      expect(report).toMatchObject({ data: { outcome: 'ABORTED', events: [{ peer: 'victim', status: 'exited', code: undefined, reason: undefined }] } });
      // The owner hears it on the victim's own channel, which may come after the watcher's.
      expect(await t.waitForEvent((e) => e.system === 'victim' && e.type === 'exit', { timeoutMs: 10_000 })).toMatchObject({ status: 'exited' });
      expect(t.events.some((e) => e.type === 'crash')).toBe(false);
    } finally {
      await t.stop();
    }
  });
});
