import { describe, expect, it } from 'vitest';
import { main } from '../examples/basic.js';

describe('examples/basic.ts', () => {
  it('RFC patches 3, 5, 6: a configuration file links the transport, the echo client answers, unlink unregisters', async () => {
    const r = await main(['hello', 'vhost']);
    expect(r.device).toBe('vhost0');
    expect(r.queueSizes).toEqual([16, 16]);
    // Feature bit 0 (upper case) was offered and accepted.
    expect(r.replies).toEqual(['HELLO', 'VHOST']);
    expect(r.registeredAfterUnlink).toBe(false);
    expect(r.config).toEqual({
      vhost: {
        'vhost-client': {
          echo: { 'ffffffff:0000002a': { queue_size: 16, buffer_count: 0, buffer_size: 512, features: '0x1' } },
        },
        'vhost-transport': {
          fake0: { 'ffffffff:0000002a': { $link: '/vhost/vhost-client/echo/ffffffff:0000002a' } },
        },
      },
    });
  });
});
