import { describe, expect, it } from 'vitest';
import { main } from '../examples/basic.js';

describe('examples/basic.ts', () => {
  it('a virtio driver and a vhost driver echo over a loopback link (README example)', async () => {
    const r = await main(['hello', 'loopback', 'virtio-mmio']);
    expect(r.replies).toEqual(['HELLO', 'LOOPBACK', 'VIRTIO-MMIO']);
    // Only VERSION_1 (bit 32) was offered, so only it was negotiated.
    expect(r.features).toBe(1n << 32n);
    expect(r.registerWrites).toBeGreaterThan(0);
  });
});
