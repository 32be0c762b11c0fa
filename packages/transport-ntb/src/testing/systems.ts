// The systems of use case 2 for `@x/platform` topologies: HOST1 (NtbVirtio with the
// echo client), HOST2 (NtbVhost bound through the configuration tree to the echo
// device) and, for the three-system topology, the bridge SoC running the NTB endpoint
// function. Each builds its side over the link's shared buffers and the topology's
// interrupt lines, and reports to the owner; nothing else crosses between them.
import type { Line, SystemContext, TopologyConfig, TopologyMode } from '@x/platform';
import { ConfigTree, VhostBus, VhostConfigFs } from '@x/vhost-core';
import { VirtioBus } from '@x/virtio-core';
import {
  createNtbBridgeLink,
  createNtbPairLink,
  isNtbError,
  startNtbEpfFunction,
  startNtbVhostSide,
  startNtbVirtioSide,
  type NtbBridgeLink,
  type NtbBridgeLinkOptions,
  type NtbLine,
  type NtbLineListenOptions,
  type NtbPairLink,
  type NtbPairLinkOptions,
  type NtbTraceEvent,
} from '@x/transport-ntb';
import { NtbEchoClient, type NtbEchoClientCounts } from './echo-client.js';
import { NtbEchoVhostDriver } from './echo-vhost.js';

/** Line names of use case 2 topologies. @public */
export const NTB_SYSTEM_LINES = {
  /** HOST1's interrupt line. */
  host1Irq: 'ntb-host1-irq',
  /** HOST2's interrupt line. */
  host2Irq: 'ntb-host2-irq',
} as const;

/** The `config` of {@link ntbEchoSystem}. @public */
export interface NtbSystemConfig {
  /** Which system this is. */
  readonly role: 'host1' | 'host2' | 'bridge';
  /** The link (its shared buffers travel in the config, structured-cloned = shared). */
  readonly link: NtbPairLink | NtbBridgeLink;
  /** Wait this long (the system's clock) before starting: sets the start order. */
  readonly startDelayMs: number;
  /** HOST1: echo messages to stream (0: none). */
  readonly messages: number;
  /** HOST1: bytes per message. */
  readonly size: number;
  /** HOST1: link flaps (its `ntb_link_disable` / `ntb_link_enable`) spread over the stream. */
  readonly flaps: number;
  /** HOST1: after bring-up, stream until the link goes down, then report how it went down. */
  readonly untilPeerDown: boolean;
  /** How each system waits on its interrupt line. */
  readonly listen: NtbLineListenOptions;
  /** Every wait's bound, ms. */
  readonly timeoutMs: number;
  /** Bridge: command poll period, ms. */
  readonly pollPeriodMs: number;
  /** Report the NTB device's trace after bring-up. */
  readonly trace: boolean;
}

/** One line of a bring-up trace: when (the system's clock), and what. @public */
export interface NtbSystemTraceEntry {
  /** Milliseconds on the system's clock. */
  readonly t: number;
  /** An `NtbTraceEvent` op, or `virtio:<event>` / `vhost:<event>` of the client. */
  readonly op: string;
  /** Its arguments. */
  readonly args: readonly number[];
}

/** What the systems report. @public */
export type NtbSystemReport =
  | { readonly kind: 'ready'; readonly host: 1 | 2; readonly session: number }
  | { readonly kind: 'trace'; readonly host: 1 | 2; readonly entries: readonly NtbSystemTraceEntry[] }
  | { readonly kind: 'stream'; readonly counts: NtbEchoClientCounts; readonly acked: Uint8Array; readonly echoed: Uint8Array; readonly ms: number; readonly sessions: number; readonly failedCodes: readonly string[] }
  | { readonly kind: 'tally'; readonly session: number; readonly received: Uint8Array; readonly duplicates: number }
  | { readonly kind: 'peer-down'; readonly code: string | undefined; readonly causeCode: string | undefined; readonly sent: number; readonly failed: number; readonly failedCodes: readonly string[] };

/** URL of this module, for a `SystemSpec.entry`. @public */
export const NTB_ECHO_SYSTEM: URL = new URL(`./systems${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

function wire(l: Line, listen: NtbLineListenOptions): NtbLine {
  return { ring: () => l.ring(), listen: (h, o) => l.listen(h, { ...listen, ...o }) };
}

function codeOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : undefined;
}

/** One turn of the event loop: a task in the deterministic scheduler, `setImmediate` in a worker (not a ≥ 1 ms timer). */
function yieldTurn(ctx: SystemContext): Promise<void> {
  return ctx.mode === 'deterministic' ? ctx.sleep(0) : new Promise((r) => setImmediate(r));
}

async function within<T>(ctx: SystemContext, ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: (() => void) | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = ctx.setTimer(ms, () => reject(new Error(`${ctx.name}: ${what} did not happen within ${ms} ms`)));
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    timer?.();
  }
}

/**
 * One system of a use case 2 topology (`config.role`): the bridge binds the NTB function
 * and serves until stopped; HOST2 binds the echo device through the configuration tree
 * (`vhost-transport/ntb-host2` → `vhost-client/ntb-echo/ffffffff:00000007`), reports a
 * tally of what it received at every link down, and serves until stopped; HOST1
 * registers the echo client, reports bring-up, streams with link flaps (or until the
 * link goes down), reports, and exits.
 *
 * @public
 */
export async function ntbEchoSystem(ctx: SystemContext<NtbSystemConfig>): Promise<void> {
  const c = ctx.config;
  const lines = { h1: wire(ctx.line(NTB_SYSTEM_LINES.host1Irq), c.listen), h2: wire(ctx.line(NTB_SYSTEM_LINES.host2Irq), c.listen) };
  if (c.startDelayMs > 0) await ctx.sleep(c.startDelayMs);
  const watchPeer = ctx.onPeerDown.bind(ctx);
  if (c.role === 'bridge') {
    if (c.link.kind !== 'ntb-bridge') throw new Error('the bridge system needs a bridge link');
    const f = startNtbEpfFunction(c.link, { lines: { host1Irq: lines.h1, host2Irq: lines.h2 }, clock: ctx, pollPeriodMs: c.pollPeriodMs, watchPeer, hostNames: ['host1', 'host2'] });
    try {
      await ctx.untilStopped();
    } finally {
      f.close();
    }
    return;
  }
  const host = c.role === 'host1' ? 1 : 2;
  const hostLines = c.link.kind === 'ntb-pair' ? (host === 1 ? { irq: lines.h1, peerIrq: lines.h2 } : { irq: lines.h2, peerIrq: lines.h1 }) : host === 1 ? { irq: lines.h1, peerIrq: lines.h2 } : { irq: lines.h2, peerIrq: lines.h1 };
  const entries: NtbSystemTraceEntry[] = [];
  const trace = c.trace ? (e: NtbTraceEvent) => entries.push({ t: ctx.now(), op: e.op, args: [...e.args] }) : undefined;
  const peerNames = c.link.kind === 'ntb-bridge' ? ['bridge', host === 1 ? 'host2' : 'host1'] : [host === 1 ? 'host2' : 'host1'];
  const common = { link: c.link, lines: hostLines, listen: c.listen, clock: ctx, watchPeer, peerNames, ...(trace === undefined ? {} : { trace }) };

  if (host === 2) {
    const received = new Uint8Array(Math.max(1, c.messages));
    let duplicates = 0;
    const echo = new NtbEchoVhostDriver({
      onMessage: (m) => {
        if (m.length < 4) return;
        const seq = new DataView(m.buffer, m.byteOffset, 4).getUint32(0, true);
        if (seq < received.length) {
          if (received[seq] !== 0) duplicates++;
          received[seq] = Math.min(255, received[seq]! + 1);
        }
      },
    });
    const vhostBus = new VhostBus();
    const configFs = new VhostConfigFs(new ConfigTree(), vhostBus);
    await vhostBus.registerDriver(echo);
    let session = 0;
    const side = await startNtbVhostSide({
      ...common,
      configFs,
      clientItem: '/vhost/vhost-client/ntb-echo/ffffffff:00000007',
      onEvent: (e) => {
        if (trace !== undefined) entries.push({ t: ctx.now(), op: `vhost:${e.type}`, args: 'session' in e && typeof e.session === 'number' ? [e.session] : [] });
        if (e.type === 'handshake') {
          session = e.session;
          ctx.report({ kind: 'ready', host: 2, session } satisfies NtbSystemReport);
          if (c.trace) ctx.report({ kind: 'trace', host: 2, entries: [...entries] } satisfies NtbSystemReport);
        }
        if (e.type === 'link-down') ctx.report({ kind: 'tally', session, received: received.slice(), duplicates } satisfies NtbSystemReport);
      },
    });
    try {
      await ctx.untilStopped();
    } finally {
      await side.close();
    }
    return;
  }

  // HOST1.
  const virtioBus = new VirtioBus({ opTimeoutMs: c.timeoutMs });
  const client = new NtbEchoClient({ size: c.size, rxBuffers: 256 });
  await virtioBus.registerDriver(client);
  let downError: unknown;
  const side = await startNtbVirtioSide({
    ...common,
    virtioBus,
    onEvent: (e) => {
      if (trace !== undefined) entries.push({ t: ctx.now(), op: `virtio:${e.type}`, args: 'session' in e && typeof e.session === 'number' ? [e.session] : [] });
      if (e.type === 'link-down') downError ??= e.error;
    },
  });
  try {
    await within(ctx, c.timeoutMs, 'the handshake', side.virtio.ready());
    await within(ctx, c.timeoutMs, 'the echo client', client.ready());
    ctx.report({ kind: 'ready', host: 1, session: side.virtio.sessions } satisfies NtbSystemReport);
    if (c.trace) ctx.report({ kind: 'trace', host: 1, entries: [...entries] } satisfies NtbSystemReport);

    if (c.untilPeerDown) {
      // Stream until the link goes down under us; then report how it went down.
      while (side.virtio.state === 'ready' && !ctx.stopping) {
        if (!client.trySend()) await Promise.race([client.whenRoom(), ctx.sleep(1)]);
        else if (client.counts.sent % 64 === 0) await yieldTurn(ctx);
      }
      await within(ctx, c.timeoutMs, 'the device removal', (async () => {
        while (client.device !== undefined) await ctx.sleep(1);
      })());
      const cause = (downError as { cause?: unknown } | undefined)?.cause;
      ctx.report({
        kind: 'peer-down',
        code: codeOf(downError),
        causeCode: codeOf(cause),
        sent: client.counts.sent,
        failed: client.counts.failed,
        failedCodes: [...new Set(client.failures.map((e) => (isNtbError(e) ? e.code : String(e))))],
      } satisfies NtbSystemReport);
      return;
    }

    if (c.messages > 0) {
      const t0 = ctx.now();
      const per = Math.ceil(c.messages / (c.flaps + 1));
      let flapsDone = 0;
      while (client.counts.sent < c.messages) {
        if (flapsDone < c.flaps && client.counts.sent >= per * (flapsDone + 1)) {
          flapsDone++;
          await side.dev.linkDisable();
          await within(ctx, c.timeoutMs, 'the device removal', (async () => {
            while (client.device !== undefined || side.virtio.state !== 'down') await ctx.sleep(1);
          })());
          await side.dev.linkEnable();
          await within(ctx, c.timeoutMs, 'the handshake after a flap', client.ready());
          continue;
        }
        if (!client.trySend()) await Promise.race([client.whenRoom(), ctx.sleep(1)]);
        else if (client.counts.sent % 64 === 0) await yieldTurn(ctx);
      }
      await within(ctx, c.timeoutMs, 'the last acknowledgements', (async () => {
        while (client.inflight > 0) await Promise.race([client.whenRoom(), ctx.sleep(1)]);
      })());
      const ms = ctx.now() - t0;
      const acked = new Uint8Array(c.messages);
      for (const s of client.acked) if (s < acked.length) acked[s] = 1;
      const echoed = new Uint8Array(c.messages);
      for (const s of client.echoed) if (s < echoed.length) echoed[s] = 1;
      ctx.report({
        kind: 'stream',
        counts: client.counts,
        acked,
        echoed,
        ms,
        sessions: side.virtio.sessions,
        failedCodes: [...new Set(client.failures.map((e) => (isNtbError(e) ? e.code : String(e))))],
      } satisfies NtbSystemReport);
    }
    // Take the link down at the end so HOST2 reports its final tally.
    await side.dev.linkDisable();
    await within(ctx, c.timeoutMs, 'the final link down', (async () => {
      while (side.virtio.state !== 'down') await ctx.sleep(1);
    })());
  } finally {
    await side.close();
  }
}

/** Options of {@link ntbEchoTopology}. @public */
export interface NtbEchoTopologyOptions {
  /** `pair` (two systems) or `bridge` (three). Default `pair`. */
  readonly backend?: 'pair' | 'bridge';
  /** Where the systems run. Default `threads`. */
  readonly topology?: TopologyMode;
  /** Which host starts first. Default `host2`. */
  readonly first?: 'host1' | 'host2';
  /** Delay of the second host's start, ms of its clock. Default 20. */
  readonly startGapMs?: number;
  /** Messages HOST1 streams. Default 2000. */
  readonly messages?: number;
  /** Bytes per message. Default 64. */
  readonly size?: number;
  /** Link flaps during the stream. Default 0. */
  readonly flaps?: number;
  /** HOST1 streams until the link goes down and reports how (for crash tests). Default false. */
  readonly untilPeerDown?: boolean;
  /** How each system waits on its line. Default `{ mode: 'adaptive', spinUs: 50 }`. */
  readonly listen?: NtbLineListenOptions;
  /** Every wait's bound, ms. Default 20000. */
  readonly timeoutMs?: number;
  /** Bridge command poll period, ms. Default 1. */
  readonly pollPeriodMs?: number;
  /** Report bring-up traces. Default false. */
  readonly trace?: boolean;
  /** Sizes of a pair link. */
  readonly pairLink?: NtbPairLinkOptions;
  /** Sizes of a bridge link. */
  readonly bridgeLink?: NtbBridgeLinkOptions;
}

/**
 * The `@x/platform` topology of use case 2: systems `host1`, `host2` (and `bridge`) of
 * {@link ntbEchoSystem}, the two host interrupt lines, and the link's buffers in every
 * system's config.
 *
 * @public
 */
export function ntbEchoTopology(options: NtbEchoTopologyOptions = {}): TopologyConfig {
  const backend = options.backend ?? 'pair';
  const link = backend === 'pair' ? createNtbPairLink(options.pairLink) : createNtbBridgeLink(options.bridgeLink);
  const lines = [NTB_SYSTEM_LINES.host1Irq, NTB_SYSTEM_LINES.host2Irq];
  const first = options.first ?? 'host2';
  const gap = options.startGapMs ?? 20;
  const base: Omit<NtbSystemConfig, 'role' | 'startDelayMs'> = {
    link,
    messages: options.messages ?? 2000,
    size: options.size ?? 64,
    flaps: options.flaps ?? 0,
    untilPeerDown: options.untilPeerDown ?? false,
    listen: options.listen ?? { mode: 'adaptive', spinUs: 50 },
    timeoutMs: options.timeoutMs ?? 20_000,
    pollPeriodMs: options.pollPeriodMs ?? 1,
    trace: options.trace ?? false,
  };
  const sys = (role: NtbSystemConfig['role'], startDelayMs: number) => ({
    name: role,
    entry: NTB_ECHO_SYSTEM,
    export: 'ntbEchoSystem',
    lines,
    config: { ...base, role, startDelayMs } satisfies NtbSystemConfig,
  });
  const hosts = [sys('host1', first === 'host1' ? 0 : gap), sys('host2', first === 'host2' ? 0 : gap)];
  return {
    mode: options.topology ?? 'threads',
    lines,
    systems: backend === 'bridge' ? [sys('bridge', 0), ...hosts] : hosts,
  };
}
