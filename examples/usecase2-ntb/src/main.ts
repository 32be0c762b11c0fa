// Use case 2 of the RFC end to end: HOST1 (virtio rpmsg through ntb_virtio) and HOST2
// (vhost rpmsg through ntb_vhost) joined by an NTB — the three-system EPF bridge (a
// bridge SoC running the NTB endpoint function on two endpoint controllers) or a direct
// pair — each an @x/platform system, its own worker in 'threads' mode. The owner starts
// them, prints the bring-up as they report it, the client sample, then the stream with a
// link flap in the middle and the counts that prove nothing acknowledged was lost or
// delivered twice.
import { Topology, type TopologyConfig, type TopologyEvent, type TopologyMode } from '@x/platform';
import { createNtbBridgeLink, createNtbPairLink, type NtbLineListenOptions } from '@x/transport-ntb';
import { NTB_SYSTEM_LINES } from '@x/transport-ntb/testing';
import { USECASE2_SYSTEM, type Usecase2Outcome, type Usecase2Report, type Usecase2SystemConfig } from './system.js';

export type { Usecase2Outcome } from './system.js';

/** Options of {@link main}. */
export interface Usecase2Options {
  /** `bridge` (three systems: HOST1, the bridge SoC, HOST2) or `pair` (two). Default `bridge`. */
  readonly backend?: 'bridge' | 'pair';
  /** Where the systems run. Default `threads`. */
  readonly platform?: TopologyMode;
  /** Streaming time before the flap and after each flap, ms. Default 1000. */
  readonly streamMs?: number;
  /** At most this many messages per stream phase. Default unbounded in threads mode, 500 in deterministic mode. */
  readonly streamMax?: number;
  /** Link flaps in the middle of the stream. Default 1. */
  readonly flaps?: number;
  /** Run the client sample first. Default true. */
  readonly sample?: boolean;
  /** Messages each side of the client sample receives. Default 100. */
  readonly sampleCount?: number;
  /** RFC patch 15's delay of the sample's first message, ms. Default 5. */
  readonly sampleDelayMs?: number;
  /** Messages in flight. Default 128. */
  readonly window?: number;
  /** Payload bytes. Default 64. */
  readonly size?: number;
  /** How each system waits on its interrupt line. Default `{ mode: 'adaptive', spinUs: 50 }`. */
  readonly listen?: NtbLineListenOptions;
  /** Bridge command poll period, ms. Default 1. */
  readonly pollPeriodMs?: number;
  /** Round trips (one message at a time) HOST1 times after the stream. Default 0. */
  readonly rttRounds?: number;
  /** An unmeasured stream before the measured one (fresh workers: JIT, caches), ms. Default 0. */
  readonly warmupMs?: number;
  /** Bound of every wait, ms. Default 10000. */
  readonly timeoutMs?: number;
  /** Where the timeline and figures go; false for nowhere. Default `console.log`. */
  readonly print?: ((line: string) => void) | false;
}

/** One step, as the owner received it. */
export interface TimelineEntry {
  /** ms since the topology was made (virtual in deterministic mode). */
  readonly at: number;
  readonly side: 'HOST1' | 'HOST2' | 'BRIDGE';
  readonly text: string;
}

/** What {@link main} returns. */
export interface Usecase2Result {
  readonly backend: 'bridge' | 'pair';
  readonly platform: TopologyMode;
  readonly timeline: readonly TimelineEntry[];
  /** The client sample's lines, per side. */
  readonly sample: { readonly host1: readonly string[]; readonly host2: readonly string[] };
  /** HOST1's figures. */
  readonly outcome: Usecase2Outcome;
  /** rpmsg messages per second in the stream, both ways (each acknowledged message is two). */
  readonly messagesPerSecond: number;
  readonly events: readonly TopologyEvent[];
  /**
   * CPU time of the whole process (every thread: all systems' workers and the owner), µs,
   * from HOST1's `stream-start` report to its `stream-end` report, taken with
   * `process.cpuUsage()` in the owner as each report arrives.
   */
  readonly streamCpuUs: number | undefined;
}

/** The topology of use case 2: systems `host1`, `host2` (and `bridge`), the two interrupt lines, the link in every config. */
export function usecase2Topology(o: Usecase2Options = {}): TopologyConfig {
  const backend = o.backend ?? 'bridge';
  const link = backend === 'pair' ? createNtbPairLink() : createNtbBridgeLink();
  const lines = [NTB_SYSTEM_LINES.host1Irq, NTB_SYSTEM_LINES.host2Irq];
  const base: Omit<Usecase2SystemConfig, 'role'> = {
    link,
    listen: o.listen ?? { mode: 'adaptive', spinUs: 50 },
    sample: o.sample ?? true,
    sampleCount: o.sampleCount ?? 100,
    sampleDelayMs: o.sampleDelayMs ?? 5,
    streamMs: o.streamMs ?? 1000,
    streamMax: o.streamMax ?? ((o.platform ?? 'threads') === 'deterministic' ? 500 : Number.MAX_SAFE_INTEGER),
    flaps: o.flaps ?? 1,
    window: o.window ?? 128,
    size: o.size ?? 64,
    timeoutMs: o.timeoutMs ?? 10_000,
    pollPeriodMs: o.pollPeriodMs ?? 1,
    rttRounds: o.rttRounds ?? 0,
    warmupMs: o.warmupMs ?? 0,
  };
  const sys = (role: Usecase2SystemConfig['role']) => ({ name: role, entry: USECASE2_SYSTEM, export: 'usecase2System', lines, config: { ...base, role } satisfies Usecase2SystemConfig });
  return { mode: o.platform ?? 'threads', lines, systems: backend === 'bridge' ? [sys('bridge'), sys('host2'), sys('host1')] : [sys('host2'), sys('host1')] };
}

const fmtAt = (ms: number): string => `+${ms.toFixed(3).padStart(9)} ms`;

/**
 * Use case 2 on one backend: bring-up, Linux's rpmsg client sample, a stream of 64-byte
 * messages with `flaps` link flaps in the middle; returns the figures, throws when HOST1
 * failed or a count shows a lost or duplicated acknowledged message. Every worker is
 * stopped before it returns.
 */
export async function main(o: Usecase2Options = {}): Promise<Usecase2Result> {
  const print = o.print === false ? undefined : (o.print ?? ((l: string) => console.log(l)));
  const backend = o.backend ?? 'bridge';
  const platform = o.platform ?? 'threads';
  print?.(
    `use case 2: HOST1 (virtio rpmsg, ntb_virtio) <-> ${backend === 'bridge' ? 'bridge SoC (pci-epf-ntb on EPC1 + EPC2)' : 'direct NTB pair'} <-> HOST2 (vhost rpmsg, ntb_vhost), ` +
      `${platform === 'threads' ? `${backend === 'bridge' ? 'three' : 'two'} worker threads` : 'one thread (deterministic)'}, ${o.flaps ?? 1} link flap(s)`,
  );
  const topology = new Topology(usecase2Topology(o));
  const t0 = topology.mode === 'deterministic' ? 0 : performance.timeOrigin + performance.now();
  const reports: Usecase2Report[] = [];
  const timeline: TimelineEntry[] = [];
  let outcome: Usecase2Outcome | undefined;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let streamCpuUs: number | undefined;
  const off = topology.onEvent((e) => {
    if (e.type === 'report') {
      const r = e.data as Usecase2Report;
      reports.push(r);
      if (r.kind === 'stream-start') cpuAtStart = process.cpuUsage();
      else if (r.kind === 'stream-end' && cpuAtStart !== undefined && streamCpuUs === undefined) {
        const d = process.cpuUsage(cpuAtStart);
        streamCpuUs = d.user + d.system;
      }
      if (r.kind === 'step') {
        const at = r.t - t0;
        timeline.push({ at, side: r.side, text: r.text });
        print?.(`  [${fmtAt(at)}] ${r.side.padEnd(6)} ${r.text}`);
      } else if (r.kind === 'outcome') outcome = r;
    } else if (e.type === 'crash') print?.(`  [${fmtAt(e.at)}] ${e.system} crashed (${e.reason}): ${e.error.message}`);
    else if (e.type === 'log') print?.(`  ${e.system}: ${e.message}`);
  });
  let events: TopologyEvent[];
  try {
    await topology.start();
    await topology.waitForEvent((e) => e.system === 'host1' && (e.type === 'exit' || e.type === 'crash'));
    events = [...topology.events];
  } finally {
    off();
    await topology.stop();
  }
  const crash = events.find((e) => e.type === 'crash');
  if (outcome === undefined || outcome.error !== undefined) {
    throw new Error(`use case 2 (${backend}) failed: ${outcome?.error ?? (crash?.type === 'crash' ? crash.error.message : 'no outcome')}`, { cause: crash?.type === 'crash' ? crash.error : undefined });
  }
  const sample = {
    host1: reports.flatMap((r) => (r.kind === 'sample' && r.side === 'HOST1' ? [r.line] : [])),
    host2: reports.flatMap((r) => (r.kind === 'sample' && r.side === 'HOST2' ? [r.line] : [])),
  };
  const messagesPerSecond = outcome.ms > 0 ? ((outcome.acknowledged * 2) / outcome.ms) * 1000 : NaN;
  if (print !== undefined) {
    const show = (side: string, lines: readonly string[]): void => {
      if (lines.length === 0) return;
      const incoming = lines.filter((l) => l.startsWith('incoming'));
      const runs = lines.filter((l) => l === 'goodbye!').length;
      // After a flap the channel is announced again and the sample probes again: one run per link session.
      print(`  ${side} rpmsg_client_sample: ${lines[0] ?? ''} … ${incoming.length} × ${incoming[0]?.replace(/^incoming msg 1 /, '') ?? ''} … goodbye! (${runs} run(s): one per link session)`);
    };
    show('HOST1', sample.host1);
    show('HOST2', sample.host2);
    const x = outcome;
    print(
      `  stream (${o.size ?? 64} B, ${x.sessions} link session(s)): sent ${x.sent}, acknowledged ${x.acknowledged}, received by HOST2 ${x.received}, ` +
        `failed with the link down ${x.failed}, in flight at link down ${x.inFlightAtDown}`,
    );
    print(`  acknowledged but lost ${x.lostAcknowledged}, duplicated ${x.remoteDuplicates} at HOST2 / ${x.duplicates} at HOST1, corrupt ${x.corrupt}${x.failedCodes.length > 0 ? `; failures: ${x.failedCodes.join(', ')}` : ''}`);
    if (platform !== 'deterministic') print(`  rate: ${Math.round(messagesPerSecond).toLocaleString('en-US')} rpmsg messages/s (both ways, over ${(x.ms / 1000).toFixed(2)} s including the flap)`);
  }
  const x = outcome;
  if (x.lostAcknowledged !== 0 || x.duplicates !== 0 || x.remoteDuplicates !== 0 || x.corrupt !== 0 || x.acknowledged > x.received || x.acknowledged + x.failed + x.inFlightAtDown !== x.sent) {
    throw new Error(`use case 2 (${backend}): the counts do not add up: ${JSON.stringify(x)}`);
  }
  return { backend, platform, timeline, sample, outcome, messagesPerSecond, events, streamCpuUs };
}

/** What {@link measureUsecase2} measured. */
export interface Usecase2Measurement {
  /** rpmsg messages per second in the stream, both ways (each acknowledged message is two). */
  readonly messagesPerSecond: number;
  /** µs per round trip (one message at a time); NaN without `rttRounds`. */
  readonly rttUs: number;
  /**
   * CPU time per rpmsg message over the stream, µs: `process.cpuUsage()` (user + system,
   * every thread of the process: all systems and the idle owner) taken by the owner when
   * HOST1's stream-start and stream-end reports arrive, divided by 2 × acknowledged.
   */
  readonly cpuUsPerMsg: number;
  /** Rings on both interrupt lines (kicks + interrupts) per rpmsg message over the stream. */
  readonly notificationsPerMsg: number;
}

/**
 * One measurement (no client sample, no flap, nothing printed): rpmsg messages per second,
 * both ways (each acknowledged 64-byte message is one message HOST1 → HOST2 and its echo
 * back), CPU time and notifications per message, and the round trip when `rttRounds` > 0.
 */
export async function measureUsecase2(o: Usecase2Options = {}): Promise<Usecase2Measurement> {
  const r = await main({ sample: false, flaps: 0, ...o, print: false });
  const msgs = (r.outcome.streamAcknowledged ?? r.outcome.acknowledged) * 2;
  return {
    messagesPerSecond: r.outcome.ms > 0 ? (msgs / r.outcome.ms) * 1000 : NaN,
    rttUs: r.outcome.rttUs ?? NaN,
    cpuUsPerMsg: r.streamCpuUs === undefined || msgs === 0 ? NaN : r.streamCpuUs / msgs,
    notificationsPerMsg: r.outcome.streamRings === undefined || msgs === 0 ? NaN : r.outcome.streamRings / msgs,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const backend of ['bridge', 'pair'] as const) await main({ backend });
}
