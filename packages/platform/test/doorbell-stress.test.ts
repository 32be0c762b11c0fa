// The lost-wake-up stress (issue 5, "@x/platform: where systems run"): a token handed
// back and forth between two systems through two lines, each side waiting for the
// other, thousands of times, in every wait mode with tiny spin / poll windows. A lost
// wake-up would leave one side waiting for a ring that already happened: its wait has a
// timeout, so the run fails (a crash event) instead of hanging, and the test itself
// has a timeout too. Every ring must be seen exactly once (each side checks that the
// counter moved by exactly 1), and no wake-up may come from the bounded re-check
// (recoveries = 0: every notify arrived).
import { describe, expect, it } from 'vitest';
import { isPlatformError } from '@x/platform';
import { runPingPong, type PingPongOptions, type PingPongResult } from '@x/platform/testing';

const slow = process.env.X_SLOW === '1';
/** Round trips per run: two handoffs each, plus the handshake round. */
const ROUNDS = slow ? 100_000 : 2_000;
/** Busy polling with two spinning workers on a 2-core machine: fewer, still thousands of handoffs. */
const POLL_ROUNDS = slow ? 50_000 : 1_000;
const TEST_TIMEOUT = slow ? 600_000 : 30_000;

function expectEveryHandoff(r: PingPongResult, rounds: number): void {
  // rounds timed round trips + 1 handshake: each line rang rounds + 1 times and its
  // receiver woke rounds + 1 times (one ring per wake-up: the sender always waits).
  expect(r.rounds).toBe(rounds);
  for (const line of [r.ping, r.pong]) {
    expect(line.rings).toBe(rounds + 1);
    expect(line.wakeups).toBe(rounds + 1);
    expect(line.recoveries).toBe(0);
  }
  expect(r.events.filter((e) => e.type === 'crash')).toEqual([]);
}

async function stress(options: PingPongOptions, rounds: number): Promise<PingPongResult> {
  // Each single wait fails after 10 s: a lost wake-up is a typed crash, never a hang.
  const r = await runPingPong({ ...options, rounds, timeoutMs: 10_000 });
  expectEveryHandoff(r, rounds);
  return r;
}

describe('threads: two workers, two lines, no lost wake-up', () => {
  it("mode 'sleep' (Atomics.waitAsync), Line.wait on both sides", { timeout: TEST_TIMEOUT }, async () => {
    const r = await stress({ mode: 'sleep' }, ROUNDS);
    // Every wake-up either slept or found the ring already there.
    for (const l of [r.ping, r.pong]) expect(l.spinHits + l.sleeps).toBeGreaterThanOrEqual(l.wakeups);
  });

  it("mode 'sleep', the answering side is a listener (Line.listen)", { timeout: TEST_TIMEOUT }, async () => {
    await stress({ mode: 'sleep', style: 'listen' }, ROUNDS);
  });

  for (const budgetUs of [0, 1, 5]) {
    it(`mode 'poll' with a ${budgetUs} µs budget: never sleeps`, { timeout: TEST_TIMEOUT }, async () => {
      const r = await stress({ mode: 'poll', budgetUs, style: budgetUs === 1 ? 'listen' : 'wait' }, POLL_ROUNDS);
      for (const l of [r.ping, r.pong]) {
        expect(l.sleeps).toBe(0);
        expect(l.spinHits).toBe(l.wakeups);
      }
    });
  }

  for (const spinUs of [0, 1, 5]) {
    it(`mode 'adaptive' spinning ${spinUs} µs, then Atomics.waitAsync`, { timeout: TEST_TIMEOUT }, async () => {
      await stress({ mode: 'adaptive', spinUs, style: spinUs === 1 ? 'listen' : 'wait' }, ROUNDS);
    });
  }

  for (const spinUs of [0, 1, 5]) {
    it(`blocking Line.waitSync (Atomics.wait) spinning ${spinUs} µs, in workers that run their own loop`, { timeout: TEST_TIMEOUT }, async () => {
      await stress({ style: 'sync', spinUs }, ROUNDS);
    });
  }
});

describe('deterministic: the same systems on one thread, rings as queued tasks', () => {
  for (const mode of ['sleep', 'poll', 'adaptive'] as const) {
    it(`mode '${mode}' (accepted; every ring is a delivery task): every handoff arrives once`, { timeout: TEST_TIMEOUT }, async () => {
      const r = await stress({ topology: 'deterministic', mode, spinUs: 0, budgetUs: 0 }, slow ? 50_000 : 5_000);
      // Nothing sleeps on one thread: each wake-up is a delivery task that found the ring.
      for (const l of [r.ping, r.pong]) {
        expect(l.sleeps).toBe(0);
        expect(l.spinHits).toBe(l.wakeups);
      }
      // No time passes on the virtual clock: nobody sleeps for time.
      expect(r.ms).toBe(0);
    });
  }

  it("with a listener on the answering side", { timeout: TEST_TIMEOUT }, async () => {
    await stress({ topology: 'deterministic', style: 'listen' }, slow ? 50_000 : 5_000);
  });

  it('a blocking waitSync is refused with UNSUPPORTED (it would block every system), as a crash, not a hang', async () => {
    const e = await runPingPong({ topology: 'deterministic', style: 'sync', rounds: 10 }).catch((x: unknown) => x);
    expect(isPlatformError(e, 'SYSTEM_CRASHED')).toBe(true);
    const cause = (e as Error).cause as { name: string; code: string };
    expect(cause.name).toBe('PlatformError');
    expect(cause.code).toBe('UNSUPPORTED');
  });
});
