// The system behind runPingPong: two of these hand a token back and forth through two
// lines, each side waiting for the other. Every handoff must arrive exactly once: a
// counter that moved by anything but 1 is an error, and so is a wait that times out.
import { PlatformError, type Line, type SystemContext, type WaitMode } from '@x/platform';

/** The `config` of a {@link pingPongSystem}. @public */
export interface PingPongConfig {
  /** `ping` rings first and measures; `pong` answers. */
  readonly role: 'ping' | 'pong';
  /** Round trips after the first (the handshake, which also waits for the peer to be up). */
  readonly rounds: number;
  /**
   * How each side waits: `wait` (Line.wait), `listen` (pong answers from a listener;
   * ping still uses wait) or `sync` (both block in Line.waitSync, threads only).
   */
  readonly style: 'wait' | 'listen' | 'sync';
  /** The wait mode of `wait` and `listen`. */
  readonly mode: WaitMode;
  /** Spin window (adaptive, sync), microseconds. */
  readonly spinUs: number;
  /** Poll budget (poll), microseconds. */
  readonly budgetUs: number;
  /** Each wait fails after this many milliseconds. */
  readonly timeoutMs: number;
}

/** What the `ping` side reports when done. @public */
export interface PingPongReport {
  /** Timed round trips. */
  readonly rounds: number;
  /** Milliseconds they took. */
  readonly ms: number;
}

function waitSyncOrThrow(ctx: SystemContext, line: Line, seen: number, c: PingPongConfig): number {
  const r = line.waitSync(seen, { timeoutMs: c.timeoutMs, spinUs: c.spinUs });
  if (r === 'stopped') throw new PlatformError('STOPPED', `${ctx.name} stopped`, { system: ctx.name });
  if (r === 'timed-out') throw new PlatformError('TIMEOUT', `${ctx.name}: no ring on '${line.name}' within ${c.timeoutMs} ms`, { system: ctx.name });
  return line.count();
}

function expectNext(who: string, round: number, seen: number, v: number): void {
  if (v !== ((seen + 1) >>> 0)) throw new Error(`${who}: round ${round}: counter is ${v}, expected ${(seen + 1) >>> 0} (a ring lost or doubled)`);
}

/**
 * A doorbell ping-pong system: attach lines `ping` (ping → pong) and `pong`
 * (pong → ping) and give it a {@link PingPongConfig}.
 *
 * @public
 */
export default async function pingPongSystem(ctx: SystemContext<PingPongConfig>): Promise<void> {
  const c = ctx.config;
  const opts = { mode: c.mode, spinUs: c.spinUs, budgetUs: c.budgetUs, timeoutMs: c.timeoutMs };
  const toPong = ctx.line('ping');
  const toPing = ctx.line('pong');
  if (c.role === 'ping') {
    let seen = toPing.count();
    let t0 = 0;
    for (let i = 0; i <= c.rounds; i++) {
      if (i === 1) t0 = ctx.now();
      toPong.ring();
      const v = c.style === 'sync' ? waitSyncOrThrow(ctx, toPing, seen, c) : await toPing.wait(seen, opts);
      expectNext('ping', i, seen, v);
      seen = v;
    }
    const report: PingPongReport = { rounds: c.rounds, ms: ctx.now() - t0 };
    ctx.report(report);
    return;
  }
  if (c.style === 'listen') {
    await new Promise<void>((resolve, reject) => {
      let n = 0;
      const listener = toPong.listen(
        (rings) => {
          if (rings !== 1) throw new Error(`pong: round ${n}: ${rings} rings coalesced, expected 1 (the ping side waits for each answer)`);
          toPing.ring();
          if (++n === c.rounds + 1) {
            listener.close();
            resolve();
          }
        },
        { mode: c.mode, spinUs: c.spinUs, budgetUs: c.budgetUs },
      );
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
    });
    return;
  }
  let seen = 0;
  for (let i = 0; i <= c.rounds; i++) {
    const v = c.style === 'sync' ? waitSyncOrThrow(ctx, toPong, seen, c) : await toPong.wait(seen, opts);
    expectNext('pong', i, seen, v);
    seen = v;
    toPing.ring();
  }
}
