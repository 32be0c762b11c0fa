import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { VirtioBus } from '@x/virtio-core';
import { attachVirtio, createLoopbackLink, isLoopbackError } from '@x/transport-loopback';
import { EchoClient, message, nextMessage, startWorker } from './helpers.js';

// The model rule across threads: the device side runs in a worker_thread; the only
// things the two threads share are the link's two SharedArrayBuffers (posted as
// workerData). Doorbells cross as Atomics.notify / Atomics.waitAsync.
describe('loopback link with the device side in a worker_thread', () => {
  it('virtio driver (main thread) ↔ vhost echo driver (worker): probe, 5,000 messages, reset, close', async () => {
    const link = createLoopbackLink({ deviceId: 7 });
    const worker = startWorker(new URL('./fixtures/vhost-echo-worker.ts', import.meta.url), { link });
    try {
      const ready = await nextMessage<{ type: string; threadId: number }>(worker, 'ready');
      expect(ready.threadId).not.toBe(threadId);
      const bus = new VirtioBus();
      const client = new EchoClient(7);
      await bus.registerDriver(client);
      const virtio = await attachVirtio(link, bus, { attachTimeoutMs: 20_000 });
      try {
        const dev = virtio.device!;
        expect(dev.driver).toBe(client);
        expect(dev.status).toBe(0x0f);
        expect(dev.features).toBe(0x1_3000_0000n);
        const msgs = Array.from({ length: 5000 }, (_, k) => message(k));
        const replies = await client.echo(msgs, 30_000);
        replies.forEach((r, k) => expect([...r]).toEqual([...msgs[k]!]));
        // A reset across threads, then a re-probe that works.
        await bus.unregisterDriver(client);
        const again = new EchoClient(7, { name: 'again' });
        await bus.registerDriver(again);
        const more = Array.from({ length: 200 }, (_, k) => message(k + 5000));
        const back = await again.echo(more, 30_000);
        back.forEach((r, k) => expect([...r]).toEqual([...more[k]!]));
      } finally {
        await virtio.close();
      }
      worker.postMessage({ type: 'close' });
      const closed = await nextMessage<{ type: string; echoed: number; resets: number; registerWrites: number }>(worker, 'closed');
      expect(closed.echoed).toBe(5200);
      expect(closed.resets).toBeGreaterThanOrEqual(2);
      expect(closed.registerWrites).toBeGreaterThan(0);
      // The device side is gone: a new driver finds no device, in bounded time.
      const late = await attachVirtio(link, new VirtioBus(), { attachTimeoutMs: 100 }).catch((e: unknown) => e);
      expect(isLoopbackError(late, 'TIMEOUT')).toBe(true);
    } finally {
      await worker.terminate();
    }
  });
});
