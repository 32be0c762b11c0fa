// The two systems of use case 1 (rfc-protocol §2.1–2.5): SoC1, the PCIe endpoint,
// runs the vhost rpmsg bus over the RFC's endpoint function (or a modern virtio-pci
// device); SoC2, the root complex, runs the virtio rpmsg bus over the RFC's RC driver
// (or the stock modern driver). Each is one @x/platform system: its own worker in
// 'threads' mode. They share only the link's regions and its two wires; everything the
// owner learns comes through ctx.report(), and every scenario is decided by the config
// each system got at start (the owner never calls into a system).
import type { Line, SystemContext } from '@x/platform';
import { ConfigTree, VHOST_NOTIFY, VhostBus, type VhostDevice } from '@x/vhost-core';
import { VirtioBus } from '@x/virtio-core';
import { RPMSG_ADDR_ANY, RpmsgConfigFs, VhostRpmsgBus, VirtioRpmsgBus, isRpmsgError, type RpmsgChannel, type RpmsgDriver, type RpmsgEndpoint, type RpmsgVirtproc } from '@x/rpmsg';
import {
  startPciEpfEndpoint,
  startPciEpfHost,
  type PciEpfHost,
  type PciEpfLinkConfig,
  type PciEpfMode,
  type PciLine,
  type PciLineListenOptions,
  type VirtioPciEpf,
} from '@x/transport-pci-epf';
import { PCI_EPF_LINES, PCI_EPF_REGIONS } from '@x/transport-pci-epf/testing';
import { rpmsgClientSample } from '@x/example-rpmsg-client-sample/sample';

/** The channel the stream and the round trips use (an echo service on the EP). */
export const ECHO_CHANNEL = 'rpmsg-uc1-echo';
/** The channel of Linux's rpmsg client sample. */
export const SAMPLE_CHANNEL = 'rpmsg-client-sample';
/** A sequence number the EP's echo service answers with its own counts instead of an echo. */
const STATS_QUERY = 0xffff_ffff;

/**
 * What the root complex does after bring-up:
 * - `demo`: the client sample, a stream for `streamMs`, round trips; reports the figures;
 * - `bench`: the demo without the client sample;
 * - `silent-ep`: the EP never answers a command (its 1 ms poller never fires); the RC reports the error;
 * - `requeue`: stream, DEACTIVATE the RC's TX queue, send while it is off, ACTIVATE it again, stream;
 * - `reprobe`: stream; while it runs, the rpmsg driver is removed and bound again, then the
 *   whole RC side is closed and re-enumerated; each side counts duplicates;
 * - `ep-killed`: stream until the EP's system goes down, then report what the RC gets.
 */
export type Usecase1Scenario = 'demo' | 'bench' | 'silent-ep' | 'requeue' | 'reprobe' | 'ep-killed';

/** The `config` of {@link usecase1System}; both systems get the same but for `role`. */
export interface Usecase1SystemConfig {
  readonly role: 'ep' | 'rc';
  readonly scenario: Usecase1Scenario;
  readonly mode: PciEpfMode;
  /** `doorbell` (mainline) or `poll` (the RFC: the EP polls the command register). */
  readonly notify: 'doorbell' | 'poll';
  readonly pollPeriodMs: number;
  /** The EP keeps per-access outbound windows mapped (see {@link Usecase1Options.cacheWindows}). */
  readonly cacheWindows: boolean;
  readonly link: PciEpfLinkConfig;
  readonly listen: PciLineListenOptions;
  /** Messages each side of the client sample takes before goodbye. */
  readonly sampleCount: number;
  /** RFC patch 15's first-message delay, ms. */
  readonly sampleDelayMs: number;
  /** How long to stream, ms (system clock: virtual in deterministic mode). */
  readonly streamMs: number;
  /** An unmeasured stream before the measured one (`demo`, `bench`), ms; 0 or absent: none. */
  readonly warmupMs?: number;
  /** At most this many messages per stream (bounds a deterministic run). */
  readonly streamMax: number;
  /** Messages in flight while streaming. */
  readonly window: number;
  /** Round trips for the latency figure. */
  readonly rttRounds: number;
  /** Payload bytes (≥ 8). */
  readonly size: number;
  /** Bound of every wait, ms. */
  readonly timeoutMs: number;
  /** The RC's command timeout, ms (`rfc`). */
  readonly commandTimeoutMs: number;
}

/** One bring-up step as a system saw it. */
export interface StepReport {
  readonly kind: 'step';
  /** When: wall-clock ms (performance.timeOrigin + now(), one timebase for every worker), or virtual ms in deterministic mode. */
  readonly t: number;
  readonly side: 'EP' | 'RC';
  readonly text: string;
}

/** A line the client sample printed (`dev_info`). */
export interface SampleReport {
  readonly kind: 'sample';
  readonly side: 'EP' | 'RC';
  readonly line: string;
}

/** A stream's figures. */
export interface StreamReport {
  readonly kind: 'stream';
  readonly phase: string;
  readonly sent: number;
  readonly received: number;
  readonly duplicates: number;
  readonly corrupt: number;
  readonly ms: number;
  /**
   * Doorbell rings on both wires during the stream (RC → EP kicks and EP → RC
   * interrupts), as the platform's line counters count them.
   */
  readonly rings: number;
}

/** Sent by the RC right before a measured stream starts (the owner takes its CPU-time mark). */
export interface StreamStartReport {
  readonly kind: 'stream-start';
}

/** Round-trip figures. */
export interface RttReport {
  readonly kind: 'rtt';
  readonly rounds: number;
  readonly usPerRoundTrip: number;
}

/** The RC's outcome of a scenario. */
export interface OutcomeReport {
  readonly kind: 'outcome';
  readonly scenario: Usecase1Scenario;
  /** The error the RC got (code of the outermost typed error and of every cause), if any. */
  readonly error?: { readonly name: string; readonly code: string | undefined; readonly causes: readonly string[]; readonly message: string };
  /** Scenario-specific numbers. */
  readonly data: Readonly<Record<string, number>>;
}

/** Everything a system reports. */
export type Usecase1Report = StepReport | SampleReport | StreamStartReport | StreamReport | RttReport | OutcomeReport | { readonly kind: 'streaming' };

/** URL of this module, for a `SystemSpec.entry`. */
export const USECASE1_SYSTEM: URL = new URL(`./system${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** A timestamp comparable across systems (see {@link StepReport.t}). */
export function stamp(ctx: { readonly mode: string; now(): number }): number {
  return ctx.mode === 'deterministic' ? ctx.now() : performance.timeOrigin + performance.now();
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

function wire(l: Line, listen: PciLineListenOptions): PciLine {
  return { ring: () => l.ring(), listen: (h, o) => l.listen(h, { ...listen, ...o }) };
}

/** The code of an error and of each cause, outermost first. */
function describeError(e: unknown): NonNullable<OutcomeReport['error']> {
  const causes: string[] = [];
  for (let c = (e as { cause?: unknown }).cause; c !== undefined && c !== null && causes.length < 8; c = (c as { cause?: unknown }).cause) {
    causes.push(`${(c as Error).name}:${String((c as { code?: unknown }).code)}`);
  }
  const err = e as { name?: string; code?: string; message?: string };
  return { name: String(err.name), code: err.code, causes, message: String(err.message) };
}

/** Writes `seq` as the little-endian u32 at the start of `p`, without a DataView per message. */
function putSeq(p: Uint8Array, seq: number): void {
  p[0] = seq;
  p[1] = seq >>> 8;
  p[2] = seq >>> 16;
  p[3] = seq >>> 24;
}

/** The little-endian u32 at the start of a message (its sequence number), without a DataView per message. */
function seqOf(data: Uint8Array): number {
  return (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
}

/**
 * The set of sequence numbers seen, for counting duplicates. Sequence numbers are dense
 * from 0, so a growable bitmap holds them without a hash-set insert (and its garbage)
 * per message; the few far-off ones (the requeue scenario's 0x8000_0000 + i) go to a Set.
 */
class SeqSet {
  private static readonly MAX_BITS = 1 << 27; // 16 MiB of bitmap at most
  private bits = new Uint32Array(1024);
  private readonly far = new Set<number>();
  size = 0;

  /** Adds `seq`; false when it was there already. */
  add(seq: number): boolean {
    if (seq >= SeqSet.MAX_BITS) {
      if (this.far.has(seq)) return false;
      this.far.add(seq);
      this.size++;
      return true;
    }
    const w = seq >>> 5;
    if (w >= this.bits.length) {
      let n = this.bits.length;
      while (n <= w) n *= 2;
      const grown = new Uint32Array(n);
      grown.set(this.bits);
      this.bits = grown;
    }
    const m = 1 << (seq & 31);
    if ((this.bits[w]! & m) !== 0) return false;
    this.bits[w] = this.bits[w]! | m;
    this.size++;
    return true;
  }
}

/** Device status names (VIRTIO 1.2 §2.1). */
function statusNames(s: number): string {
  const names: string[] = [];
  if (s & 1) names.push('ACKNOWLEDGE');
  if (s & 2) names.push('DRIVER');
  if (s & 8) names.push('FEATURES_OK');
  if (s & 4) names.push('DRIVER_OK');
  if (s & 64) names.push('NEEDS_RESET');
  if (s & 128) names.push('FAILED');
  return names.length === 0 ? 'RESET' : names.join(' | ');
}

/**
 * One side of the link (`config.role`). The EP builds its controller and function, the
 * vhost rpmsg bus with the sample and an echo service, links the channels in the rpmsg
 * configuration subtree (RFC patch 9), brings the link up and serves until stopped. The
 * RC waits for the link, enumerates, probes, binds the virtio rpmsg bus and runs the
 * scenario.
 */
export async function usecase1System(ctx: SystemContext<Usecase1SystemConfig>): Promise<void> {
  const c = ctx.config;
  const link = {
    config: c.link,
    buffers: {
      rcMemory: ctx.region(PCI_EPF_REGIONS.rcMemory).buffer as SharedArrayBuffer,
      epMemory: ctx.region(PCI_EPF_REGIONS.epMemory).buffer as SharedArrayBuffer,
      fabric: ctx.region(PCI_EPF_REGIONS.fabric).buffer as SharedArrayBuffer,
    },
  };
  const lines = { toRc: wire(ctx.line(PCI_EPF_LINES.toRc), c.listen), toEp: wire(ctx.line(PCI_EPF_LINES.toEp), c.listen) };
  if (c.role === 'ep') await endpointSide(ctx, link, lines);
  else await rootComplexSide(ctx, link, lines);
}

type Link = Parameters<typeof startPciEpfEndpoint>[0]['link'];
type Lines = Parameters<typeof startPciEpfEndpoint>[0]['lines'];

// ---------------------------------------------------------------------------------------
// SoC1: the endpoint (vhost rpmsg, device role)

async function endpointSide(ctx: SystemContext<Usecase1SystemConfig>, link: Link, lines: Lines): Promise<void> {
  const c = ctx.config;
  const step = (text: string): void => ctx.report({ kind: 'step', t: stamp(ctx), side: 'EP', text } satisfies StepReport);
  const tree = new ConfigTree();
  const rcfs = new RpmsgConfigFs(tree);
  const bus = new VhostRpmsgBus({ configFs: rcfs });
  const demo = c.scenario === 'demo';
  if (demo) {
    bus.registerDriver(
      rpmsgClientSample({
        count: c.sampleCount,
        firstDelayMs: c.sampleDelayMs,
        pollMs: 1,
        setTimer: (ms, cb) => ctx.setTimer(ms, cb),
        log: (line) => ctx.report({ kind: 'sample', side: 'EP', line } satisfies SampleReport),
      }),
    );
  }
  bus.registerDriver(echoService());
  bus.on('virtproc', (vp: RpmsgVirtproc) => {
    step(`vhost_rpmsg: virtproc ${vp.name} created (features F_NS | F_AS offered)`);
    vp.on('channel', (ch) => {
      if (ch.origin === 'local') step(`channel "${ch.name}" announced (NS CREATE | AS_ANNOUNCE)`);
    });
    vp.on('channelDst', (ch, dst) => {
      if (dst !== RPMSG_ADDR_ANY) step(`address assigned: "${ch.name}" ${hex(ch.src)} -> ${hex(dst)} (AS ASSIGN)`);
    });
  });
  const vhostBus = new VhostBus();
  await vhostBus.registerDriver(bus);
  const silent = c.scenario === 'silent-ep';
  const ep = await startPciEpfEndpoint({
    link,
    lines,
    clock: ctx,
    mode: c.mode,
    // A silent endpoint: its function polls the command register once a minute (the longest period it takes).
    notify: silent ? 'poll' : c.notify,
    pollPeriodMs: silent ? 60_000 : c.pollPeriodMs,
    cacheWindows: c.cacheWindows,
    start: false,
  });
  const fn = ep.fn;
  step(
    c.mode === 'rfc'
      ? `pci-epf-vhost bound: register block in BAR ${fn.barno} (first free BAR), ${c.notify === 'doorbell' && !silent ? 'doorbell' : `command polling every ${silent ? 60_000 : c.pollPeriodMs} ms`}`
      : `pci-epf-virtio bound: modern virtio-pci capabilities in BAR ${fn.barno}`,
  );
  // Watch the status before vhost_rpmsg does, so DRIVER_OK shows before what it triggers.
  watchDevice(ep.device, step);
  await vhostBus.registerDevice(ep.device);
  // The symlink is named after its target item, so the two items need distinct names.
  // The client sample runs in the demo only, so the other scenarios count echo traffic alone.
  const items = demo ? [`${SAMPLE_CHANNEL}/sample0`, `${ECHO_CHANNEL}/echo0`] : [`${ECHO_CHANNEL}/echo0`];
  for (const item of items) {
    await tree.mkdir(`/rpmsg/channel/${item}`);
    await tree.link(`/rpmsg/virtproc/${ep.device.name}`, `/rpmsg/channel/${item}`);
  }
  step(`configfs: rpmsg/channel/{${items.join(', ')}} linked to rpmsg/virtproc/${ep.device.name}`);
  ep.epc.start();
  step('link up (LTSSM L0): the function is visible to the host');
  try {
    await ctx.untilStopped();
  } finally {
    if (ep.device.bus === vhostBus) await vhostBus.unregisterDevice(ep.device).catch(() => undefined);
    await ep.close();
    await vhostBus.unregisterDriver(bus).catch(() => undefined);
  }
}

/** Reports the device status the host writes, as vhost-core notifies it (rfc-protocol §2.3). */
function watchDevice(device: VhostDevice, step: (t: string) => void): void {
  let last = -1;
  device.registerNotifier((dev, info) => {
    if (info.event === VHOST_NOTIFY.RESET) {
      if (last > 0) step('device reset by the host');
      last = 0;
      return;
    }
    if (info.event === VHOST_NOTIFY.FINALIZE_FEATURES) {
      step(`features finalized: ${hex(info.features)}`);
      return;
    }
    if (info.status === last) return;
    last = info.status;
    if (info.status & 4) {
      const attached = dev.vqs.filter((q) => q.isAttached).length;
      step(`status ${statusNames(info.status)}: ${attached} queue(s) activated`);
    } else step(`status ${statusNames(info.status)}`);
  });
}

/**
 * The EP's echo service: every message goes back to its sender, in order. It counts the
 * sequence numbers it saw (the first u32 of each message) so the RC can ask, through
 * the link, whether anything arrived twice.
 */
function echoService(): RpmsgDriver {
  const seen = new SeqSet();
  let duplicates = 0;
  const answer = new Uint8Array(16);
  // Replies that found no TX buffer, in order (a copy each: the RX buffer goes back).
  // One of them at a time waits for a buffer (sendTo); once it went, the ones behind
  // it go at once while buffers last, instead of each waiting on its own promise and
  // timer, which under load kept the echo at one message per doorbell.
  const backlog: Array<{ ep: RpmsgEndpoint; data: Uint8Array; dst: number }> = [];
  let flushing = false;
  const flush = async (): Promise<void> => {
    flushing = true;
    try {
      while (backlog.length > 0) {
        const head = backlog[0]!;
        await head.ep.sendTo(head.data, head.dst).catch(() => undefined); // a gone channel drops it
        backlog.shift();
        while (backlog.length > 0) {
          const b = backlog[0]!;
          try {
            b.ep.trySendTo(b.data, b.dst);
          } catch (e) {
            if (isRpmsgError(e, 'NO_BUFFER')) break;
          }
          backlog.shift();
        }
      }
    } finally {
      flushing = false;
    }
  };
  return {
    name: 'uc1-echo',
    idTable: [ECHO_CHANNEL],
    callback(ch, data, src) {
      const ep = ch.endpoint!;
      const seq = data.length >= 4 ? seqOf(data) : -1;
      let out = data;
      if (seq === STATS_QUERY) {
        const v = new DataView(answer.buffer);
        v.setUint32(0, STATS_QUERY, true);
        v.setUint32(4, seen.size, true);
        v.setUint32(8, duplicates, true);
        out = answer;
      } else if (seq >= 0) {
        if (!seen.add(seq)) duplicates++;
      }
      // Keep the order: once a reply waits for a TX buffer, every later one waits behind it.
      if (backlog.length === 0) {
        try {
          ep.trySendTo(out, src);
          return;
        } catch (e) {
          if (!isRpmsgError(e, 'NO_BUFFER')) return;
        }
      }
      backlog.push({ ep, data: out.slice(), dst: src });
      if (!flushing) void flush();
    },
  };
}

// ---------------------------------------------------------------------------------------
// SoC2: the root complex (virtio rpmsg, driver role)

/** The RC's side of the echo channel: pipelined 64-byte messages, each checked on return. */
class EchoClient {
  channel: RpmsgChannel | undefined;
  private readonly seen = new SeqSet();
  private readonly payload: Uint8Array;
  private nextSeq = 0;
  private inflight = 0;
  private sending = false;
  private phaseSent = 0;
  private deadline = 0;
  private max = 0;
  private onIdle: (() => void) | undefined;
  private onChannel: (() => void) | undefined;
  private onStats: ((v: DataView) => void) | undefined;
  private waiter: { n: number; resolve: () => void } | undefined;
  sent = 0;
  received = 0;
  duplicates = 0;
  corrupt = 0;

  constructor(
    private readonly ctx: SystemContext<Usecase1SystemConfig>,
    private readonly size: number,
    private readonly window: number,
  ) {
    this.payload = new Uint8Array(size);
    for (let i = 4; i < size; i++) this.payload[i] = i & 0xff;
  }

  driver(): RpmsgDriver {
    return {
      name: 'uc1-echo-client',
      idTable: [ECHO_CHANNEL],
      probe: (ch) => {
        this.channel = ch;
        this.onChannel?.();
      },
      remove: (ch) => {
        if (this.channel === ch) this.channel = undefined;
        // What was in flight is gone with the queues (reset): it never comes back.
        this.inflight = 0;
        this.onIdle?.();
      },
      callback: (_ch, data) => this.receive(data),
    };
  }

  /** Resolves once the echo channel is bound with its remote address known. */
  ready(timeoutMs: number): Promise<RpmsgChannel> {
    return this.until(() => this.channel !== undefined && this.channel.dst !== RPMSG_ADDR_ANY, timeoutMs, 'the echo channel').then(() => this.channel!);
  }

  private until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cancel = this.ctx.setTimer(timeoutMs, () => {
        stopPoll();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      });
      let stopPoll = (): void => undefined;
      const poll = (): void => {
        if (cond()) {
          cancel();
          resolve();
        } else stopPoll = this.ctx.setTimer(1, poll);
      };
      this.onChannel = () => {
        if (cond()) {
          stopPoll();
          cancel();
          this.onChannel = undefined;
          resolve();
        }
      };
      stopPoll = this.ctx.setTimer(1, poll);
    });
  }

  private receive(data: Uint8Array): void {
    const seq = data.length >= 4 ? seqOf(data) : -1;
    if (seq === STATS_QUERY) {
      this.onStats?.(new DataView(data.buffer, data.byteOffset, data.byteLength));
      return;
    }
    let ok = data.length === this.size;
    for (let i = 4; ok && i < data.length; i++) if (data[i] !== (i & 0xff)) ok = false;
    if (!ok) this.corrupt++;
    if (seq >= 0 && !this.seen.add(seq)) this.duplicates++;
    this.received++;
    if (this.inflight > 0) this.inflight--;
    if (this.waiter !== undefined && this.received >= this.waiter.n) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve();
    }
    if (this.sending) {
      // Refill once a quarter of the window is free, not one message per echo: sends go
      // out in batches, so the EP takes them in batches and fewer doorbells ring.
      if (this.inflight <= this.window - (this.window >>> 2)) this.pump();
    } else if (this.inflight === 0) this.onIdle?.();
  }

  /** Sends while the window has room, the phase has time and budget, and a TX buffer is free. */
  private pump(): void {
    const ch = this.channel;
    if (!this.sending) return;
    if (this.ctx.now() >= this.deadline || this.phaseSent >= this.max) {
      this.sending = false;
      if (this.inflight === 0) this.onIdle?.();
      return;
    }
    if (ch === undefined || ch.removed) return;
    const ep = ch.endpoint!;
    while (this.inflight < this.window && this.phaseSent < this.max) {
      const buf = ep.tryGetTxBuffer();
      if (buf === undefined) break;
      // The sequence number goes straight into the TX buffer: nothing allocated per message.
      buf.payload.set(this.payload);
      putSeq(buf.payload, this.nextSeq);
      ep.sendNoCopy(buf, this.size);
      this.nextSeq++;
      this.sent++;
      this.phaseSent++;
      this.inflight++;
    }
    // No TX buffer and nothing in flight to bring one back: look again shortly.
    if (this.inflight === 0) this.ctx.setTimer(1, () => this.pump());
  }

  /** Streams for `ms` (at most `max` messages) and waits for the last echo. */
  async stream(phase: string, ms: number, max: number, timeoutMs: number): Promise<StreamReport> {
    const r0 = this.received;
    const s0 = this.sent;
    const d0 = this.duplicates;
    const rings0 = this.rings();
    const t0 = this.ctx.now();
    this.deadline = t0 + ms;
    this.max = max;
    this.phaseSent = 0;
    this.sending = true;
    await new Promise<void>((resolve, reject) => {
      const cancel = this.ctx.setTimer(ms + timeoutMs, () => {
        this.sending = false;
        this.onIdle = undefined;
        reject(new Error(`stream ${phase}: ${this.inflight} echo(es) still missing after ${ms + timeoutMs} ms`));
      });
      // The deadline is checked on each echo; a timer ends a phase that has gone quiet.
      const stopAt = this.ctx.setTimer(ms, () => {
        this.sending = false;
        if (this.inflight === 0) this.onIdle?.();
      });
      this.onIdle = () => {
        if (this.sending) return;
        this.onIdle = undefined;
        cancel();
        stopAt();
        resolve();
      };
      this.pump();
    });
    return {
      kind: 'stream',
      phase,
      sent: this.sent - s0,
      received: this.received - r0,
      duplicates: this.duplicates - d0,
      corrupt: this.corrupt,
      ms: this.ctx.now() - t0,
      rings: (this.rings() - rings0) >>> 0,
    };
  }

  /** Rings on both wires so far (modulo 2^32): the platform's counters, read through the lines. */
  private rings(): number {
    return (this.ctx.line(PCI_EPF_LINES.toRc).count() + this.ctx.line(PCI_EPF_LINES.toEp).count()) >>> 0;
  }

  /** Starts streaming without an end (until {@link EchoClient.halt}). */
  start(): void {
    this.deadline = Infinity;
    this.max = Infinity;
    this.phaseSent = 0;
    this.sending = true;
    this.pump();
  }

  /** Stops sending; resolves when every echo in flight is back or gone. */
  halt(timeoutMs: number): Promise<void> {
    this.sending = false;
    return this.until(() => this.inflight === 0, timeoutMs, 'the echoes in flight');
  }

  /** Resumes a started stream on the (new) channel. */
  resume(): void {
    if (this.sending) this.pump();
  }

  /** Resolves once `n` echoes have arrived in all. */
  waitReceived(n: number, timeoutMs: number): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cancel = this.ctx.setTimer(timeoutMs, () => reject(new Error(`timed out waiting for ${n} echoes (have ${this.received})`)));
      this.waiter = {
        n,
        resolve: () => {
          cancel();
          resolve();
        },
      };
    });
  }

  /** One message at a time, `rounds` times: µs per round trip. */
  async pingPong(rounds: number, timeoutMs: number): Promise<number> {
    const t0 = this.ctx.now();
    for (let i = 0; i < rounds; i++) {
      const ch = this.channel;
      if (ch === undefined) throw new Error('the echo channel went away');
      const want = this.received + 1;
      const done = this.waitReceived(want, timeoutMs);
      new DataView(this.payload.buffer).setUint32(0, this.nextSeq++, true);
      this.sent++;
      this.inflight++;
      await ch.endpoint!.send(this.payload, { timeoutMs });
      await done;
    }
    return ((this.ctx.now() - t0) * 1000) / rounds;
  }

  /** Asks the EP's echo service, through the link, how many distinct messages it saw and how many twice. */
  async epCounts(timeoutMs: number): Promise<{ distinct: number; duplicates: number }> {
    const ch = this.channel;
    if (ch === undefined) throw new Error('the echo channel is not bound');
    const q = new Uint8Array(8);
    new DataView(q.buffer).setUint32(0, STATS_QUERY, true);
    return new Promise((resolve, reject) => {
      const cancel = this.ctx.setTimer(timeoutMs, () => reject(new Error('the EP did not answer the stats query')));
      this.onStats = (v) => {
        cancel();
        this.onStats = undefined;
        resolve({ distinct: v.getUint32(4, true), duplicates: v.getUint32(8, true) });
      };
      ch.endpoint!.send(q, { timeoutMs }).catch(reject);
    });
  }
}

/** The virtio rpmsg bus, reporting each step of the probe as it happens (virtio_dev_probe order). */
class TracingVirtioRpmsgBus extends VirtioRpmsgBus {
  constructor(private readonly step: (t: string) => void) {
    super();
  }

  override async probe(dev: Parameters<VirtioRpmsgBus['probe']>[0]): Promise<void> {
    this.step(`virtio_rpmsg_bus probing ${dev.name}: features negotiated ${hex(dev.features)} (FEATURES_OK)`);
    await super.probe(dev);
    const vqs = dev.vqs ?? [];
    this.step(`queues activated: ${vqs.map((q) => `${q.name}(${q.num})`).join(', ')}`);
  }
}

async function rootComplexSide(ctx: SystemContext<Usecase1SystemConfig>, link: Link, lines: Lines): Promise<void> {
  const c = ctx.config;
  const step = (text: string): void => ctx.report({ kind: 'step', t: stamp(ctx), side: 'RC', text } satisfies StepReport);
  const outcome = (data: Record<string, number>, error?: unknown): void =>
    ctx.report({ kind: 'outcome', scenario: c.scenario, data, ...(error === undefined ? {} : { error: describeError(error) }) } satisfies OutcomeReport);
  const virtioBus = new VirtioBus({ opTimeoutMs: c.timeoutMs });
  const rpmsg = new TracingVirtioRpmsgBus(step);
  const client = new EchoClient(ctx, c.size, c.window);
  let goodbyes = 0;
  let sampleDone: (() => void) | undefined;
  if (c.scenario === 'demo') {
    rpmsg.registerDriver(
      rpmsgClientSample({
        count: c.sampleCount,
        firstDelayMs: c.sampleDelayMs,
        pollMs: 1,
        setTimer: (ms, cb) => ctx.setTimer(ms, cb),
        log: (line) => ctx.report({ kind: 'sample', side: 'RC', line } satisfies SampleReport),
        onGoodbye: () => {
          goodbyes++;
          sampleDone?.();
        },
      }),
    );
  }
  rpmsg.registerDriver(client.driver());
  rpmsg.on('virtproc', (vp: RpmsgVirtproc) => {
    vp.on('channel', (ch) => {
      if (ch.origin === 'remote') step(`channel "${ch.name}" announced by the EP at ${hex(ch.dst)} (NS CREATE)`);
      else if (ch.driver !== undefined) step(`address ${hex(ch.src)} assigned to "${ch.name}", sent to the EP (AS ASSIGN)`);
    });
  });

  const probeHost = async (): Promise<PciEpfHost> => {
    const h = await startPciEpfHost({ link, lines, clock: ctx, virtioBus, linkTimeoutMs: c.timeoutMs, commandTimeoutMs: c.commandTimeoutMs });
    const info = h.rc.info!;
    step(`link up; function ${hex(info.vendorId)}:${hex(info.deviceId)} enumerated, ${info.bars.length} BAR(s) assigned`);
    const t = h.transport;
    step(h.mode === 'rfc' ? `register block found in BAR ${(t as VirtioPciEpf).barno} (signature "vhep")` : 'virtio-pci capabilities found (common, notify, ISR, device)');
    step(`interrupts: ${t.irqType}`);
    return h;
  };

  let host: PciEpfHost | undefined;
  const offPeer = ctx.onPeerDown((e) => {
    step(`the EP system went down (${e.status}${e.reason === undefined ? '' : `, ${e.reason}`})`);
    host?.rc.markLinkDown(`the endpoint system went down: ${e.reason ?? e.status}`);
  });
  try {
    try {
      host = await probeHost();
      await virtioBus.registerDriver(rpmsg);
      if (host.device.driver !== rpmsg) throw host.device.lastError ?? new Error('virtio_rpmsg_bus did not bind');
      step(`status ${statusNames(host.device.status)}`);
    } catch (e) {
      if (c.scenario !== 'silent-ep') throw e;
      step(`bring-up failed: ${(e as Error).message}`);
      outcome({}, e);
      return;
    }
    if (c.scenario === 'silent-ep') {
      outcome({ bound: 1 });
      return;
    }
    await client.ready(c.timeoutMs);

    if (c.scenario === 'demo' || c.scenario === 'bench') {
      if (c.scenario === 'demo') {
        const sampleFinished = new Promise<void>((resolve) => {
          sampleDone = () => {
            if (goodbyes >= 1) resolve();
          };
          if (goodbyes >= 1) resolve();
        });
        await withTimeout(ctx, sampleFinished, c.timeoutMs, 'the rpmsg client sample');
        // The sample's last reply may still wait for its TX buffer (send() is async): give it a
        // moment, then ask the EP something on the same ring. The EP answers only after
        // everything the RC sent before (one ring, in order): its sample is done by then.
        await ctx.sleep(10);
        await client.epCounts(c.timeoutMs);
      }
      // Each run starts fresh workers: warm their JIT and caches first, unmeasured.
      if ((c.warmupMs ?? 0) > 0) await client.stream('warm-up', c.warmupMs!, c.streamMax, c.timeoutMs);
      ctx.report({ kind: 'stream-start' } satisfies StreamStartReport);
      const s = await client.stream('stream', c.streamMs, c.streamMax, c.timeoutMs);
      ctx.report(s);
      if (c.rttRounds > 0) {
        const us = await client.pingPong(c.rttRounds, c.timeoutMs);
        ctx.report({ kind: 'rtt', rounds: c.rttRounds, usPerRoundTrip: us } satisfies RttReport);
      }
      outcome({ sent: client.sent, received: client.received, duplicates: client.duplicates, corrupt: client.corrupt });
      return;
    }

    if (c.scenario === 'requeue') {
      const t = host.transport as VirtioPciEpf;
      const before = await client.stream('before', c.streamMs, c.streamMax, c.timeoutMs);
      await t.deactivateQueue(1);
      step('queue 1 (output) deactivated (QUEUE_CMD DEACTIVATE)');
      const atDeactivate = client.received;
      const ch = client.channel!;
      const offSent = 3;
      for (let i = 0; i < offSent; i++) {
        const p = new Uint8Array(c.size);
        new DataView(p.buffer).setUint32(0, 0x8000_0000 + i, true);
        for (let j = 4; j < c.size; j++) p[j] = j & 0xff;
        ch.endpoint!.trySend(p);
      }
      // Long enough for a 1 ms poller to have looked many times.
      await ctx.sleep(Math.max(20, c.pollPeriodMs * 20));
      const echoedWhileOff = client.received - atDeactivate;
      const detached = await t.reactivateQueue(1);
      step(`queue 1 reactivated on a fresh ring (QUEUE_CMD ACTIVATE), ${detached.length} buffer(s) detached`);
      const after = await client.stream('after', c.streamMs, c.streamMax, c.timeoutMs);
      outcome({
        before: before.received,
        sentWhileOff: offSent,
        echoedWhileOff,
        detached: detached.length,
        after: after.received,
        afterSent: after.sent,
        duplicates: client.duplicates,
        corrupt: client.corrupt,
      });
      return;
    }

    if (c.scenario === 'reprobe') {
      client.start();
      await client.waitReceived(200, c.timeoutMs);
      // 1) The driver goes away with messages in flight (remove: reset) and binds again.
      await virtioBus.unregisterDriver(rpmsg);
      step('virtio_rpmsg_bus removed while traffic ran (device reset)');
      const mid1 = client.received;
      await virtioBus.registerDriver(rpmsg);
      await client.ready(c.timeoutMs);
      client.resume();
      await client.waitReceived(mid1 + 200, c.timeoutMs);
      // 2) The whole RC side goes: a new root complex enumerates and probes again.
      await host.close();
      step('root complex closed while traffic ran');
      const mid2 = client.received;
      host = await probeHost();
      await client.ready(c.timeoutMs);
      client.resume();
      await client.waitReceived(mid2 + 200, c.timeoutMs);
      await client.halt(c.timeoutMs);
      const ep = await client.epCounts(c.timeoutMs);
      outcome({ sent: client.sent, received: client.received, duplicates: client.duplicates, corrupt: client.corrupt, epDistinct: ep.distinct, epDuplicates: ep.duplicates });
      return;
    }

    // ep-killed: stream until the EP's system goes down, then see what the RC gets.
    client.start();
    await client.waitReceived(100, c.timeoutMs);
    ctx.report({ kind: 'streaming' } satisfies Usecase1Report);
    const h = host;
    await withTimeout(
      ctx,
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!h.rc.linkUp) resolve();
          else ctx.setTimer(2, check);
        };
        check();
      }),
      c.timeoutMs,
      'the link to go down',
    );
    const receivedAtDown = client.received;
    client.halt(1).catch(() => undefined);
    let err: unknown;
    try {
      await h.device.reset();
    } catch (e) {
      err = e;
    }
    outcome({ received: receivedAtDown, duplicates: client.duplicates }, err ?? new Error('reset succeeded on a dead link'));
  } finally {
    offPeer();
    if (host !== undefined) {
      if (host.rc.linkUp) await host.close().catch(() => undefined);
      else host.rc.close();
    }
  }
}

function withTimeout<T>(ctx: SystemContext, p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = ctx.setTimer(ms, () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)));
    p.then(
      (v) => {
        cancel();
        resolve(v);
      },
      (e: unknown) => {
        cancel();
        reject(e);
      },
    );
  });
}
