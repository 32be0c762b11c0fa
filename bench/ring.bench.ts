// Split-ring benchmarks (issue 7: P1, P6 and the ring sweeps). Every two-worker figure runs
// on the same two persistent worker threads (bench/ring-worker.ts) as its postMessage
// baseline, in the same run. CPU time is process.cpuUsage() of the whole process (both
// workers and the idle main thread) over the run, divided by the buffers moved.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { VringIov, descTableSize, availRingSize, usedRingSize, vringSize } from '@x/vring';
import { createRingPair } from '@x/vring/testing';
import { startWorker } from '../examples/ring-demo/src/shared.js';
import type { BenchContext, ChartPoint, Row, Sample } from './harness.js';
import { sharedBytes, type DeviceReport, type DriverReport, type RingRunParams } from './ring-shared.js';
import type { WorkerCommand } from './ring-worker.js';

/** Driver and device in one thread: the cost of the ring code alone. */
function oneThread(count: number, batch: number): number {
  const p = createRingPair<number>({ num: 256, eventIdx: true, dataSize: 256 * 64 });
  const riov = new VringIov(4);
  const wiov = new VringIov(4);
  const { vq, vrh, dataAddr } = p;
  let sent = 0;
  let done = 0;
  const t0 = performance.now();
  while (done < count) {
    for (let i = 0; i < batch && sent < count; i++) {
      if (!vq.addOutbuf(dataAddr + (sent & 255) * 64, 64, sent & 255)) break;
      sent++;
    }
    vq.kickPrepare();
    let head: number;
    while ((head = vrh.getDesc(riov, wiov)) >= 0) vrh.addUsed(head, 0);
    vrh.flushUsed();
    vrh.needNotify();
    while (vq.getBuf() !== undefined) done++;
  }
  return (count / (performance.now() - t0)) * 1000;
}

/**
 * postMessage between two fresh workers (bench/postmessage-worker.ts): `count` messages of
 * `size` bytes; returns messages per second. Other bench files use it as their baseline.
 */
export async function postMessageRate(count: number, size = 64): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  const url = new URL('./postmessage-worker.ts', import.meta.url);
  const rx = startWorker(url, { role: 'rx', port: port2, count, size, window: 4096 }, [port2]);
  const tx = startWorker(url, { role: 'tx', port: port1, count, size, window: 4096 }, [port1]);
  try {
    await Promise.all([once(rx, 'online'), once(tx, 'online')]);
    const txDone = once(tx, 'message');
    tx.postMessage('go');
    const [{ ms }] = (await txDone) as [{ ms: number }];
    return (count / ms) * 1000;
  } finally {
    await Promise.all([rx.terminate(), tx.terminate()]);
  }
}

/** The two persistent workers: `driver` sends (ring driver, postMessage sender), `device` receives. */
export interface Pair {
  driver: Worker;
  device: Worker;
}

function call<T>(w: Worker, msg: WorkerCommand, transfer: readonly MessagePortLike[] = []): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: { ok: boolean; report?: T; error?: string }): void => {
      cleanup();
      if (m.ok) resolve(m.report as T);
      else reject(new Error(m.error));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`bench worker exited with code ${code}`));
    };
    const cleanup = (): void => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    w.postMessage(msg, transfer as never);
  });
}
type MessagePortLike = object;

export async function startPair(): Promise<Pair> {
  const url = new URL('./ring-worker.ts', import.meta.url);
  const driver = startWorker(url, { role: 'driver' });
  const device = startWorker(url, { role: 'device' });
  await Promise.all([once(driver, 'online'), once(device, 'online')]);
  return { driver, device };
}

export async function stopPair(pair: Pair): Promise<void> {
  // End the workers normally (so --cpu-prof can write their profiles); terminate as a fallback.
  await Promise.all(
    [pair.driver, pair.device].map(async (w) => {
      const exited = once(w, 'exit');
      w.postMessage({ cmd: 'exit' } satisfies WorkerCommand);
      const timer = setTimeout(() => void w.terminate(), 5000);
      await exited;
      clearTimeout(timer);
    }),
  );
}

const defaults: RingRunParams = { count: 0, num: 256, bufSize: 64, queues: 1, spinUs: Infinity, mode: 'zero-copy', batch: 1, maxMs: 3000 };

/** One ring run on the pair; value in buffers/s (or GB/s with `gbps`). */
export async function ringSample(pair: Pair, params: Partial<RingRunParams> & { count: number }, gbps = false): Promise<Sample> {
  const p = { ...defaults, ...params };
  const sab = new SharedArrayBuffer(sharedBytes(p));
  const cpu0 = process.cpuUsage();
  const [v, d] = await Promise.all([
    call<DeviceReport>(pair.device, { cmd: 'ring', sab, p }),
    call<DriverReport>(pair.driver, { cmd: 'ring', sab, p }),
  ]);
  const cpu = process.cpuUsage(cpu0);
  const buffers = d.received;
  if (v.processed !== buffers || buffers === 0) throw new Error(`ring run: driver got back ${d.received} buffers, device processed ${v.processed}`);
  const rate = (buffers / d.ms) * 1000;
  return {
    value: gbps ? (rate * p.bufSize) / 1e9 : rate,
    metrics: {
      buffersPerSec: rate,
      cpuUsPerMsg: (cpu.user + cpu.system) / buffers,
      notificationsPerMsg: (d.kicks + v.interrupts) / buffers,
    },
  };
}

/** postMessage of `size`-byte Uint8Arrays between the same two workers; msgs/s (or GB/s). */
export async function pmSample(pair: Pair, count: number, size: number, gbps = false): Promise<Sample> {
  const { port1, port2 } = new MessageChannel();
  const cpu0 = process.cpuUsage();
  const [tx] = await Promise.all([
    call<{ ms: number }>(pair.driver, { cmd: 'pm', port: port1, count, size }, [port1]),
    call<{ ms: number }>(pair.device, { cmd: 'pm', port: port2, count, size }, [port2]),
  ]);
  const cpu = process.cpuUsage(cpu0);
  const rate = (count / tx.ms) * 1000;
  return { value: gbps ? (rate * size) / 1e9 : rate, metrics: { msgsPerSec: rate, cpuUsPerMsg: (cpu.user + cpu.system) / count } };
}

/** `TypedArray.set` of `size` bytes in one thread, repeated; GB/s. */
function typedArraySet(size: number, bytes: number): number {
  const src = new Uint8Array(size).fill(7);
  const dst = new Uint8Array(size);
  const n = Math.max(1, Math.floor(bytes / size));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    src[0] = i;
    dst.set(src);
  }
  const ms = performance.now() - t0;
  if (dst[0] !== ((n - 1) & 0xff)) throw new Error('copy lost');
  return (n * size) / ms / 1e6;
}

/** JS memory per Virtqueue + Vringh pair, from a child node with --expose-gc (bench/ring-heap.ts). */
async function heapPerPair(sizes: number[], n: number, reps: number): Promise<Record<number, { heap: number[]; arrayBuffers: number[] }>> {
  const script = fileURLToPath(new URL('./ring-heap.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--conditions=@x/source', '--import', 'tsx', script, sizes.join(','), String(n), String(reps)], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  return JSON.parse(stdout) as Record<number, { heap: number[]; arrayBuffers: number[] }>;
}

const KiB = 1024;
const sizeLabel = (n: number): string => (n >= KiB ? `${n / KiB} KiB` : `${n} B`);
const doorbells = [
  { name: 'polling', spinUs: Infinity },
  { name: 'adaptive (spin 50 µs, then sleep)', spinUs: 50 },
  { name: 'sleeping', spinUs: 0 },
] as const;

export async function run(ctx: BenchContext): Promise<Row[]> {
  const q = ctx.quick;
  /** Wall-clock cap of one ring run (see RingRunParams.maxMs). */
  const maxMs = q ? 250 : 3000;
  const n64 = q ? 300_000 : 2_000_000;
  const nSweep = q ? 200_000 : 1_000_000;
  const pmN = q ? 100_000 : 500_000;
  const pmSweepN = q ? 50_000 : 200_000;
  /**
   * Buffers for a run that copies `size`-byte payloads: a byte budget, at least 2000 and at
   * most `max`. Zero-copy runs touch two words per buffer whatever its size and move nSweep.
   */
  const countFor = (size: number, max: number): number => Math.max(2000, Math.min(max, Math.floor((q ? 256 : 2048) * 2 ** 20 / size)));
  const rows: Row[] = [];
  rows.push(await ctx.measure('split ring, one thread (batch 32)', 'buffers/s', () => oneThread(q ? 300_000 : 2_000_000, 32)));

  const pair = await startPair();
  try {
    // Untimed warm-up of both workers' code paths (quick mode has no per-row warm-up).
    await ringSample(pair, { maxMs, count: 100_000 });
    await ringSample(pair, { maxMs, count: 100_000, batch: 64 });
    await ringSample(pair, { maxMs, count: 2000, bufSize: 16 * KiB, mode: 'copy' });
    await pmSample(pair, 20_000, 64);

    // ---- P1: split ring raw, 64-byte buffers -------------------------------------------
    const pm = await ctx.measure('postMessage, two workers, 64 B (baseline)', 'msgs/s', () => pmSample(pair, pmN, 64));
    rows.push(pm);
    // One buffer per avail.idx update (addOutbuf + kick each) and per used.idx update
    // (complete each): the one-message-at-a-time use that postMessage offers.
    for (const db of doorbells) {
      rows.push(
        await ctx.measure(`split ring raw, two workers, 64 B, one buffer per index update, ${db.name} doorbell`, 'buffers/s', () => ringSample(pair, { maxMs, count: n64, spinUs: db.spinUs }), {
          baseline: pm,
          target: { id: 'P1', of: 'ratio', op: '>=', threshold: 20 },
        }),
      );
    }
    // Batched through the public API: 64 addOutbuf per kick (one avail.idx update), 64
    // chains per completeMany (one used.idx update, one needNotify).
    for (const db of doorbells) {
      rows.push(
        await ctx.measure(`split ring raw, two workers, 64 B, batched (64 per kick / per completeMany), ${db.name} doorbell`, 'buffers/s', () => ringSample(pair, { maxMs, count: n64, spinUs: db.spinUs, batch: 64 }), {
          baseline: pm,
          ...(db.spinUs === Infinity ? { target: { id: 'P1 stretch', of: 'value', op: '>=', threshold: 21e6 } as const } : {}),
        }),
      );
    }

    // ---- P6: 64 KiB payloads, and the payload sweep ------------------------------------
    const payloadChart = (series: string, x: number): ChartPoint => ({ id: 'ring-payload', title: 'Split ring vs postMessage by payload size (two workers, polling, batches of 64)', series, x, xLabel: 'payload (bytes)', xLog: true, yLog: true });
    const big = 64 * KiB;
    const nBig = countFor(big, 100_000);
    rows.push(await ctx.measure('TypedArray.set, one thread, 64 KiB (baseline for copies)', 'GB/s', () => typedArraySet(big, (q ? 512 : 4096) * 2 ** 20)));
    const pmBig = await ctx.measure('postMessage, two workers, 64 KiB (structured clone: one copy)', 'GB/s', () => pmSample(pair, nBig, big, true), { chart: payloadChart('postMessage (one copy)', big) });
    rows.push(pmBig);
    rows.push(
      await ctx.measure('split ring, two workers, 64 KiB, zero-copy (device reads first and last word in place), batched, polling', 'GB/s', () => ringSample(pair, { maxMs, count: nSweep, bufSize: big, batch: 64 }, true), {
        baseline: pmBig,
        target: { id: 'P6', of: 'value', op: '>=', threshold: 10 },
        chart: payloadChart('split ring, zero-copy', big),
      }),
    );
    rows.push(
      await ctx.measure('split ring, two workers, 64 KiB, one copy (device pulls into its buffer), batched, polling', 'GB/s', () => ringSample(pair, { maxMs, count: nBig, bufSize: big, mode: 'copy', batch: 64 }, true), {
        baseline: pmBig,
        target: { id: 'P6', of: 'ratio', op: '>=', threshold: 1 },
        chart: payloadChart('split ring, one copy', big),
      }),
    );
    for (const size of [16, 64, 256, KiB, 4 * KiB, 16 * KiB]) {
      const count = countFor(size, nSweep);
      const base = await ctx.measure(`postMessage, two workers, ${sizeLabel(size)}`, 'GB/s', () => pmSample(pair, Math.min(count, pmSweepN), size, true), { chart: payloadChart('postMessage (one copy)', size) });
      rows.push(base);
      for (const mode of ['zero-copy', 'copy'] as const) {
        rows.push(
          await ctx.measure(`split ring, two workers, ${sizeLabel(size)}, ${mode === 'copy' ? 'one copy' : 'zero-copy'}, batched, polling`, 'GB/s', () => ringSample(pair, { maxMs, count: mode === 'copy' ? count : nSweep, bufSize: size, mode, batch: 64 }, true), {
            baseline: base,
            chart: payloadChart(mode === 'copy' ? 'split ring, one copy' : 'split ring, zero-copy', size),
          }),
        );
      }
    }

    // ---- queue size and queue count sweeps (64 B, polling) -----------------------------
    for (const num of [64, 256, 1024, 4096]) {
      rows.push(
        await ctx.measure(`split ring, two workers, 64 B, batched, polling, queue size ${num}`, 'buffers/s', () => ringSample(pair, { maxMs, count: nSweep, num, batch: Math.min(64, num / 4) }), {
          baseline: pm,
          chart: { id: 'ring-queue-size', title: 'Split ring throughput by queue size (two workers, 64 B, polling, batches of min(64, size/4))', series: 'split ring', x: num, xLabel: 'queue size', xLog: true },
        }),
      );
    }
    for (const queues of [1, 2, 4, 8]) {
      rows.push(
        await ctx.measure(`split ring, two workers, 64 B, batched, polling, ${queues} queue${queues > 1 ? 's' : ''} (total)`, 'buffers/s', () => ringSample(pair, { maxMs, count: Math.ceil(nSweep / queues), queues, batch: 64 }), {
          baseline: pm,
          chart: { id: 'ring-queues', title: 'Split ring throughput by number of queues (two workers, 64 B, polling, batches of 64)', series: 'split ring (all queues)', x: queues, xLabel: 'queues', xLog: true },
        }),
      );
    }
  } finally {
    await stopPair(pair);
  }

  // ---- memory per queue ----------------------------------------------------------------
  const sizes = [64, 256, 1024, 4096];
  const memChart = (series: string, x: number): ChartPoint => ({ id: 'memory-per-queue', title: 'Memory per queue', series, x, xLabel: 'queue size', xLog: true, yLog: true });
  const heap = await heapPerPair(sizes, q ? 200 : 1000, ctx.runs + (q ? 0 : 1));
  for (const num of sizes) {
    const buffers = num * 64;
    const legacy = vringSize(num, 4096) + buffers;
    const modern = descTableSize(num) + availRingSize(num) + usedRingSize(num) + buffers;
    rows.push(await ctx.measure(`shared memory per queue, legacy layout (align 4096) + ${num} × 64 B buffers, queue size ${num}`, 'bytes', () => ({ value: legacy, metrics: { bytesPerQueue: legacy } }), { better: 'lower', chart: memChart('shared: legacy ring + 64 B buffers', num) }));
    rows.push(await ctx.measure(`shared memory per queue, modern layout + ${num} × 64 B buffers, queue size ${num}`, 'bytes', () => ({ value: modern, metrics: { bytesPerQueue: modern } }), { better: 'lower', chart: memChart('shared: modern ring + 64 B buffers', num) }));
    let i = 0;
    const h = heap[num]!;
    rows.push(
      await ctx.measure(`JS memory per Virtqueue + Vringh pair (heap + private typed arrays), queue size ${num}`, 'bytes', () => {
        const k = i++;
        return { value: h.heap[k]! + h.arrayBuffers[k]!, metrics: { heapBytes: h.heap[k]!, arrayBufferBytes: h.arrayBuffers[k]! } };
      }, { better: 'lower', chart: memChart('JS: Virtqueue + Vringh objects', num) }),
    );
  }
  return rows;
}
