// The bench's two-worker split-ring setup (shared by bench/ring.bench.ts and
// bench/ring-worker.ts). Like the ring demo (examples/ring-demo), the two workers share
// nothing but one SharedArrayBuffer: the rings, the buffers and the doorbell words. The
// driver sees it at DRIVER_BASE; the device reaches it through a RegionMemory window onto
// its own mapping at DEVICE_BASE, as a PCIe endpoint would through an outbound window.
import { vringLegacyLayout, vringSize, type SplitRingLayout } from '@x/vring';

/**
 *   0x0000  control words (Int32), one cache line each: kick doorbell (driver → device),
 *           interrupt doorbell (device → driver), device error flag
 *   0x1000  `queues` split rings (legacy layout, align 4096), one after the other
 *   ...     buffer areas: `num` buffers of `bufSize` bytes per queue
 */
export const CTRL_KICK = 0;
export const CTRL_IRQ = 16;
export const CTRL_ERROR = 32;
/** Set by the driver when it has stopped adding; CTRL_TOTAL then holds the buffers it sent. */
export const CTRL_DONE = 48;
export const CTRL_TOTAL = 49;
export const RING_OFFSET = 0x1000;
export const DRIVER_BASE = 0x4000_0000;
export const DEVICE_BASE = 0x2_0000_0000;

/** What one two-worker ring run does. */
export interface RingRunParams {
  /** Buffers to move per queue. */
  count: number;
  /** Queue size. */
  num: number;
  /** Bytes per buffer (a multiple of 4, ≥ 8). */
  bufSize: number;
  /** Number of queues (each a Virtqueue in the driver and a Vringh in the device). */
  queues: number;
  /** µs a side spins before sleeping on its doorbell (Infinity = poll only). */
  spinUs: number;
  /**
   * 'zero-copy': the device reads the first and last word of each buffer in place, through
   * a view of the buffer area in shared memory. 'copy': the device copies each payload
   * into its own buffer with Vringh.pull and checks the copy.
   */
  mode: 'zero-copy' | 'copy';
  /**
   * 1: one buffer per avail.idx update (addOutbuf + kick each) and one per used.idx
   * update (complete each). n > 1: the driver adds up to n buffers per kick and the
   * device takes up to n chains per completeMany.
   */
  batch: number;
  /**
   * Wall-clock budget of the run (ms): the driver stops adding buffers when it is spent
   * and the rate counts what was moved. It bounds a run on a loaded machine, where a
   * polling side can only make progress while both workers hold a core.
   */
  maxMs: number;
}

/** One queue's place in the shared buffer. */
export function queueLayout(p: RingRunParams, q: number): { layout: SplitRingLayout; area: number } {
  const stride = Math.ceil(vringSize(p.num, 4096) / 4096) * 4096;
  const layout = vringLegacyLayout(DRIVER_BASE + RING_OFFSET + q * stride, p.num, 4096);
  const area = DRIVER_BASE + RING_OFFSET + p.queues * stride + q * p.num * p.bufSize;
  return { layout, area };
}

/** Bytes of the shared buffer for a run. */
export function sharedBytes(p: RingRunParams): number {
  return queueLayout(p, p.queues - 1).area - DRIVER_BASE + p.num * p.bufSize;
}

/** Sleeps on a doorbell word after spinning `spinUs` while `ready()` is false (see the ring demo). */
export function waitDoorbell(ctrl: Int32Array, word: number, seen: number, spinUs: number, ready: () => boolean): void {
  if (spinUs > 0) {
    const until = performance.now() + Math.min(spinUs, 1e6) / 1000;
    do {
      if (ready()) return;
    } while (performance.now() < until);
  }
  if (ready()) return;
  Atomics.wait(ctrl, word, seen, 100);
}

export function ringDoorbell(ctrl: Int32Array, word: number): void {
  Atomics.add(ctrl, word, 1);
  Atomics.notify(ctrl, word, 1);
}

/** What each worker reports after a ring run. */
export interface DriverReport {
  ms: number;
  received: number;
  kicks: number;
}
export interface DeviceReport {
  processed: number;
  interrupts: number;
}
