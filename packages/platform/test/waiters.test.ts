// A ringer notifies only when the line's waiters word says someone sleeps on it (issue 7:
// a ring nobody sleeps on costs no Atomics.notify). The word must count exactly the
// receivers that are asleep: every sleeper takes itself off once it woke, whatever woke
// it, so after a run the word is back to 0; and no wake-up is lost (doorbell-stress.test.ts
// runs the ping-pong in every mode with recoveries = 0).
import { describe, expect, it } from 'vitest';
import { CONTROL_LAYOUT, Topology, lineBlockOffset } from '@x/platform';
import { PING_PONG_SYSTEM, type PingPongConfig } from '@x/platform/testing';

describe('threads: the waiters word of a line', () => {
  it('counts sleepers only while they sleep: 0 after a ping-pong that slept thousands of times', { timeout: 30_000 }, async () => {
    const lines = ['ping', 'pong'];
    const base = {
      rounds: 1000,
      timeoutMs: 10_000,
      phases: [
        { style: 'wait', mode: 'sleep', spinUs: 0, budgetUs: 100 },
        { style: 'listen', mode: 'sleep', spinUs: 0, budgetUs: 100 },
        { style: 'sync', mode: 'sleep', spinUs: 0, budgetUs: 100 },
      ],
    } as const;
    const t = new Topology({
      mode: 'threads',
      lines,
      systems: [
        { name: 'ping', entry: PING_PONG_SYSTEM, lines, config: { ...base, role: 'ping' } satisfies PingPongConfig },
        { name: 'pong', entry: PING_PONG_SYSTEM, lines, config: { ...base, role: 'pong' } satisfies PingPongConfig },
      ],
    });
    try {
      await t.start();
      let exits = 0;
      const end = await t.waitForEvent((e) => e.type === 'crash' || (e.type === 'exit' && ++exits === 2), { timeoutMs: 25_000 });
      expect(end.type).toBe('exit');
      const dv = new DataView(t.controlRegion);
      // Lines 1 and 2 (0 is the peer-status line), after the two system blocks.
      for (const j of [1, 2]) expect(dv.getInt32(lineBlockOffset(2, j) + CONTROL_LAYOUT.LINE_WAITERS, true)).toBe(0);
      for (const name of lines) {
        const s = t.lineStats(name);
        expect(s.sleeps).toBeGreaterThan(0);
        expect(s.recoveries).toBe(0);
      }
    } finally {
      await t.stop();
    }
  });

  it('a ring whose notify never came is found by the re-check sweep and counted as a recovery', { timeout: 30_000 }, async () => {
    const fixtures = new URL('./fixtures/systems.ts', import.meta.url);
    const t = new Topology({
      mode: 'threads',
      recheckMs: 50,
      regions: [{ name: 'shm', size: 0x1000 }],
      lines: ['go', 'done'],
      systems: [{ name: 'reader', entry: fixtures, export: 'reader', regions: [{ region: 'shm', base: 0x1000 }], lines: ['go', 'done'] }],
    });
    try {
      await t.start();
      // Let the reader fall asleep on 'go' (line 1), then move the counter the way a
      // broken ringer would: an add with no notify.
      await new Promise((r) => setTimeout(r, 200));
      const i32 = new Int32Array(t.controlRegion);
      Atomics.add(i32, (lineBlockOffset(1, 1) + CONTROL_LAYOUT.LINE_COUNT) >>> 2, 1);
      const t0 = performance.now();
      const end = await t.waitForEvent((e) => e.type === 'exit' || e.type === 'crash', { timeoutMs: 10_000 });
      expect(end.type).toBe('exit');
      // Found within two sweep periods (one for a notify still on its way, one to wake it), not at the 10 s timeout.
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(t.lineStats('go')).toMatchObject({ rings: 1, wakeups: 1, recoveries: 1 });
    } finally {
      await t.stop();
    }
  });
});
