// Use case 1 of the RFC end to end: SoC1 (PCIe endpoint, vhost rpmsg) and SoC2 (root
// complex, virtio rpmsg), each an @x/platform system — its own worker in 'threads' mode.
// The owner declares the link's regions and wires, starts both, prints the bring-up as
// the systems report it, then the client sample and the figures.
import { Topology, type TopologyConfig, type TopologyEvent, type TopologyMode } from '@x/platform';
import { pciEpfLinkSizes, resolvePciEpfLinkConfig, type PciEpfMode, type PciLineListenOptions } from '@x/transport-pci-epf';
import { PCI_EPF_LINES, PCI_EPF_REGIONS } from '@x/transport-pci-epf/testing';
import { USECASE1_SYSTEM, type OutcomeReport, type RttReport, type StreamReport, type Usecase1Report, type Usecase1Scenario, type Usecase1SystemConfig } from './system.js';

export type { OutcomeReport, Usecase1Scenario } from './system.js';

/** Options of {@link main} and {@link runUsecase1}. */
export interface Usecase1Options {
  /** `rfc` (mode 1: PciEpfVhost ↔ VirtioPciEpf) or `modern` (mode 2: a modern virtio-pci device). Default `rfc`. */
  readonly mode?: PciEpfMode;
  /** How the RC reaches the EP: the mainline `doorbell`, or the RFC's 1 ms `poll`. Default `doorbell`. */
  readonly doorbell?: 'doorbell' | 'poll';
  /** The EP's poll period in `poll` mode, ms. Default 1 (the RFC). */
  readonly pollPeriodMs?: number;
  /**
   * The EP keeps the outbound windows it maps to reach the RC's buffers until another
   * access needs the window (`cacheWindows` of @x/transport-pci-epf), instead of mapping
   * and unmapping one per access as the RFC's `vhost_read` / `vhost_write` do. The
   * RC's buffers sit in one block, so a few windows cover them all and the EP reads and
   * writes them zero-copy. Default true; false is the RFC's data path.
   */
  readonly cacheWindows?: boolean;
  /** Where the systems run. Default `threads`. */
  readonly platform?: TopologyMode;
  /** How each side waits on its wire. Default `{ mode: 'adaptive', spinUs: 50 }`. */
  readonly listen?: PciLineListenOptions;
  /** Streaming time, ms. Default 2500. */
  readonly streamMs?: number;
  /** An unmeasured stream before the measured one (fresh workers: JIT, caches), ms. Default 0. */
  readonly warmupMs?: number;
  /** At most this many messages in a stream. Default unbounded in threads mode, 2000 in deterministic mode. */
  readonly streamMax?: number;
  /** Messages in flight. Default 128. */
  readonly window?: number;
  /** Round trips for the latency figure. Default 2000. */
  readonly rttRounds?: number;
  /** Payload bytes. Default 64. */
  readonly size?: number;
  /** Messages each side of the client sample receives. Default 100. */
  readonly sampleCount?: number;
  /** RFC patch 15's delay of the sample's first message, ms. Default 500 in `main`, 5 otherwise. */
  readonly sampleDelayMs?: number;
  /** Bound of every wait in the systems, ms. Default 10000. */
  readonly timeoutMs?: number;
  /** The RC's command timeout (`rfc`), ms. Default 1000. */
  readonly commandTimeoutMs?: number;
  /** Where the timeline and figures go; false for nowhere. Default `console.log`. */
  readonly print?: ((line: string) => void) | false;
}

/** One step of the bring-up, as the owner received it. */
export interface TimelineEntry {
  /** ms since the topology was made, stamped by the system that saw it (virtual in deterministic mode). */
  readonly at: number;
  readonly side: 'EP' | 'RC';
  readonly text: string;
}

/** What {@link main} returns. */
export interface Usecase1Result {
  readonly mode: PciEpfMode;
  readonly doorbell: 'doorbell' | 'poll';
  readonly platform: TopologyMode;
  /** The bring-up steps, in the order they arrived. */
  readonly timeline: readonly TimelineEntry[];
  /** The client sample's lines, per side. */
  readonly sample: { readonly rc: readonly string[]; readonly ep: readonly string[] };
  /** The stream. */
  readonly stream: StreamReport;
  /** 64-byte (by default) messages echoed per second in the stream (each is two rpmsg messages). */
  readonly messagesPerSecond: number;
  /** Round trip, µs (ping-pong, one message at a time); NaN without round trips. */
  readonly rttUs: number;
  /** The RC's final numbers. */
  readonly outcome: OutcomeReport;
}

/** What {@link runUsecase1} returns: every report, in order, and the crash / exit events. */
export interface Usecase1Run {
  readonly reports: readonly Usecase1Report[];
  readonly timeline: readonly TimelineEntry[];
  readonly outcome: OutcomeReport | undefined;
  readonly events: readonly TopologyEvent[];
  /**
   * CPU time of the whole process (every thread: both systems' workers and the owner),
   * µs, from the RC's `stream-start` report to its `stream` report, taken with
   * `process.cpuUsage()` in the owner as each report arrives; undefined without a stream.
   */
  readonly streamCpuUs: number | undefined;
}

/** The topology of use case 1: the link's three regions, its two wires, an `ep` and an `rc` system. */
export function usecase1Topology(scenario: Usecase1Scenario, o: Usecase1Options = {}): TopologyConfig {
  const platform = o.platform ?? 'threads';
  const notify = o.doorbell ?? 'doorbell';
  const link = resolvePciEpfLinkConfig({ epc: { doorbell: notify === 'doorbell' } });
  const sizes = pciEpfLinkSizes(link);
  const regions = [
    { name: PCI_EPF_REGIONS.rcMemory, size: sizes.rcMemory },
    { name: PCI_EPF_REGIONS.epMemory, size: sizes.epMemory },
    { name: PCI_EPF_REGIONS.fabric, size: sizes.fabric },
  ];
  // The link's model addresses its buffers itself; the systems' bus addresses only have to
  // keep the three regions apart (platform rejects overlapping attachments).
  let next = 0;
  const attach = regions.map((r) => {
    const base = next;
    next += Math.ceil(r.size / 0x10000) * 0x10000;
    return { region: r.name, base };
  });
  const lines = [PCI_EPF_LINES.toRc, PCI_EPF_LINES.toEp];
  const base: Omit<Usecase1SystemConfig, 'role'> = {
    scenario,
    mode: o.mode ?? 'rfc',
    notify,
    pollPeriodMs: o.pollPeriodMs ?? 1,
    cacheWindows: o.cacheWindows ?? true,
    link,
    listen: o.listen ?? { mode: 'adaptive', spinUs: 50 },
    sampleCount: o.sampleCount ?? 100,
    sampleDelayMs: o.sampleDelayMs ?? 5,
    streamMs: o.streamMs ?? 2500,
    warmupMs: o.warmupMs ?? 0,
    streamMax: o.streamMax ?? (platform === 'deterministic' ? 2000 : Number.MAX_SAFE_INTEGER),
    window: o.window ?? 128,
    rttRounds: o.rttRounds ?? 2000,
    size: o.size ?? 64,
    timeoutMs: o.timeoutMs ?? 10_000,
    commandTimeoutMs: o.commandTimeoutMs ?? 1000,
  };
  return {
    mode: platform,
    regions,
    lines,
    systems: [
      { name: 'ep', entry: USECASE1_SYSTEM, export: 'usecase1System', regions: attach, lines, config: { ...base, role: 'ep' } },
      { name: 'rc', entry: USECASE1_SYSTEM, export: 'usecase1System', regions: attach, lines, config: { ...base, role: 'rc' } },
    ],
  };
}

const fmtAt = (ms: number): string => `+${ms.toFixed(3).padStart(9)} ms`;

/**
 * Runs one scenario: starts both systems, prints the timeline as it arrives, waits for
 * the RC to finish (or crash), then stops everything. `beforeEnd` runs when the RC
 * reports `streaming` (fault injection from the owner: `topology.kill('ep')`).
 */
export async function runUsecase1(
  scenario: Usecase1Scenario,
  o: Usecase1Options = {},
  hooks: { onStreaming?: (topology: Topology) => Promise<void> | void } = {},
): Promise<Usecase1Run> {
  const print = o.print === false ? undefined : (o.print ?? ((l: string) => console.log(l)));
  const topology = new Topology(usecase1Topology(scenario, o));
  const t0 = topology.mode === 'deterministic' ? 0 : performance.timeOrigin + performance.now();
  const reports: Usecase1Report[] = [];
  const timeline: TimelineEntry[] = [];
  let outcome: OutcomeReport | undefined;
  let hook: Promise<void> | undefined;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let streamCpuUs: number | undefined;
  const off = topology.onEvent((e) => {
    if (e.type === 'report') {
      const r = e.data as Usecase1Report;
      reports.push(r);
      if (r.kind === 'stream-start') cpuAtStart = process.cpuUsage();
      else if (r.kind === 'stream' && cpuAtStart !== undefined && streamCpuUs === undefined) {
        const d = process.cpuUsage(cpuAtStart);
        streamCpuUs = d.user + d.system;
      }
      if (r.kind === 'step') {
        const at = r.t - t0;
        timeline.push({ at, side: r.side, text: r.text });
        print?.(`  [${fmtAt(at)}] ${r.side}  ${r.text}`);
      } else if (r.kind === 'outcome') outcome = r;
      else if (r.kind === 'streaming' && hooks.onStreaming !== undefined) hook = Promise.resolve(hooks.onStreaming(topology));
    } else if (e.type === 'crash') print?.(`  [${fmtAt(e.at)}] ${e.system} crashed (${e.reason}): ${e.error.message}`);
    else if (e.type === 'log') print?.(`  ${e.system}: ${e.message}`);
  });
  try {
    await topology.start();
    await topology.waitForEvent((e) => e.system === 'rc' && (e.type === 'exit' || e.type === 'crash'));
    await hook;
    return { reports, timeline, outcome, events: [...topology.events], streamCpuUs };
  } finally {
    off();
    await topology.stop();
  }
}

/**
 * Use case 1 in one mode: bring-up, Linux's rpmsg client sample ("hello world!", 100
 * replies each way), a stream of 64-byte messages for `streamMs`, then round trips.
 * Returns the figures; throws when the RC side failed.
 */
export async function main(o: Usecase1Options = {}): Promise<Usecase1Result> {
  const print = o.print === false ? undefined : (o.print ?? ((l: string) => console.log(l)));
  const mode = o.mode ?? 'rfc';
  const doorbell = o.doorbell ?? 'doorbell';
  const platform = o.platform ?? 'threads';
  print?.(
    `use case 1: PCIe RC (virtio rpmsg) <-> EP (vhost rpmsg), ${mode === 'rfc' ? 'mode 1: the RFC (pci-epf-vhost / virtio_pci_epf)' : 'mode 2: modern virtio-pci'}, ` +
      `${doorbell === 'doorbell' ? 'doorbell' : `EP polling every ${o.pollPeriodMs ?? 1} ms`}, ${platform === 'threads' ? 'two worker threads' : 'one thread (deterministic)'}`,
  );
  const run = await runUsecase1('demo', { ...o, sampleDelayMs: o.sampleDelayMs ?? 500 });
  const crash = run.events.find((e) => e.type === 'crash');
  if (run.outcome === undefined || run.outcome.error !== undefined) {
    throw new Error(`use case 1 (${mode}, ${doorbell}) failed: ${run.outcome?.error?.message ?? (crash?.type === 'crash' ? crash.error.message : 'no outcome')}`, { cause: crash?.type === 'crash' ? crash.error : undefined });
  }
  const sample = {
    rc: run.reports.flatMap((r) => (r.kind === 'sample' && r.side === 'RC' ? [r.line] : [])),
    ep: run.reports.flatMap((r) => (r.kind === 'sample' && r.side === 'EP' ? [r.line] : [])),
  };
  const stream = run.reports.find((r): r is StreamReport => r.kind === 'stream')!;
  const rtt = run.reports.find((r): r is RttReport => r.kind === 'rtt');
  const messagesPerSecond = stream.ms > 0 ? (stream.received / stream.ms) * 1000 : NaN;
  const rttUs = rtt?.usPerRoundTrip ?? NaN;
  if (print !== undefined) {
    const show = (side: string, lines: readonly string[]): void => {
      const incoming = lines.filter((l) => l.startsWith('incoming'));
      print(`  ${side} rpmsg_client_sample: ${lines[0] ?? ''} … ${incoming.length} × ${incoming[0]?.replace(/^incoming msg 1 /, '') ?? ''} … ${lines.includes('goodbye!') ? 'goodbye!' : ''}`);
    };
    show('RC', sample.rc);
    show('EP', sample.ep);
    print(
      `  stream: ${stream.received} × ${o.size ?? 64}-byte echoes in ${(stream.ms / 1000).toFixed(2)} s = ${Math.round(messagesPerSecond).toLocaleString('en-US')} round trips/s ` +
        `(${Math.round(messagesPerSecond * 2).toLocaleString('en-US')} rpmsg messages/s), duplicates ${stream.duplicates}, corrupt ${stream.corrupt}`,
    );
    if (rtt !== undefined) print(`  round trip (one at a time, ${rtt.rounds}×): ${rtt.usPerRoundTrip.toFixed(1)} µs`);
  }
  return { mode, doorbell, platform, timeline: run.timeline, sample, stream, messagesPerSecond, rttUs, outcome: run.outcome };
}

/** What {@link measureUsecase1} measured. */
export interface Usecase1Measurement {
  /** Echoes per second in the stream (each echo is two rpmsg messages: RC → EP and back). */
  readonly messagesPerSecond: number;
  /** Round trip, µs (one message at a time); NaN without round trips. */
  readonly rttUs: number;
  /**
   * CPU time per rpmsg message over the stream, µs: `process.cpuUsage()` (user + system,
   * every thread of the process: both systems and the idle owner) taken by the owner when
   * the RC's stream-start and stream reports arrive, divided by 2 × echoes.
   */
  readonly cpuUsPerMsg: number;
  /** Doorbell rings (kicks + interrupts, both wires) per rpmsg message over the stream. */
  readonly notificationsPerMsg: number;
}

/** One measurement (no client sample, nothing printed): the stream's rate, CPU time and notifications, and the round trip. */
export async function measureUsecase1(o: Usecase1Options = {}): Promise<Usecase1Measurement> {
  const run = await runUsecase1('bench', { ...o, print: false });
  if (run.outcome === undefined || run.outcome.error !== undefined) throw new Error(`use case 1 bench failed: ${run.outcome?.error?.message ?? 'no outcome'}`);
  const stream = run.reports.find((r): r is StreamReport => r.kind === 'stream')!;
  const rtt = run.reports.find((r): r is RttReport => r.kind === 'rtt');
  const msgs = stream.received * 2;
  return {
    messagesPerSecond: (stream.received / stream.ms) * 1000,
    rttUs: rtt?.usPerRoundTrip ?? NaN,
    cpuUsPerMsg: run.streamCpuUs === undefined || msgs === 0 ? NaN : run.streamCpuUs / msgs,
    notificationsPerMsg: msgs === 0 ? NaN : stream.rings / msgs,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const mode of ['rfc', 'modern'] as const) await main({ mode });
}
