import { describe, expect, it } from 'vitest';
import { main } from '../examples/basic.js';

describe('examples/basic.ts', () => {
  it("Jason's mediator: a local driver and a remote driver talk; X = {0, 1} + ring bits, Y ∩ Z = {0} (README example)", async () => {
    const r = await main();
    expect(r.atLocal).toEqual(['hello from the remote system']);
    expect(r.atRemote).toEqual(['hello from this system']);
    // X = 0b11 | 2^29 | 2^32 = 0x1_2000_0003.
    expect(r.features.offered).toBe(0x1_2000_0003n);
    // Both ended with bit 0, EVENT_IDX and VERSION_1: 0x1_2000_0001.
    expect(r.features.local).toBe(0x1_2000_0001n);
    expect(r.features.remote).toBe(0x1_2000_0001n);
    expect(r.features.device).toBe(1n);
  });
});
