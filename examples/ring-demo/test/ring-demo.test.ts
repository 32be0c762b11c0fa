import { describe, expect, it } from 'vitest';
import { main, runRingDemo } from '../src/main.js';

// Issue 2: driver in one worker_thread, device in another, over one SharedArrayBuffer,
// 1,000,000 buffers; the device checks every payload byte and the sequence number of
// each buffer (so none is lost, duplicated or reordered) and the driver checks the
// sequence of returned tokens.
describe('ring demo: two workers, one split ring', () => {
  it('moves 1,000,000 buffers with every byte checked, none lost or duplicated (EVENT_IDX on)', async () => {
    const r = await main({ count: 1_000_000, verify: 'full', eventIdx: true });
    expect(r.received).toBe(1_000_000);
    expect(r.processed).toBe(1_000_000);
    // §2.7.10 with EVENT_IDX: the driver kicks only when avail.idx crosses avail_event,
    // which the device moves once per notifyEnable; a stale avail_event can be crossed
    // again only after the 16-bit index wraps (once per 65536 buffers).
    expect(r.kicks).toBeLessThanOrEqual(r.deviceEnables + Math.ceil(1_000_000 / 65536) + 1);
  });

  it('works without EVENT_IDX (flag-based suppression) and with tiny spin windows', async () => {
    const r = await runRingDemo({ count: 200_000, verify: 'full', eventIdx: false, spinUs: 0, num: 16 });
    expect(r.received).toBe(200_000);
    expect(r.processed).toBe(200_000);
  });
});
