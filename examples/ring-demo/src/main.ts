import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { createShared, startWorker, type DemoParams } from './shared.js';

/** Figures of one run. */
export interface RingDemoResult {
  params: DemoParams;
  /** Buffers the driver got back. */
  received: number;
  /** Buffers the device checked. */
  processed: number;
  /** Wall time of the transfer, milliseconds (driver's clock). */
  ms: number;
  /** Buffers per second. */
  rate: number;
  /** Driver kicks that rang the doorbell / were suppressed by the device. */
  kicks: number;
  kicksSuppressed: number;
  /** Interrupts the device raised. */
  interrupts: number;
  /** Times the device re-enabled kicks (notifyEnable). */
  deviceEnables: number;
  /** Times each side slept on its doorbell. */
  driverSleeps: number;
  deviceSleeps: number;
}

const defaults: DemoParams = { count: 1_000_000, num: 256, bufSize: 64, eventIdx: true, verify: 'full', spinUs: 50 };

/** The worker's one result message; rejects if it errors or exits without sending it. */
function result<T>(w: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited with code ${code} before reporting`)));
  });
}

/**
 * Runs the driver and the device in two worker threads over one SharedArrayBuffer and
 * moves `count` buffers through one split ring.
 */
export async function runRingDemo(params: Partial<DemoParams> = {}): Promise<RingDemoResult> {
  const p = { ...defaults, ...params };
  const shared = createShared(p);
  const driver = startWorker(new URL('./driver-worker.ts', import.meta.url), shared);
  const device = startWorker(new URL('./device-worker.ts', import.meta.url), shared);
  // Listen for failures from the start, so an error while booting is never unhandled.
  const driverDone = result<any>(driver);
  const deviceDone = result<any>(device);
  driverDone.catch(() => {});
  deviceDone.catch(() => {});
  try {
    // Both workers must be running before the clock starts.
    await Promise.race([Promise.all([once(driver, 'online'), once(device, 'online')]), Promise.all([driverDone, deviceDone])]);
    device.postMessage('go');
    driver.postMessage('go');
    const [d, v] = await Promise.all([driverDone, deviceDone]);
    return {
      params: p,
      received: d.received,
      processed: v.processed,
      ms: d.ms,
      rate: (d.received / d.ms) * 1000,
      kicks: d.kicks,
      kicksSuppressed: d.kicksSuppressed,
      interrupts: v.interrupts,
      driverSleeps: d.sleeps,
      deviceSleeps: v.sleeps,
      deviceEnables: v.enables,
    };
  } finally {
    await Promise.all([driver.terminate(), device.terminate()]);
  }
}

/** The demo: a million 64-byte buffers, every byte checked, the rate printed. */
export async function main(params: Partial<DemoParams> = {}): Promise<RingDemoResult> {
  const r = await runRingDemo(params);
  const m = (r.rate / 1e6).toFixed(2);
  console.log(`ring demo: ${r.received.toLocaleString('en-US')} buffers of ${r.params.bufSize} B through one split ring (queue size ${r.params.num}, EVENT_IDX ${r.params.eventIdx ? 'on' : 'off'})`);
  console.log(`           driver and device in two worker threads over one SharedArrayBuffer`);
  console.log(`           ${m} M buffers/s; ${r.kicks} kicks (${r.kicksSuppressed} suppressed), ${r.interrupts} interrupts`);
  return r;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
