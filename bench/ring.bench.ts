// Split-ring throughput: one thread, two workers, and postMessage between the same two
// workers as the baseline (issue 2). 64-byte buffers.
import { MessageChannel } from 'node:worker_threads';
import { once } from 'node:events';
import { VringIov } from '@x/vring';
import { createRingPair } from '@x/vring/testing';
import { runRingDemo } from '../examples/ring-demo/src/main.js';
import { startWorker } from '../examples/ring-demo/src/shared.js';
import type { BenchContext, Row } from './harness.js';

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

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 200_000 : 2_000_000;
  const rows: Row[] = [];
  rows.push(await ctx.measure('split ring, one thread (batch 32)', 'buffers/s', () => oneThread(n, 32)));
  const pm = await ctx.measure('postMessage, two workers (baseline)', 'msgs/s', () => postMessageRate(ctx.quick ? 100_000 : 500_000));
  rows.push(pm);
  for (const spinUs of [0, 50, 1_000_000]) {
    const label = spinUs >= 1_000_000 ? 'split ring, two workers, busy polling' : `split ring, two workers, spin ${spinUs} µs then sleep`;
    const r = await ctx.measure(label, 'buffers/s', async () => (await runRingDemo({ count: n, verify: 'seq', spinUs })).rate);
    r.vsBaseline = r.median / pm.median;
    rows.push(r);
  }
  return rows;
}
