import { setImmediate } from 'node:timers';
import type { RpmsgError, RpmsgVirtproc } from '@x/rpmsg';

/** Turns of the event loop until `pred` holds (bounded: a failing test does not hang). */
export async function until(pred: () => boolean, turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (pred()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  if (!pred()) throw new Error('condition not reached');
}

/** Collects a virtproc's `dropped` and `warning` events. */
export function collect(vp: RpmsgVirtproc): { dropped: RpmsgError[]; warnings: RpmsgError[] } {
  const out = { dropped: [] as RpmsgError[], warnings: [] as RpmsgError[] };
  vp.on('dropped', (e) => out.dropped.push(e));
  vp.on('warning', (e) => out.warnings.push(e));
  return out;
}

export const utf8 = new TextEncoder();
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
