// The two systems of the two-worker rpmsg benchmark (issue 7: P2, P3, P5). "driver" runs
// the driver-role ring transport (RpmsgVirtqueueTransport over two Virtqueues in the
// shared region), "device" the device role (RpmsgVringhTransport over two Vringhs that
// reach the same region through a window at another bus address), each wrapped in an
// RpmsgVirtproc, the API a user calls. They share nothing but the region's bytes and
// two lines: `kick` (driver → device doorbell) and `irq` (device → driver interrupt).
// Results reach the owner through ctx.report(), the management channel.
//
// Environment switches (read in each worker): RPMSG_BENCH_DEBUG=1 logs ring and line
// counters; RPMSG_BENCH_UNSTABLE=1 runs the device without `stableViews` (a view per
// message, the transport's default), to measure that optimization A/B.
import type { SystemContext, WaitMode } from '@x/platform';
import { RegionMemory, VRING_LEGACY_ALIGN, Virtqueue, Vringh, vringLegacyLayout, vringSize } from '@x/vring';
import {
  RPMSG_RX_QUEUE,
  RPMSG_TX_QUEUE,
  RpmsgVirtproc,
  RpmsgVirtqueueTransport,
  RpmsgVringhTransport,
  VIRTIO_RPMSG_F,
  isRpmsgError,
  vringhDeviceQueue,
  type RpmsgBuffer,
  type RpmsgEndpoint,
} from '@x/rpmsg';

/** What each system is told at start (both get the same but for `role`). */
export interface RpmsgBenchConfig {
  readonly role: 'driver' | 'device';
  /** How both sides wait for their line. */
  readonly mode: WaitMode;
  /** Spin window of `adaptive`, µs. */
  readonly spinUs: number;
  /** Poll budget of `poll` (and of a listener's run of handlers), µs. */
  readonly budgetUs: number;
  /** Ring size of each of the two queues. */
  readonly queueSize: number;
  /** Bytes per buffer, header included. */
  readonly bufSize: number;
  /** Payload bytes per message. */
  readonly payload: number;
  /** Send with the zero-copy API (getTxBuffer / sendNoCopy) instead of send (a copy). */
  readonly zeroCopy: boolean;
  /** Endpoints on each side, used round robin. */
  readonly endpoints: number;
  /** Streamed messages, timed. */
  readonly count: number;
  /** Streamed messages before the timed ones (JIT warm-up). */
  readonly warmup: number;
  /** The device transport's `busyTurns` (0: ask for a kick as soon as it has read everything). */
  readonly busyTurns: number;
  /** Round trips, timed (0: none). */
  readonly rttRounds: number;
  /** When set, each system writes a CPU profile of its timed stream into this directory. */
  readonly profileDir?: string;
}

/** What the driver reports once done. */
export interface RpmsgBenchReport {
  /** Messages per second of the timed stream (driver sends, device receives them all). */
  readonly rate: number;
  /** Process CPU time (every thread: both workers, the owner, GC) per streamed message, µs. */
  readonly cpuUsPerMsg: number;
  /** Kicks plus interrupts (line rings) per streamed message. */
  readonly notificationsPerMsg: number;
  /** Mean round trip, µs (NaN when rttRounds is 0). */
  readonly rttUs: number;
}

/** Where the driver sees the region (its RAM); the device sees it at DEVICE_BASE. */
export const DRIVER_BASE = 0x1000_0000;
export const DEVICE_BASE = 0x8_0000_0000;
/** Bench handshake words at the start of the region (not part of any rpmsg layout). */
const HDR_BYTES = 4096;
const W_DRIVER_READY = 0;
const W_DEVICE_READY = 1;
/** First device endpoint address; endpoint i is at FIRST_EPT + i. */
const FIRST_EPT = 0x400;
/** The device's echo endpoint (round trips) and its "stream received" acknowledgement. */
const ECHO_EPT = 0x700;
const ACK_EPT = 0x701;

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** Bytes of the region for a configuration: handshake page, vq0, vq1, the buffers. */
export function regionSize(c: Pick<RpmsgBenchConfig, 'queueSize' | 'bufSize'>): number {
  const ring = alignUp(vringSize(c.queueSize, VRING_LEGACY_ALIGN), VRING_LEGACY_ALIGN);
  return HDR_BYTES + 2 * ring + 2 * c.queueSize * c.bufSize;
}

function layouts(c: RpmsgBenchConfig) {
  const ring = alignUp(vringSize(c.queueSize, VRING_LEGACY_ALIGN), VRING_LEGACY_ALIGN);
  const vq0 = DRIVER_BASE + HDR_BYTES;
  return {
    vq0: vringLegacyLayout(vq0, c.queueSize, VRING_LEGACY_ALIGN),
    vq1: vringLegacyLayout(vq0 + ring, c.queueSize, VRING_LEGACY_ALIGN),
    bufferBase: vq0 + 2 * ring,
  };
}

/** A CPU profile of this worker (workers ended by terminate() write none with --cpu-prof). */
async function startProfile(ctx: SystemContext<RpmsgBenchConfig>): Promise<() => Promise<void>> {
  const dir = ctx.config.profileDir;
  if (dir === undefined) return async () => {};
  const { Session } = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 50 });
  await post('Profiler.start');
  return async () => {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(`${dir}/${ctx.name}-${Date.now()}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  };
}

async function until(ctx: SystemContext, cond: () => boolean): Promise<void> {
  while (!cond()) await ctx.sleep(1);
}

const FEATURES = (1 << VIRTIO_RPMSG_F.NS) | (1 << VIRTIO_RPMSG_F.AS);

/** One system of the benchmark; `ctx.config.role` says which. */
export default async function rpmsgBenchSystem(ctx: SystemContext<RpmsgBenchConfig>): Promise<void> {
  if (ctx.config.role === 'device') await device(ctx);
  else await driver(ctx);
}

async function device(ctx: SystemContext<RpmsgBenchConfig>): Promise<void> {
  const c = ctx.config;
  const local = ctx.region('shm');
  const words = new Int32Array(local.buffer as SharedArrayBuffer, local.byteOffset, HDR_BYTES / 4);
  // The device reaches the driver's RAM through a window (an outbound window / IOTLB).
  const memory = new RegionMemory({ name: 'device window' });
  memory.map({ busAddr: DRIVER_BASE, size: local.size, target: local, targetAddr: local.base, name: 'shm' });
  await until(ctx, () => Atomics.load(words, W_DRIVER_READY) === 1);
  const l = layouts(c);
  const irq = ctx.line('irq');
  const raise = (): void => irq.ring();
  const transport = new RpmsgVringhTransport({
    txQueue: vringhDeviceQueue(new Vringh({ memory, layout: l.vq0, eventIdx: true }), raise),
    rxQueue: vringhDeviceQueue(new Vringh({ memory, layout: l.vq1, eventIdx: true }), raise),
    view: (addr, len) => memory.view(addr, len),
    // The window is set up once and never remapped: views stay valid.
    stableViews: process.env.RPMSG_BENCH_UNSTABLE !== '1',
    busyTurns: c.busyTurns,
    bufSize: c.bufSize,
    features: FEATURES,
  });
  const vp = new RpmsgVirtproc(transport, { name: 'device', role: 'device', bindOnFirstMessage: false });
  vp.on('warning', (e) => ctx.log(`device warning: ${String(e)}`));
  vp.on('dropped', (e) => ctx.log(`device dropped: ${String(e)}`));
  const debug = process.env.RPMSG_BENCH_DEBUG === '1';
  let busyMs = 0;
  const total = c.warmup + c.count;
  let received = 0;
  let bad = 0;
  const ack = vp.createEndpoint({ src: ACK_EPT });
  const stopProfile = await startProfile(ctx);
  const onMessage = (data: Uint8Array, src: number): void => {
    if (data.length !== c.payload) bad++;
    if (received === c.warmup) busyMs = 0;
    if (++received === total) {
      if (debug) ctx.log(`device: busy in its kick handler ${((busyMs * 1e6) / c.count).toFixed(0)} ns per message`);
      ack.trySendTo(new Uint8Array([bad === 0 ? 1 : 0]), src);
      void stopProfile();
    }
  };
  for (let i = 0; i < c.endpoints; i++) vp.createEndpoint({ src: FIRST_EPT + i, callback: onMessage });
  vp.createEndpoint({ src: ECHO_EPT, callback: (data, src, e) => e.trySendTo(data, src) });
  const kick = ctx.line('kick');
  kick.listen(
    () => {
      const t = debug ? performance.now() : 0;
      transport.kick(RPMSG_TX_QUEUE);
      transport.kick(RPMSG_RX_QUEUE);
      if (debug) busyMs += performance.now() - t;
    },
    { mode: c.mode, spinUs: c.spinUs, budgetUs: c.budgetUs },
  );
  Atomics.store(words, W_DEVICE_READY, 1);
  await ctx.untilStopped();
}

async function driver(ctx: SystemContext<RpmsgBenchConfig>): Promise<void> {
  const c = ctx.config;
  const memory = ctx.region('shm');
  const words = new Int32Array(memory.buffer as SharedArrayBuffer, memory.byteOffset, HDR_BYTES / 4);
  const l = layouts(c);
  const kick = ctx.line('kick');
  const irq = ctx.line('irq');
  const ring = (): void => kick.ring();
  let transport: RpmsgVirtqueueTransport | undefined;
  const rvq = new Virtqueue<number>({ memory, layout: l.vq0, index: RPMSG_RX_QUEUE, name: 'rvq', eventIdx: true, notify: ring, callback: () => transport?.rxDone() });
  const svq = new Virtqueue<number>({ memory, layout: l.vq1, index: RPMSG_TX_QUEUE, name: 'svq', eventIdx: true, notify: ring, callback: () => transport?.txDone() });
  transport = new RpmsgVirtqueueTransport({ rvq, svq, memory, bufferBase: l.bufferBase, bufSize: c.bufSize, features: FEATURES });
  const vp = new RpmsgVirtproc(transport, { name: 'driver', role: 'driver' });
  vp.on('warning', (e) => ctx.log(`driver warning: ${String(e)}`));
  vp.on('dropped', (e) => ctx.log(`driver dropped: ${String(e)}`));
  irq.listen(
    () => {
      rvq.interrupt();
      svq.interrupt();
    },
    { mode: c.mode, spinUs: c.spinUs, budgetUs: c.budgetUs },
  );
  Atomics.store(words, W_DRIVER_READY, 1);
  await until(ctx, () => Atomics.load(words, W_DEVICE_READY) === 1);
  transport.start();

  // ---- stream: driver → device, endpoints round robin --------------------------------
  let acked: (() => void) | undefined;
  let ackOk = true;
  // The device acknowledges the stream's last message to that message's src.
  const ackEpt = vp.createEndpoint({
    callback: (data) => {
      ackOk = data[0] === 1;
      acked?.();
    },
  });
  const epts: RpmsgEndpoint[] = [];
  for (let i = 0; i < c.endpoints; i++) epts.push(vp.createEndpoint({ dst: FIRST_EPT + i }));
  const data = new Uint8Array(c.payload).fill(0x5a);
  const E = c.endpoints;
  let ep = 0;
  const debug = process.env.RPMSG_BENCH_DEBUG === '1';
  let waitMs = 0;
  const stream = async (n: number): Promise<void> => {
    let sent = 0;
    while (sent < n) {
      if (c.zeroCopy) {
        const e = epts[ep]!;
        let buf: RpmsgBuffer | undefined = e.tryGetTxBuffer();
        if (buf === undefined) buf = await e.getTxBuffer();
        // The producer writes its message in place: here a sequence number.
        const p = buf.payload;
        p[0] = sent;
        p[1] = sent >>> 8;
        p[2] = sent >>> 16;
        p[3] = sent >>> 24;
        e.sendNoCopy(buf, c.payload);
        sent++;
        if (++ep === E) ep = 0;
        continue;
      }
      try {
        for (; sent < n; sent++) {
          epts[ep]!.trySend(data);
          if (++ep === E) ep = 0;
        }
      } catch (err) {
        if (!isRpmsgError(err, 'NO_BUFFER')) throw err;
        const tw = debug ? performance.now() : 0;
        await epts[ep]!.send(data);
        if (debug) waitMs += performance.now() - tw;
        sent++;
        if (++ep === E) ep = 0;
      }
    }
  };
  const done = new Promise<void>((r) => (acked = r));
  await stream(c.warmup);
  const stopProfile = await startProfile(ctx);
  waitMs = 0;
  const k0 = kick.count();
  const i0 = irq.count();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // The last message goes from the ack endpoint, so the device's acknowledgement finds it.
  await stream(c.count - 1);
  await sendLast(ackEpt, data, FIRST_EPT + ep);
  await done;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const notifications = ((kick.count() - k0) >>> 0) + ((irq.count() - i0) >>> 0);
  await stopProfile();
  if (debug) ctx.log(`driver: stream ${((ms * 1e6) / c.count).toFixed(0)} ns per message, of which waiting for TX buffers ${((waitMs * 1e6) / c.count).toFixed(0)} ns`);
  if (debug) ctx.log(`driver: txWaits ${vp.stats.txWaits} svq ${JSON.stringify(svq.stats)} rvq ${JSON.stringify(rvq.stats)} kick ${JSON.stringify(kick.stats())} irq ${JSON.stringify(irq.stats())}`);
  if (!ackOk) throw new Error('the device saw a message of the wrong length');

  // ---- round trips: one message in flight ---------------------------------------------
  let rttUs = Number.NaN;
  if (c.rttRounds > 0) {
    let left = 0;
    let finish!: () => void;
    const ping: RpmsgEndpoint = vp.createEndpoint({
      dst: ECHO_EPT,
      callback: () => {
        if (--left > 0) ping.trySend(data);
        else finish();
      },
    });
    const rounds = async (n: number): Promise<number> => {
      const end = new Promise<void>((r) => (finish = r));
      left = n;
      const t = performance.now();
      ping.trySend(data);
      await end;
      return performance.now() - t;
    };
    await rounds(Math.max(100, c.rttRounds >> 2)); // warm-up
    const rk = kick.count();
    const ri = irq.count();
    rttUs = ((await rounds(c.rttRounds)) * 1000) / c.rttRounds;
    if (debug) ctx.log(`rtt: kicks/round ${((kick.count() - rk) >>> 0) / c.rttRounds} irqs/round ${((irq.count() - ri) >>> 0) / c.rttRounds}`);
  }
  const report: RpmsgBenchReport = { rate: (c.count / ms) * 1000, cpuUsPerMsg: (cpu.user + cpu.system) / c.count, notificationsPerMsg: notifications / c.count, rttUs };
  ctx.report(report);
}

async function sendLast(e: RpmsgEndpoint, data: Uint8Array, dst: number): Promise<void> {
  await e.sendTo(data, dst);
}

/** URL of this module, for a `SystemSpec.entry`. */
export const RPMSG_BENCH_SYSTEM: URL = new URL(import.meta.url);
