// The system behind runPingPong: two of these hand a token back and forth through two
// lines, each side waiting for the other. Every handoff must arrive exactly once: a
// counter that moved by anything but 1 is an error, and so is a wait that times out.
import { PlatformError, type Line, type SystemContext, type WaitMode } from '@x/platform';

/** One phase of a ping-pong run: how both sides wait for it. @public */
export interface PingPongPhase {
  /**
   * How each side waits: `wait` (Line.wait), `listen` (pong answers from a listener;
   * ping still uses wait) or `sync` (both block in Line.waitSync; threads only).
   */
  readonly style: 'wait' | 'listen' | 'sync';
  /** The wait mode of `wait` and `listen`. */
  readonly mode: WaitMode;
  /** Spin window (adaptive, sync), microseconds. */
  readonly spinUs: number;
  /** Poll budget (poll), microseconds. */
  readonly budgetUs: number;
}

/** The `config` of a {@link pingPongSystem}. @public */
export interface PingPongConfig {
  /** `ping` rings first and measures; `pong` answers. */
  readonly role: 'ping' | 'pong';
  /** Timed round trips per phase, after the phase's first (a handshake, untimed). */
  readonly rounds: number;
  /** The phases, run one after the other over the same two lines. */
  readonly phases: readonly PingPongPhase[];
  /** Each wait fails after this many milliseconds. */
  readonly timeoutMs: number;
}

/** What the `ping` side reports after each phase. @public */
export interface PingPongReport {
  /** Index of the phase in {@link PingPongConfig.phases}. */
  readonly phase: number;
  /** Timed round trips. */
  readonly rounds: number;
  /** Milliseconds they took. */
  readonly ms: number;
}

function waitSyncOrThrow(ctx: SystemContext, line: Line, seen: number, p: PingPongPhase, timeoutMs: number): number {
  const r = line.waitSync(seen, { timeoutMs, spinUs: p.spinUs });
  if (r === 'stopped') throw new PlatformError('STOPPED', `${ctx.name} stopped`, { system: ctx.name });
  if (r === 'timed-out') throw new PlatformError('TIMEOUT', `${ctx.name}: no ring on '${line.name}' within ${timeoutMs} ms`, { system: ctx.name });
  return line.count();
}

function expectNext(who: string, phase: number, round: number, seen: number, v: number): void {
  if (v !== ((seen + 1) >>> 0)) {
    throw new Error(`${who}: phase ${phase} round ${round}: counter is ${v}, expected ${(seen + 1) >>> 0} (a ring lost or doubled)`);
  }
}

/**
 * A doorbell ping-pong system: attach lines `ping` (ping → pong) and `pong`
 * (pong → ping) and give it a {@link PingPongConfig}.
 *
 * @public
 */
export default async function pingPongSystem(ctx: SystemContext<PingPongConfig>): Promise<void> {
  const c = ctx.config;
  const toPong = ctx.line('ping');
  const toPing = ctx.line('pong');
  let seen = 0;
  for (const [k, p] of c.phases.entries()) {
    const opts = { mode: p.mode, spinUs: p.spinUs, budgetUs: p.budgetUs, timeoutMs: c.timeoutMs };
    if (c.role === 'ping') {
      let t0 = 0;
      for (let i = 0; i <= c.rounds; i++) {
        if (i === 1) t0 = ctx.now();
        toPong.ring();
        const v = p.style === 'sync' ? waitSyncOrThrow(ctx, toPing, seen, p, c.timeoutMs) : await toPing.wait(seen, opts);
        expectNext('ping', k, i, seen, v);
        seen = v;
      }
      const report: PingPongReport = { phase: k, rounds: c.rounds, ms: ctx.now() - t0 };
      ctx.report(report);
    } else if (p.style === 'listen') {
      const from = seen;
      seen = await new Promise<number>((resolve, reject) => {
        let n = 0;
        const listener = toPong.listen(
          (rings) => {
            if (rings !== 1) throw new Error(`pong: phase ${k} round ${n}: ${rings} rings coalesced, expected 1 (the ping side waits for each answer)`);
            toPing.ring();
            if (++n === c.rounds + 1) {
              listener.close();
              // What this listener handled, not toPong.count(): the ping side may have
              // rung for the next phase already.
              resolve((from + n) >>> 0);
            }
          },
          { mode: p.mode, spinUs: p.spinUs, budgetUs: p.budgetUs, seen },
        );
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
    } else {
      for (let i = 0; i <= c.rounds; i++) {
        const v = p.style === 'sync' ? waitSyncOrThrow(ctx, toPong, seen, p, c.timeoutMs) : await toPong.wait(seen, opts);
        expectNext('pong', k, i, seen, v);
        seen = v;
        toPing.ring();
      }
    }
  }
}
