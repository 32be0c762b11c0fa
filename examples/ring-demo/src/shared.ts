import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type Transferable } from 'node:worker_threads';
import { ArrayBufferMemory, layoutSpan, vringLegacyLayout, type SplitRingLayout } from '@x/vring';

/**
 * How the demo lays out its one SharedArrayBuffer. The two workers share nothing else:
 * the ring, the buffers, and two doorbell words (one per direction).
 *
 *   0x0000  control words (Int32): [0] kick doorbell (driver → device),
 *           [1] interrupt doorbell (device → driver), [2] device error flag
 *   0x1000  the split ring (legacy layout, align 4096)
 *   ...     buffer area: `num` buffers of `bufSize` bytes
 */
export const CTRL_KICK = 0;
export const CTRL_IRQ = 1;
export const CTRL_ERROR = 2;
export const RING_OFFSET = 0x1000;

/** The bus address at which the driver sees the shared memory. */
export const DRIVER_BASE = 0x4000_0000;
/** The (different) address at which the device's local mapping sits. */
export const DEVICE_BASE = 0x2_0000_0000;

/** Parameters of one ring demo run. */
export interface DemoParams {
  /** Buffers to move. */
  count: number;
  /** Queue size. */
  num: number;
  /** Bytes per buffer. */
  bufSize: number;
  /** Negotiate EVENT_IDX. */
  eventIdx: boolean;
  /** Device checks every byte of each payload ('full') or only its sequence number. */
  verify: 'full' | 'seq';
  /** Microseconds a side spins before sleeping on its doorbell. */
  spinUs: number;
}

export interface DemoShared {
  sab: SharedArrayBuffer;
  params: DemoParams;
}

export function ringLayout(p: DemoParams): SplitRingLayout {
  return vringLegacyLayout(DRIVER_BASE + RING_OFFSET, p.num, 4096);
}

export function bufferArea(p: DemoParams): number {
  return Math.ceil(layoutSpan(ringLayout(p)).end / 64) * 64;
}

export function createShared(p: DemoParams): DemoShared {
  const size = bufferArea(p) - DRIVER_BASE + p.num * p.bufSize;
  return { sab: new SharedArrayBuffer(size), params: p };
}

export function driverMemory(s: DemoShared): ArrayBufferMemory {
  return new ArrayBufferMemory(s.sab, { base: DRIVER_BASE, name: 'driver memory' });
}

/** The expected payload byte `i` of buffer number `seq`. */
export function payloadByte(seq: number, i: number): number {
  return (seq * 31 + i * 7) & 0xff;
}

/**
 * Busy-polls `ready()` for up to `spinUs` with notifications still off (as NAPI busy
 * polling does): a side that finds work this way never asks the other to ring. Returns
 * whether work arrived.
 */
export function spinFor(spinUs: number, ready: () => boolean): boolean {
  if (spinUs <= 0) return false;
  // Read the clock once per 32 polls: the poll is the cheap part of the loop.
  const until = performance.now() + spinUs / 1000;
  for (let i = 1; ; i++) {
    if (ready()) return true;
    if ((i & 31) === 0 && performance.now() >= until) return false;
  }
}

/**
 * Sleeps on a doorbell word after spinning for `spinUs` while `ready()` is false. The
 * caller has already re-enabled notifications; `seen` is the doorbell value read before
 * that, so a ring that lands in between makes Atomics.wait return at once.
 */
export function waitDoorbell(ctrl: Int32Array, word: number, seen: number, spinUs: number, ready: () => boolean): void {
  if (spinUs > 0) {
    const until = performance.now() + spinUs / 1000;
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

// tsx's ESM API (its "import" export of tsx/esm/api); require.resolve would give the CJS one.
const tsxApi = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;

/**
 * Starts a worker from a TypeScript file next to the caller. Node 20 cannot run .ts
 * itself, so the worker first registers tsx's loader, then imports the file.
 */
export function startWorker(url: URL, workerData: unknown, transferList: readonly Transferable[] = []): Worker {
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); }).catch((e) => { process.nextTick(() => { throw e; }); });`;
  return new Worker(boot, { eval: true, workerData, transferList: [...transferList] as never, execArgv: ['--conditions=@x/source'] });
}
