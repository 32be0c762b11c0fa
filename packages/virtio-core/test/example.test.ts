import { describe, expect, it, vi } from 'vitest';
import { main } from '../examples/basic.js';

describe('examples/basic.ts', () => {
  it('main() binds the driver and echoes a buffer through the fake transport', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await main()).toBe('hello, virtio');
      // Status 15 = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK; features
      // 2^28 + 2^29 + 2^32 = 0x130000000 (INDIRECT_DESC, EVENT_IDX, VERSION_1).
      expect(log).toHaveBeenCalledWith('virtio0: status 0xf, features 0x130000000, echoed "hello, virtio"');
    } finally {
      log.mockRestore();
    }
  });
});
