// A persistent bench worker: the driver or the device side of the ring rows, and the
// sender or receiver of the postMessage baseline, so that every ring figure and its
// postMessage baseline run on the same two worker threads. Commands come from
// bench/ring.bench.ts; each run shares nothing with the other worker but one
// SharedArrayBuffer (or, for the baseline, one MessagePort).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { parentPort, threadId, workerData, type MessagePort } from 'node:worker_threads';
import { ArrayBufferMemory, RegionMemory, VringIov, Virtqueue, Vringh } from '@x/vring';
import {
  CTRL_DONE,
  CTRL_ERROR,
  CTRL_TOTAL,
  CTRL_IRQ,
  CTRL_KICK,
  DEVICE_BASE,
  DRIVER_BASE,
  queueLayout,
  ringDoorbell,
  waitDoorbell,
  type DeviceReport,
  type DriverReport,
  type RingRunParams,
} from './ring-shared.js';
import { pmReceive, pmSend } from './ring-postmessage.js';

/** A command from the bench. */
export type WorkerCommand =
  | { cmd: 'ring'; sab: SharedArrayBuffer; p: RingRunParams }
  | { cmd: 'pm'; port: MessagePort; count: number; size: number }
  | { cmd: 'exit' };

const role = (workerData as { role: 'driver' | 'device' }).role;
const POLL_GIVE_UP_MS = 20_000;


/**
 * Waits for `ready()`. Polling (spinUs = Infinity) never touches the doorbell: the side
 * keeps notifications off and spins. Adaptive (spinUs > 0) first spins `spinUs` with
 * notifications still off (as NAPI busy polling does), and only then re-enables them
 * (`enable()` returns false when work arrived meanwhile) and sleeps on the word. Sleeping
 * (spinUs = 0) re-enables notifications and sleeps at once.
 */
function idle(ctrl: Int32Array, word: number, spinUs: number, ready: () => boolean, enable: () => boolean, disable: () => void): void {
  if (spinUs === Infinity) {
    const t0 = performance.now();
    for (let i = 1; !ready(); i++) {
      if ((i & 1023) === 0) {
        if (Atomics.load(ctrl, CTRL_ERROR) !== 0) throw new Error('the other side reported an error');
        if (performance.now() - t0 > POLL_GIVE_UP_MS) throw new Error('polling gave up: the other side made no progress');
      }
    }
    return;
  }
  if (spinUs > 0) {
    // Read the clock once per 32 polls: the poll is the cheap part of the loop.
    const until = performance.now() + spinUs / 1000;
    for (let i = 1; ; i++) {
      if (ready()) return;
      if ((i & 31) === 0 && performance.now() >= until) break;
    }
  }
  const seen = Atomics.load(ctrl, word);
  if (enable()) waitDoorbell(ctrl, word, seen, 0, ready);
  disable();
  if (Atomics.load(ctrl, CTRL_ERROR) !== 0) throw new Error('the other side reported an error');
}

function driverRun(sab: SharedArrayBuffer, p: RingRunParams): DriverReport {
  const ctrl = new Int32Array(sab, 0, 64);
  const memory = new ArrayBufferMemory(sab, { base: DRIVER_BASE, name: 'driver memory' });
  const words = new Uint32Array(sab, 0, sab.byteLength >>> 2);
  const Q = p.queues;
  const size = p.bufSize;
  const wordsPerBuf = size >>> 2;
  const lastWord = wordsPerBuf - 1;
  const batch = Math.max(1, p.batch);
  const notify = (): void => ringDoorbell(ctrl, CTRL_KICK);
  const vqs: Virtqueue<number>[] = [];
  // Free buffers of each queue, a FIFO (reused in the order they come back).
  const frees: Int32Array[] = [];
  const tops = new Int32Array(Q);
  const rds = new Int32Array(Q);
  const poolMask = p.num - 1;
  const sents = new Float64Array(Q);
  const areas = new Float64Array(Q);
  const bases = new Float64Array(Q);
  for (let q = 0; q < Q; q++) {
    const { layout, area } = queueLayout(p, q);
    vqs.push(new Virtqueue<number>({ memory, layout, eventIdx: true, index: q, notify }));
    const free = new Int32Array(p.num);
    for (let i = 0; i < p.num; i++) free[tops[q]++] = i;
    frees.push(free);
    areas[q] = area;
    bases[q] = (area - DRIVER_BASE) >>> 2;
  }
  const anyUsed = (): boolean => {
    for (let q = 0; q < Q; q++) if (vqs[q]!.moreUsed()) return true;
    return false;
  };
  const enable = (): boolean => {
    let empty = true;
    for (let q = 0; q < Q; q++) if (!vqs[q]!.enableCb()) empty = false;
    return empty;
  };
  const disable = (): void => {
    for (let q = 0; q < Q; q++) vqs[q]!.disableCb();
  };
  disable();
  const total = p.count * Q;
  let received = 0;
  let sentTotal = 0;
  let stopped = false;
  let pass = 0;
  const t0 = performance.now();
  try {
    for (;;) {
      if ((++pass & 63) === 0 && !stopped && performance.now() - t0 > p.maxMs) stopped = true;
      let got = 0;
      for (let q = 0; q < Q; q++) {
        const vq = vqs[q]!;
        const free = frees[q]!;
        let top = tops[q]!;
        let rd = rds[q]!;
        let sent = sents[q]!;
        const area = areas[q]!;
        const base = bases[q]!;
        // Fill every free buffer; publish (and kick if the device wants it) every `batch`.
        let added = 0;
        while (sent < p.count && top > 0 && !stopped) {
          const b = free[rd]!;
          rd = (rd + 1) & poolMask;
          top--;
          const w = base + b * wordsPerBuf;
          words[w] = sent;
          words[w + lastWord] = ~sent;
          vq.addOutbuf(area + b * size, size, b);
          sent++;
          sentTotal++;
          if (++added === batch) {
            vq.kick();
            added = 0;
          }
        }
        if (added > 0) vq.kick();
        let tok: number | undefined;
        while ((tok = vq.getBuf()) !== undefined) {
          free[(rd + top++) & poolMask] = tok;
          got++;
        }
        tops[q] = top;
        rds[q] = rd;
        sents[q] = sent;
      }
      received += got;
      if (received === sentTotal && (stopped || sentTotal === total)) break;
      if (got === 0 && received < sentTotal) idle(ctrl, CTRL_IRQ, p.spinUs, anyUsed, enable, disable);
    }
  } catch (e) {
    // Tell the device, so it stops polling or waiting.
    Atomics.store(ctrl, CTRL_ERROR, 1);
    ringDoorbell(ctrl, CTRL_KICK);
    throw e;
  }
  const ms = performance.now() - t0;
  Atomics.store(ctrl, CTRL_TOTAL, sentTotal);
  Atomics.store(ctrl, CTRL_DONE, 1);
  ringDoorbell(ctrl, CTRL_KICK);
  let kicks = 0;
  for (const vq of vqs) kicks += vq.stats.kicks;
  return { ms, received, kicks };
}

function deviceRun(sab: SharedArrayBuffer, p: RingRunParams): DeviceReport {
  const ctrl = new Int32Array(sab, 0, 64);
  const local = new ArrayBufferMemory(sab, { base: DEVICE_BASE, name: 'device local mapping' });
  const window = new RegionMemory({ name: 'device window' });
  window.map({ busAddr: DRIVER_BASE, size: sab.byteLength, target: local, targetAddr: DEVICE_BASE });
  const Q = p.queues;
  const size = p.bufSize;
  const lastWord = (size >>> 2) - 1;
  const areaBytes = p.num * size;
  const batch = Math.max(1, p.batch);
  const zeroCopy = p.mode === 'zero-copy';
  const vrhs: Vringh[] = [];
  const views: Uint32Array[] = [];
  const areas = new Float64Array(Q);
  const processed = new Float64Array(Q);
  for (let q = 0; q < Q; q++) {
    const { layout, area } = queueLayout(p, q);
    vrhs.push(new Vringh({ memory: window, layout, eventIdx: true }));
    // Zero-copy: map the queue's buffer area once; each chain's address indexes into it.
    const v = window.view(area, areaBytes)!;
    views.push(new Uint32Array(v.buffer, v.byteOffset, areaBytes >>> 2));
    areas[q] = area;
  }
  const riov = new VringIov(4);
  const wiov = new VringIov(4);
  const heads = new Uint16Array(batch);
  const lens = new Uint32Array(heads.length);
  const scratch = new Uint8Array(size);
  const scratch32 = new Uint32Array(scratch.buffer);
  const anyAvail = (): boolean => {
    for (let q = 0; q < Q; q++) if (vrhs[q]!.hasAvail()) return true;
    return Atomics.load(ctrl, CTRL_DONE) !== 0;
  };
  const enable = (): boolean => {
    let empty = true;
    for (let q = 0; q < Q; q++) if (!vrhs[q]!.notifyEnable()) empty = false;
    return empty;
  };
  const disable = (): void => {
    for (let q = 0; q < Q; q++) vrhs[q]!.notifyDisable();
  };
  disable();
  let done = 0;
  let interrupts = 0;
  try {
    for (;;) {
      let got = 0;
      for (let q = 0; q < Q; q++) {
        const vrh = vrhs[q]!;
        let seq = processed[q]!;
        let n = 0;
        let pending = 0;
        for (;;) {
          const head = vrh.getDesc(riov, wiov);
          if (head < 0) break;
          let first: number;
          let last: number;
          if (zeroCopy) {
            const off = riov.addr[0]! - areas[q]!;
            if (riov.count !== 1 || riov.len[0] !== size || !(off >= 0 && off + size <= areaBytes)) throw new Error(`device: chain ${head} is not one buffer of the area`);
            const w = views[q]!;
            first = w[off >>> 2]!;
            last = w[(off >>> 2) + lastWord]!;
          } else {
            if (vrh.pull(riov, scratch) !== size) throw new Error(`device: chain ${head} is not ${size} bytes`);
            first = scratch32[0]!;
            last = scratch32[lastWord]!;
          }
          if (first !== seq || last !== (~seq >>> 0)) throw new Error(`device: queue ${q} got buffer ${first}, expected ${seq}`);
          seq++;
          n++;
          // Complete one at a time (batch 1) or `batch` chains per used.idx update.
          if (batch === 1) vrh.complete(head, 0);
          else {
            heads[pending++] = head;
            if (pending < batch) continue;
            vrh.completeMany(heads, lens, pending);
            pending = 0;
          }
          if (vrh.needNotify()) {
            ringDoorbell(ctrl, CTRL_IRQ);
            interrupts++;
          }
        }
        if (pending > 0) {
          vrh.completeMany(heads, lens, pending);
          if (vrh.needNotify()) {
            ringDoorbell(ctrl, CTRL_IRQ);
            interrupts++;
          }
        }
        processed[q] = seq;
        got += n;
      }
      done += got;
      if (got === 0) {
        if (Atomics.load(ctrl, CTRL_DONE) !== 0 && done >= Atomics.load(ctrl, CTRL_TOTAL)) break;
        idle(ctrl, CTRL_KICK, p.spinUs, anyAvail, enable, disable);
      }
    }
  } catch (e) {
    Atomics.store(ctrl, CTRL_ERROR, 1);
    ringDoorbell(ctrl, CTRL_IRQ);
    throw e;
  }
  return { processed: done, interrupts };
}

// RING_PROF=<dir>: profile this worker (Node's --cpu-prof does not reach workers started
// with their own execArgv) and write <dir>/ring-<role>-<thread>.cpuprofile on exit.
const profDir = process.env['RING_PROF'];
let session: Session | undefined;
if (profDir !== undefined) {
  session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
}

parentPort!.on('message', (m: WorkerCommand) => {
  if (m.cmd === 'exit') {
    if (session === undefined) {
      parentPort!.close();
      return;
    }
    session.post('Profiler.stop', (err, res) => {
      if (err === null) writeFileSync(join(profDir!, `ring-${role}-${threadId}.cpuprofile`), JSON.stringify(res.profile));
      session!.disconnect();
      parentPort!.close();
    });
    return;
  }
  if (m.cmd === 'pm') {
    const job = role === 'driver' ? pmSend(m.port, m.count, m.size) : pmReceive(m.port, m.count, m.size).then(() => 0);
    job.then(
      (ms) => parentPort!.postMessage({ ok: true, report: { ms } }),
      (e: unknown) => parentPort!.postMessage({ ok: false, error: String(e) }),
    );
    return;
  }
  try {
    const report = role === 'driver' ? driverRun(m.sab, m.p) : deviceRun(m.sab, m.p);
    parentPort!.postMessage({ ok: true, report });
  } catch (e) {
    parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.stack : String(e) });
  }
});
