// An adaptive wait spins on the doorbell counter, and a spin blocks its thread's event
// loop. The ring a listener waits for is often one its own thread has queued (a promise
// continuation or an immediate that sends the next message, whose answer rings back):
// the wait must let that run before it spins, or every such round burns the whole spin
// and then sleeps (issue 7, P7: use case 1's round trips).
import { describe, expect, it } from 'vitest';
import { Topology } from '@x/platform';

describe('threads: adaptive wait and the queued work of its own thread', () => {
  it('a ring queued with setImmediate by the handler is seen without sleeping (spinHits, not sleeps)', { timeout: 30_000 }, async () => {
    const fixtures = new URL('./fixtures/adaptive.ts', import.meta.url);
    const t = new Topology({ mode: 'threads', lines: ['l'], systems: [{ name: 'r', entry: fixtures, export: 'deferredRinger', lines: ['l'] }] });
    const reports: unknown[] = [];
    t.onEvent((e) => {
      if (e.type === 'report') reports.push(e.data);
    });
    try {
      await t.start();
      await t.waitForEvent((e) => e.system === 'r' && (e.type === 'exit' || e.type === 'crash'));
      expect(reports).toEqual([{ runs: 3 }]);
      // Three rings (the first from the system, two from its immediates); the listener's
      // first look already saw the first ring moved, and the yield before each spin ran
      // the immediate that rang the next: three spin hits, no sleep.
      expect(t.lineStats('l')).toMatchObject({ rings: 3, spinHits: 3, sleeps: 0, recoveries: 0 });
    } finally {
      await t.stop();
    }
  });
});
