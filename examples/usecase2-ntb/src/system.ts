// The systems of use case 2 (rfc-protocol §2.6, §2.11): HOST1 runs the virtio rpmsg bus
// through ntb_virtio, HOST2 the vhost rpmsg bus through ntb_vhost, and — on the bridge
// backend — the bridge SoC runs the NTB endpoint function on two endpoint controllers.
// Each is one @x/platform system (its own worker in 'threads' mode); they share only the
// link's SharedArrayBuffers and the two interrupt lines. Everything the owner learns
// comes through ctx.report().
import type { Line, SystemContext } from '@x/platform';
import { ConfigTree, VhostBus, VhostConfigFs } from '@x/vhost-core';
import { VirtioBus } from '@x/virtio-core';
import { RPMSG_ADDR_ANY, RpmsgConfigFs, VhostRpmsgBus, VirtioRpmsgBus, isRpmsgError, type RpmsgChannel, type RpmsgDriver, type RpmsgVirtproc } from '@x/rpmsg';
import { startNtbEpfFunction, startNtbVhostSide, startNtbVirtioSide, type NtbBridgeLink, type NtbLine, type NtbLineListenOptions, type NtbPairLink } from '@x/transport-ntb';
import { NTB_SYSTEM_LINES } from '@x/transport-ntb/testing';
import { rpmsgClientSample } from '@x/example-rpmsg-client-sample/sample';

/** The echo channel the stream uses (announced by HOST2). */
export const ECHO_CHANNEL = 'rpmsg-uc2-echo';
/** The channel of Linux's rpmsg client sample. */
export const SAMPLE_CHANNEL = 'rpmsg-client-sample';
/** A sequence number HOST2's echo service answers with its own counts. */
const STATS_QUERY = 0xffff_ffff;

/** The `config` of {@link usecase2System}. */
export interface Usecase2SystemConfig {
  readonly role: 'host1' | 'host2' | 'bridge';
  readonly link: NtbPairLink | NtbBridgeLink;
  readonly listen: NtbLineListenOptions;
  /** Run the client sample first. */
  readonly sample: boolean;
  readonly sampleCount: number;
  readonly sampleDelayMs: number;
  /** Streaming time before and after the flap, ms each. */
  readonly streamMs: number;
  /** At most this many messages per stream phase (bounds a deterministic run, whose clock does not move while it streams). */
  readonly streamMax: number;
  /** Link flaps in the middle of the stream (0 or more). */
  readonly flaps: number;
  /** Messages in flight. */
  readonly window: number;
  /** Payload bytes (≥ 8). */
  readonly size: number;
  readonly timeoutMs: number;
  /** Bridge command poll period, ms. */
  readonly pollPeriodMs: number;
  /** Round trips (one message at a time) HOST1 times after the stream; 0 or absent: none. */
  readonly rttRounds?: number;
  /** An unmeasured stream before the measured one, ms; 0 or absent: none. */
  readonly warmupMs?: number;
}

/** One step as a system saw it. */
export interface StepReport {
  readonly kind: 'step';
  readonly t: number;
  readonly side: 'HOST1' | 'HOST2' | 'BRIDGE';
  readonly text: string;
}

/** A line the client sample printed. */
export interface SampleReport {
  readonly kind: 'sample';
  readonly side: 'HOST1' | 'HOST2';
  readonly line: string;
}

/** HOST1's figures. */
export interface Usecase2Outcome {
  readonly kind: 'outcome';
  /** Messages handed to the link. */
  readonly sent: number;
  /** Echoes received by HOST1 (the acknowledgement of a message). */
  readonly acknowledged: number;
  /** Distinct messages HOST2 received (asked through the link at the end). */
  readonly received: number;
  /** Messages HOST2 received twice. */
  readonly remoteDuplicates: number;
  /** Echoes HOST1 received twice. */
  readonly duplicates: number;
  /** Echoes whose bytes were wrong. */
  readonly corrupt: number;
  /** Acknowledged messages HOST2 says it never received (must be 0). */
  readonly lostAcknowledged: number;
  /** Sends that failed because the link went down (codes below). */
  readonly failed: number;
  readonly failedCodes: readonly string[];
  /** Sent, neither acknowledged nor failed: in flight when the link went down. */
  readonly inFlightAtDown: number;
  /** Handshakes HOST1 completed (1 + flaps). */
  readonly sessions: number;
  /** Stream time, ms. */
  readonly ms: number;
  /** Rings on both interrupt lines during the stream (kicks and interrupts, all sessions). */
  readonly streamRings?: number;
  /** Echoes HOST1 received in the measured stream (after the warm-up, before the round trips). */
  readonly streamAcknowledged?: number;
  /** µs per round trip (one message at a time), when `rttRounds` asked for them. */
  readonly rttUs?: number;
  readonly error?: string;
}

/** HOST1's marks around the stream (the owner takes its CPU-time marks as they arrive). */
export interface StreamMarkReport {
  readonly kind: 'stream-start' | 'stream-end';
}

/** Everything a system reports. */
export type Usecase2Report = StepReport | SampleReport | StreamMarkReport | Usecase2Outcome;

/** URL of this module, for a `SystemSpec.entry`. */
export const USECASE2_SYSTEM: URL = new URL(`./system${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** A timestamp comparable across systems. */
export function stamp(ctx: { readonly mode: string; now(): number }): number {
  return ctx.mode === 'deterministic' ? ctx.now() : performance.timeOrigin + performance.now();
}

function wire(l: Line, listen: NtbLineListenOptions): NtbLine {
  return { ring: () => l.ring(), listen: (h, o) => l.listen(h, { ...listen, ...o }) };
}

/** Writes `seq` as the little-endian u32 at the start of `p`, without a DataView per message. */
function putSeq(p: Uint8Array, seq: number): void {
  p[0] = seq;
  p[1] = seq >>> 8;
  p[2] = seq >>> 16;
  p[3] = seq >>> 24;
}

function seqOf(d: Uint8Array): number {
  return (d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24)) >>> 0;
}

/** Codes of an error and its causes, outermost first. */
function codes(e: unknown): string {
  const out: string[] = [];
  for (let c: unknown = e; c !== undefined && c !== null && out.length < 6; c = (c as { cause?: unknown }).cause) {
    out.push(`${(c as Error).name}:${String((c as { code?: unknown }).code)}`);
  }
  return out.join(' <- ');
}

/** A growable bitmap of sequence numbers (dense from 0). */
class SeqSet {
  private bits = new Uint32Array(1024);
  size = 0;
  has(seq: number): boolean {
    const w = seq >>> 5;
    return w < this.bits.length && (this.bits[w]! & (1 << (seq & 31))) !== 0;
  }
  add(seq: number): boolean {
    const w = seq >>> 5;
    if (w >= this.bits.length) {
      let n = this.bits.length;
      while (n <= w) n *= 2;
      const g = new Uint32Array(n);
      g.set(this.bits);
      this.bits = g;
    }
    const m = 1 << (seq & 31);
    if ((this.bits[w]! & m) !== 0) return false;
    this.bits[w] = this.bits[w]! | m;
    this.size++;
    return true;
  }
  /** The bitmap's bytes, for a report. */
  bytes(): Uint8Array {
    return new Uint8Array(this.bits.buffer.slice(0));
  }
}

/** One system of use case 2 (`config.role`). */
export async function usecase2System(ctx: SystemContext<Usecase2SystemConfig>): Promise<void> {
  const c = ctx.config;
  const lines = { h1: wire(ctx.line(NTB_SYSTEM_LINES.host1Irq), c.listen), h2: wire(ctx.line(NTB_SYSTEM_LINES.host2Irq), c.listen) };
  const watchPeer = ctx.onPeerDown.bind(ctx);
  if (c.role === 'bridge') {
    if (c.link.kind !== 'ntb-bridge') throw new Error('the bridge system needs a bridge link');
    ctx.report({ kind: 'step', t: stamp(ctx), side: 'BRIDGE', text: 'pci-epf-ntb bound on EPC1 and EPC2: BAR0 control + spads, BAR1 peer spads, BAR2 doorbells + MW1 (§2.11)' } satisfies StepReport);
    const f = startNtbEpfFunction(c.link, { lines: { host1Irq: lines.h1, host2Irq: lines.h2 }, clock: ctx, pollPeriodMs: c.pollPeriodMs, watchPeer, hostNames: ['host1', 'host2'] });
    try {
      await ctx.untilStopped();
    } finally {
      f.close();
    }
    return;
  }
  const host = c.role === 'host1' ? 1 : 2;
  const hostLines = host === 1 ? { irq: lines.h1, peerIrq: lines.h2 } : { irq: lines.h2, peerIrq: lines.h1 };
  const peerNames = c.link.kind === 'ntb-bridge' ? ['bridge', host === 1 ? 'host2' : 'host1'] : [host === 1 ? 'host2' : 'host1'];
  const common = { link: c.link, lines: hostLines, listen: c.listen, clock: ctx, watchPeer, peerNames };
  if (host === 2) await host2(ctx, common);
  else await host1(ctx, common);
}

type Common = Omit<Parameters<typeof startNtbVirtioSide>[0], 'virtioBus'>;

// ---------------------------------------------------------------------------------------
// HOST2: vhost rpmsg through ntb_vhost (device role)

async function host2(ctx: SystemContext<Usecase2SystemConfig>, common: Common): Promise<void> {
  const c = ctx.config;
  const step = (text: string): void => ctx.report({ kind: 'step', t: stamp(ctx), side: 'HOST2', text } satisfies StepReport);
  const tree = new ConfigTree();
  const vhostBus = new VhostBus();
  const configFs = new VhostConfigFs(tree, vhostBus);
  const rcfs = new RpmsgConfigFs(tree);
  const bus = new VhostRpmsgBus({ configFs: rcfs });
  if (c.sample) {
    bus.registerDriver(
      rpmsgClientSample({
        count: c.sampleCount,
        firstDelayMs: c.sampleDelayMs,
        pollMs: 1,
        setTimer: (ms, cb) => ctx.setTimer(ms, cb),
        log: (line) => ctx.report({ kind: 'sample', side: 'HOST2', line } satisfies SampleReport),
      }),
    );
  }
  bus.registerDriver(echoService());
  await vhostBus.registerDriver(bus);
  const side = await startNtbVhostSide({
    ...common,
    configFs,
    clientItem: '/vhost/vhost-client/vhost_rpmsg/ffffffff:00000007',
    onEvent: (e) => {
      if (e.type === 'handshake') step(`ntb_vhost: handshake done (session ${e.session}): virtio rings at 0x${e.virtioAddr.toString(16)}, MW ${e.mwSize} bytes; vhost device registered`);
      else if (e.type === 'link-down') step('ntb_vhost: link down: vhost device unregistered');
    },
  });
  const items = c.sample ? [`${SAMPLE_CHANNEL}/sample0`, `${ECHO_CHANNEL}/echo0`] : [`${ECHO_CHANNEL}/echo0`];
  for (const item of items) {
    await tree.mkdir(`/rpmsg/channel/${item}`);
    await tree.link(`/rpmsg/virtproc/${side.device.name}`, `/rpmsg/channel/${item}`);
  }
  step(`configfs: rpmsg/channel/{${items.join(', ')}} linked to rpmsg/virtproc/${side.device.name}`);
  try {
    await ctx.untilStopped();
  } finally {
    await side.close().catch(() => undefined);
    await vhostBus.unregisterDriver(bus).catch(() => undefined);
  }
}

/**
 * HOST2's echo service: every message back to its sender, in order; it records every
 * sequence number it received, across link sessions, and answers a stats query (which
 * carries HOST1's acknowledged set as a bitmap) with the distinct count, the duplicates,
 * and how many acknowledged messages it never received.
 */
function echoService(): RpmsgDriver {
  const seen = new SeqSet();
  let duplicates = 0;
  let backlog = 0;
  let missing = 0;
  return {
    name: 'uc2-echo',
    idTable: [ECHO_CHANNEL],
    probe() {
      // A new channel (a new link session): replies still waiting belong to the old one.
      backlog = 0;
    },
    callback(ch, data, src) {
      const ep = ch.endpoint!;
      const seq = data.length >= 4 ? seqOf(data) : -1;
      let out = data;
      if (seq === STATS_QUERY) {
        // A chunk of HOST1's acknowledged set: [from, to) as a bitmap; the last one gets the answer.
        const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
        const from = dv.getUint32(4, true);
        const to = dv.getUint32(8, true);
        const last = dv.getUint32(12, true) === 1;
        const ackBits = data.subarray(16);
        // Bounded by the message: never more bits than it carries.
        const n = Math.min(to - from, ackBits.length * 8);
        for (let i = 0; i < n; i++) if ((ackBits[i >>> 3]! & (1 << (i & 7))) !== 0 && !seen.has(from + i)) missing++;
        if (!last) return;
        const answer = new Uint8Array(16);
        const v = new DataView(answer.buffer);
        v.setUint32(0, STATS_QUERY, true);
        v.setUint32(4, seen.size, true);
        v.setUint32(8, duplicates, true);
        v.setUint32(12, missing, true);
        missing = 0;
        out = answer;
      } else if (seq >= 0) {
        if (!seen.add(seq)) duplicates++;
      }
      if (backlog === 0) {
        try {
          ep.trySendTo(out, src);
          return;
        } catch (e) {
          if (!isRpmsgError(e, 'NO_BUFFER')) return;
        }
      }
      backlog++;
      ep.sendTo(out.slice(), src)
        .catch(() => undefined)
        .finally(() => void (backlog > 0 && backlog--));
    },
  };
}

// ---------------------------------------------------------------------------------------
// HOST1: virtio rpmsg through ntb_virtio (driver role)

async function host1(ctx: SystemContext<Usecase2SystemConfig>, common: Common): Promise<void> {
  const c = ctx.config;
  const step = (text: string): void => ctx.report({ kind: 'step', t: stamp(ctx), side: 'HOST1', text } satisfies StepReport);
  const virtioBus = new VirtioBus({ opTimeoutMs: c.timeoutMs });
  const rpmsg = new VirtioRpmsgBus();
  const payload = new Uint8Array(c.size);
  for (let i = 4; i < c.size; i++) payload[i] = i & 0xff;

  let channel: RpmsgChannel | undefined;
  let onStats: ((v: DataView) => void) | undefined;
  const acked = new SeqSet();
  const settled = new SeqSet(); // acknowledged or failed
  let sent = 0;
  let duplicates = 0;
  let corrupt = 0;
  let failed = 0;
  const failedCodes = new Set<string>();
  let inflight = 0;
  let goodbyes = 0;
  let onEcho: (() => void) | undefined;

  if (c.sample) {
    rpmsg.registerDriver(
      rpmsgClientSample({
        count: c.sampleCount,
        firstDelayMs: c.sampleDelayMs,
        pollMs: 1,
        setTimer: (ms, cb) => ctx.setTimer(ms, cb),
        log: (line) => ctx.report({ kind: 'sample', side: 'HOST1', line } satisfies SampleReport),
        onGoodbye: () => void goodbyes++,
      }),
    );
  }
  rpmsg.registerDriver({
    name: 'uc2-echo-client',
    idTable: [ECHO_CHANNEL],
    probe: (ch) => {
      channel = ch;
    },
    remove: (ch) => {
      if (channel === ch) channel = undefined;
      // What was in flight went with the queues; it is neither acknowledged nor failed.
      inflight = 0;
    },
    callback: (_ch, data) => {
      const seq = data.length >= 4 ? seqOf(data) : -1;
      if (seq === STATS_QUERY) {
        onStats?.(new DataView(data.buffer, data.byteOffset, data.byteLength));
        return;
      }
      let ok = data.length === c.size;
      for (let i = 4; ok && i < data.length; i++) if (data[i] !== (i & 0xff)) ok = false;
      if (!ok) corrupt++;
      if (!acked.add(seq)) duplicates++;
      else settled.add(seq);
      if (inflight > 0) inflight--;
      onEcho?.();
    },
  });
  rpmsg.on('virtproc', (vp: RpmsgVirtproc) => {
    vp.on('channel', (ch) => {
      if (ch.origin === 'remote') step(`channel "${ch.name}" announced by HOST2 at 0x${ch.dst.toString(16)} (NS CREATE)`);
    });
  });
  await virtioBus.registerDriver(rpmsg);

  const side = await startNtbVirtioSide({
    ...common,
    virtioBus,
    onEvent: (e) => {
      if (e.type === 'link-up') step('ntb_virtio: link up: scratchpad handshake starts (§2.6)');
      else if (e.type === 'handshake') step(`ntb_virtio: handshake done (session ${e.session}): MW at 0x${e.mwAddr.toString(16)}, ${e.mwSize} bytes; virtio device registered`);
      else if (e.type === 'link-down') step(`ntb_virtio: link down: virtio device unregistered, pending sends fail`);
    },
  });

  const until = async (cond: () => boolean, what: string): Promise<void> => {
    const t0 = ctx.now();
    while (!cond()) {
      if (ctx.now() - t0 > c.timeoutMs) throw new Error(`HOST1: timed out after ${c.timeoutMs} ms waiting for ${what}`);
      await ctx.sleep(1);
    }
  };
  const ready = (): boolean => channel !== undefined && !channel.removed && channel.dst !== RPMSG_ADDR_ANY;

  // One turn of the event loop: a task in the deterministic scheduler, setImmediate in a
  // worker (ctx.sleep(0) there is a ≥ 1 ms timer, which would cap the stream).
  const turn = (): Promise<void> => (ctx.mode === 'deterministic' ? ctx.sleep(0) : new Promise((r) => setImmediate(r)));
  let seq = 0;
  /** Streams for `ms`, `window` messages in flight. */
  const stream = async (ms: number): Promise<void> => {
    const end = ctx.now() + ms;
    const max = sent + c.streamMax;
    let turns = 0;
    while (ctx.now() < end && sent < max) {
      const ch = channel;
      if (ch === undefined || ch.removed || inflight >= c.window) {
        await turn();
        continue;
      }
      // Zero copy: the payload is written straight into a TX buffer of the window's pool.
      const buf = ch.endpoint!.tryGetTxBuffer();
      if (buf === undefined) {
        await turn();
        continue;
      }
      buf.payload.set(payload);
      putSeq(buf.payload, seq); // nothing allocated per message
      ch.endpoint!.sendNoCopy(buf, c.size);
      seq++;
      sent++;
      inflight++;
      if (++turns % 64 === 0) await turn();
    }
  };

  let error: string | undefined;
  const t0 = ctx.now();
  try {
    await until(ready, 'the echo channel');
    if (c.sample) {
      await until(() => goodbyes >= 1, 'the rpmsg client sample');
      await ctx.sleep(10);
    }
    const irqLines = [ctx.line(NTB_SYSTEM_LINES.host1Irq), ctx.line(NTB_SYSTEM_LINES.host2Irq)];
    const rings = (): number => (irqLines[0]!.count() + irqLines[1]!.count()) >>> 0;
    // Each run starts fresh workers: warm their JIT and caches first, unmeasured.
    if ((c.warmupMs ?? 0) > 0) {
      await stream(c.warmupMs!);
      await until(() => inflight === 0 || channel === undefined, 'the warm-up echoes');
    }
    ctx.report({ kind: 'stream-start' } satisfies StreamMarkReport);
    const rings0 = rings();
    const acked0 = acked.size;
    const t1 = ctx.now();
    await stream(c.streamMs);
    for (let f = 0; f < c.flaps; f++) {
      // The link goes down with messages in flight (§2.6 link down, ntb_link_disable).
      // Sends issued on the endpoint around the edge either made it into the ring before
      // it went (then they are acknowledged or in flight) or fail with a typed error.
      const ep = channel?.endpoint;
      const pending: Promise<void>[] = [];
      const sendAround = (): void => {
        if (ep === undefined) return;
        new DataView(payload.buffer).setUint32(0, seq, true);
        const s = seq++;
        sent++;
        pending.push(
          ep.send(payload.slice(), { timeoutMs: c.timeoutMs }).then(
            () => undefined,
            (e: unknown) => {
              failed++;
              settled.add(s);
              failedCodes.add(codes(e));
            },
          ),
        );
      };
      for (let i = 0; i < 4; i++) sendAround();
      await side.dev.linkDisable();
      step('link disabled (ntb_link_disable) with traffic in flight');
      for (let i = 0; i < 4; i++) sendAround();
      await until(() => side.virtio.state === 'down' && channel === undefined, 'the device removal');
      // And after the device went: these cannot reach the ring.
      for (let i = 0; i < 4; i++) sendAround();
      await Promise.all(pending);
      await side.dev.linkEnable();
      step('link enabled again (ntb_link_enable): the whole handshake re-runs');
      await until(ready, 'the echo channel after the flap');
      await stream(c.streamMs);
    }
    // The sample probes again on every new link session: let its last run finish too.
    if (c.sample) await until(() => goodbyes >= 1 + c.flaps, 'the rpmsg client sample after the flap(s)');
    await until(() => inflight === 0 || channel === undefined, 'the last echoes');
    const ms = ctx.now() - t1;
    const streamRings = (rings() - rings0) >>> 0;
    const streamAcknowledged = acked.size - acked0;
    ctx.report({ kind: 'stream-end' } satisfies StreamMarkReport);
    // Round trips, one message at a time: send, wait for its echo (the line's wait mode decides how).
    let rttUs: number | undefined;
    const rttRounds = c.rttRounds ?? 0;
    if (rttRounds > 0 && ready()) {
      const ep = channel!.endpoint!;
      const r0 = ctx.now();
      for (let i = 0; i < rttRounds; i++) {
        const want = acked.size + 1;
        const echoed = new Promise<void>((resolve, reject) => {
          const cancel = ctx.setTimer(c.timeoutMs, () => reject(new Error(`HOST1: round trip ${i}: no echo within ${c.timeoutMs} ms`)));
          onEcho = () => {
            if (acked.size < want) return;
            onEcho = undefined;
            cancel();
            resolve();
          };
        });
        new DataView(payload.buffer).setUint32(0, seq++, true);
        sent++;
        inflight++;
        await ep.send(payload, { timeoutMs: c.timeoutMs });
        await echoed;
      }
      rttUs = ((ctx.now() - r0) * 1000) / rttRounds;
    }
    // Ask HOST2, through the link, what it received: counts, and how many acknowledged ones it never saw.
    const ackBytes = acked.bytes();
    const ackedAtQuery = acked.size;
    const settledAtQuery = settled.size;
    // The acknowledged set goes as a bitmap in chunks that fit one rpmsg buffer (496 payload
    // bytes by default): 16-byte header + 448 bytes = 3584 sequence numbers per message.
    const PER = 448 * 8;
    const stats = new Promise<DataView>((resolve, reject) => {
      const cancel = ctx.setTimer(c.timeoutMs, () => reject(new Error('HOST2 did not answer the stats query')));
      onStats = (v) => {
        cancel();
        resolve(v);
      };
    });
    for (let from = 0; from < Math.max(seq, 1); from += PER) {
      const to = Math.min(seq, from + PER);
      const q = new Uint8Array(16 + Math.ceil((to - from) / 8));
      const dv = new DataView(q.buffer);
      dv.setUint32(0, STATS_QUERY, true);
      dv.setUint32(4, from, true);
      dv.setUint32(8, to, true);
      dv.setUint32(12, to >= seq ? 1 : 0, true);
      // from is a multiple of 32: the bitmap's bytes line up.
      q.set(ackBytes.subarray(from >>> 3, (from >>> 3) + q.length - 16), 16);
      await channel!.endpoint!.send(q, { timeoutMs: c.timeoutMs });
    }
    const answer = await stats;
    ctx.report({
      kind: 'outcome',
      sent,
      acknowledged: ackedAtQuery,
      received: answer.getUint32(4, true),
      remoteDuplicates: answer.getUint32(8, true),
      lostAcknowledged: answer.getUint32(12, true),
      duplicates,
      corrupt,
      failed,
      failedCodes: [...failedCodes],
      inFlightAtDown: sent - settledAtQuery,
      sessions: side.virtio.sessions,
      ms,
      streamRings,
      streamAcknowledged,
      ...(rttUs === undefined ? {} : { rttUs }),
    } satisfies Usecase2Outcome);
  } catch (e) {
    error = `${(e as Error).message} (${codes(e)})`;
    ctx.report({ kind: 'outcome', sent, acknowledged: acked.size, received: 0, remoteDuplicates: 0, lostAcknowledged: 0, duplicates, corrupt, failed, failedCodes: [...failedCodes], inFlightAtDown: 0, sessions: side.virtio.sessions, ms: ctx.now() - t0, error } satisfies Usecase2Outcome);
  } finally {
    await side.close().catch(() => undefined);
  }
}
