// The lost-wake-up stress (issue 5, "@x/platform: where systems run"): a token handed
// back and forth between two systems through two lines, each side waiting for the
// other, thousands of times, in every wait mode with tiny spin / poll windows (0, 1 and
// 5 µs, one phase each, in the same two workers). A lost wake-up would leave one side
// waiting for a ring that already happened: each wait has a timeout, so the run fails
// (a crash event) instead of hanging, and the test itself has a timeout too. Every
// ring must be seen exactly once (each side checks the counter moved by exactly 1), and
// no wake-up may come from the bounded re-check (recoveries = 0: every notify arrived).
import { describe, expect, it } from 'vitest';
import { isPlatformError } from '@x/platform';
import { runPingPong, type PingPongOptions, type PingPongResult } from '@x/platform/testing';

const slow = process.env.X_SLOW === '1';
/** Round trips per phase: two handoffs each, plus the phase's handshake round. */
const ROUNDS = slow ? 100_000 : 2_000;
/** Busy polling with two spinning workers on a 2-core machine: fewer, still thousands of handoffs. */
const POLL_ROUNDS = slow ? 50_000 : 1_000;
const DET_ROUNDS = slow ? 50_000 : 5_000;
const TEST_TIMEOUT = slow ? 600_000 : 30_000;

async function stress(options: PingPongOptions): Promise<PingPongResult> {
  // Each single wait fails after 10 s: a lost wake-up is a typed crash, never a hang.
  const r = await runPingPong({ ...options, timeoutMs: 10_000 });
  const rounds = options.rounds!;
  const phases = options.phases!.length;
  expect(r.phases.map((p) => p.rounds)).toEqual(Array(phases).fill(rounds));
  // Per phase, rounds timed round trips + 1 handshake: each line rang and its receiver
  // woke rounds + 1 times (one ring per wake-up, since the sender always waits).
  for (const line of [r.ping, r.pong]) {
    expect(line.rings).toBe(phases * (rounds + 1));
    expect(line.wakeups).toBe(phases * (rounds + 1));
    expect(line.recoveries).toBe(0);
  }
  expect(r.events.filter((e) => e.type === 'crash')).toEqual([]);
  return r;
}

describe('threads: two workers, two lines, no lost wake-up', () => {
  it("mode 'sleep' (Atomics.waitAsync): Line.wait on both sides, then a listener on the answering side", { timeout: TEST_TIMEOUT }, async () => {
    const r = await stress({ rounds: ROUNDS, phases: [{ mode: 'sleep' }, { mode: 'sleep', style: 'listen' }] });
    // Every wake-up either slept or found the ring already there.
    for (const l of [r.ping, r.pong]) expect(l.spinHits + l.sleeps).toBeGreaterThanOrEqual(l.wakeups);
  });

  it("mode 'poll' with 0, 1 and 5 µs budgets: never sleeps", { timeout: TEST_TIMEOUT }, async () => {
    const r = await stress({
      rounds: POLL_ROUNDS,
      phases: [
        { mode: 'poll', budgetUs: 0 },
        { mode: 'poll', budgetUs: 1, style: 'listen' },
        { mode: 'poll', budgetUs: 5 },
      ],
    });
    for (const l of [r.ping, r.pong]) {
      expect(l.sleeps).toBe(0);
      expect(l.spinHits).toBe(l.wakeups);
    }
  });

  it("mode 'adaptive' spinning 0, 1 and 5 µs, then Atomics.waitAsync", { timeout: TEST_TIMEOUT }, async () => {
    await stress({
      rounds: ROUNDS,
      phases: [
        { mode: 'adaptive', spinUs: 0 },
        { mode: 'adaptive', spinUs: 1, style: 'listen' },
        { mode: 'adaptive', spinUs: 5 },
      ],
    });
  });

  it('blocking Line.waitSync (Atomics.wait) spinning 0, 1 and 5 µs, in workers that run their own loop', { timeout: TEST_TIMEOUT }, async () => {
    await stress({ rounds: ROUNDS, phases: [0, 1, 5].map((spinUs) => ({ style: 'sync' as const, spinUs })) });
  });
});

describe('deterministic: the same systems on one thread, rings as queued tasks', () => {
  it('every mode (accepted; each ring is a delivery task) and a listener: every handoff arrives once', { timeout: TEST_TIMEOUT }, async () => {
    const r = await stress({
      topology: 'deterministic',
      rounds: DET_ROUNDS,
      phases: [{ mode: 'sleep' }, { mode: 'poll', budgetUs: 0 }, { mode: 'adaptive', spinUs: 0 }, { style: 'listen' }],
    });
    // Nothing sleeps on one thread: each wake-up is a delivery task that found the ring.
    for (const l of [r.ping, r.pong]) {
      expect(l.sleeps).toBe(0);
      expect(l.spinHits).toBe(l.wakeups);
    }
    // No time passes on the virtual clock: nobody waits for time.
    expect(r.phases.map((p) => p.ms)).toEqual([0, 0, 0, 0]);
  });

  it('a blocking waitSync is refused with UNSUPPORTED (it would block every system), as a crash, not a hang', async () => {
    const e = await runPingPong({ topology: 'deterministic', style: 'sync', rounds: 10 }).catch((x: unknown) => x);
    expect(isPlatformError(e, 'SYSTEM_CRASHED')).toBe(true);
    expect((e as Error).cause).toMatchObject({ name: 'PlatformError', code: 'UNSUPPORTED' });
  });
});
