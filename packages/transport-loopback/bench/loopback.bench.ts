// The loopback link in one thread: echo round trips virtio driver → vhost echo driver →
// back, and the cost of one acknowledged register write (post, device handles, ack).
import { VirtioBus } from '@x/virtio-core';
import { VhostBus } from '@x/vhost-core';
import { attachVhost, attachVirtio, createLoopbackLink } from '@x/transport-loopback';
import { VhostEchoDriver } from '@x/transport-loopback/testing';
import type { BenchContext, Row } from '../../../bench/harness.js';
import { EchoClient, message } from '../test/helpers.js';

async function pair(): Promise<{ client: EchoClient; close(): Promise<void>; queueNumMax(): Promise<number> }> {
  const link = createLoopbackLink({ deviceId: 7 });
  const vhostBus = new VhostBus();
  await vhostBus.registerDriver(new VhostEchoDriver({ deviceId: 7 }));
  const vhost = await attachVhost(link, vhostBus);
  const bus = new VirtioBus();
  const client = new EchoClient(7, { rx: 128, tx: 64 });
  await bus.registerDriver(client);
  const virtio = await attachVirtio(link, bus);
  return {
    client,
    queueNumMax: () => virtio.queueNumMax(0),
    async close() {
      await virtio.close();
      await vhost.close();
    },
  };
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 5_000 : 50_000;
  const msgs = Array.from({ length: 256 }, (_, k) => message(k));
  const echo = await ctx.measure('loopback echo round trip, one thread (virtio → vhost echo → virtio)', 'messages/s', async () => {
    const p = await pair();
    const t0 = performance.now();
    await p.client.echo(
      Array.from({ length: n }, (_, k) => msgs[k & 255]!),
      600_000,
    );
    const rate = (n / (performance.now() - t0)) * 1000;
    await p.close();
    return rate;
  });
  const writes = ctx.quick ? 2_000 : 20_000;
  const reg = await ctx.measure('acknowledged register write (QueueSel), one thread', 'writes/s', async () => {
    const p = await pair();
    const t0 = performance.now();
    for (let i = 0; i < writes; i++) await p.queueNumMax();
    const rate = (writes / (performance.now() - t0)) * 1000;
    await p.close();
    return rate;
  });
  return [echo, reg];
}
