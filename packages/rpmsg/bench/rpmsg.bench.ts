// rpmsg throughput and round-trip time, 64-byte payloads (issue 4). Two links: the two
// buses (VirtioRpmsgBus ↔ VhostRpmsgBus) over @x/transport-loopback (a virtio-mmio
// register block and doorbells through Atomics, in one thread), and the package's own
// ring pair (RpmsgVirtqueueTransport ↔ RpmsgVringhTransport over one memory, doorbells
// as microtasks), which shows the cost of the rpmsg code alone.
import { setImmediate } from 'node:timers';
import type { RpmsgEndpoint, RpmsgVirtproc } from '@x/rpmsg';
import { createRpmsgPair } from '@x/rpmsg/testing';
import type { BenchContext, Row } from '../../../bench/harness.js';
import { loopbackPair } from '../test/loopback-link.js';

const PAYLOAD = new Uint8Array(64).fill(0x5a);

interface Ends {
  a: RpmsgVirtproc;
  b: RpmsgVirtproc;
  close(): Promise<void> | void;
}

async function ringPair(): Promise<Ends> {
  const p = createRpmsgPair();
  return { a: p.driver, b: p.device, close: () => p.close() };
}

async function buses(): Promise<Ends> {
  const p = await loopbackPair();
  const dev = await p.connect();
  let b = p.ep.virtprocOf(p.epDevice);
  while (b === undefined) {
    await new Promise<void>((r) => setImmediate(r));
    b = p.ep.virtprocOf(p.epDevice);
  }
  return { a: p.rc.virtprocOf(dev)!, b, close: () => p.close() };
}

/** One way, a → b: keeps the TX ring full with trySend, waits for a buffer when it is not. */
async function oneWay(make: () => Promise<Ends>, count: number): Promise<number> {
  const ends = await make();
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const rx = ends.b.createEndpoint({
    callback: () => {
      if (++received === count) done();
    },
  });
  const tx: RpmsgEndpoint = ends.a.createEndpoint({ dst: rx.addr });
  const t0 = performance.now();
  for (let sent = 0; sent < count; sent++) {
    try {
      tx.trySend(PAYLOAD);
    } catch {
      await tx.send(PAYLOAD);
    }
  }
  await finished;
  const rate = (count / (performance.now() - t0)) * 1000;
  await ends.close();
  return rate;
}

/** Ping-pong a → b → a, one message in flight; median round trip in µs. */
async function roundTrip(make: () => Promise<Ends>, count: number): Promise<number> {
  const ends = await make();
  const echo = ends.b.createEndpoint({ callback: (data, src, e) => e.trySendTo(data, src) });
  let wake: (() => void) | undefined;
  const ping = ends.a.createEndpoint({ dst: echo.addr, callback: () => wake?.() });
  const times = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const back = new Promise<void>((r) => (wake = r));
    const t0 = performance.now();
    ping.trySend(PAYLOAD);
    await back;
    times[i] = (performance.now() - t0) * 1000;
  }
  await ends.close();
  await new Promise<void>((r) => setImmediate(r));
  times.sort();
  return times[count >> 1]!;
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 50_000 : 500_000;
  const rtt = ctx.quick ? 2_000 : 20_000;
  return [
    await ctx.measure('rpmsg 64 B one way, VirtioRpmsgBus → VhostRpmsgBus (loopback, one thread)', 'msgs/s', () => oneWay(buses, n / 5)),
    await ctx.measure('rpmsg 64 B round trip, VirtioRpmsgBus ↔ VhostRpmsgBus (loopback, one thread)', 'µs', () => roundTrip(buses, rtt / 5)),
    await ctx.measure('rpmsg 64 B one way, ring pair (rpmsg code alone)', 'msgs/s', () => oneWay(ringPair, n)),
    await ctx.measure('rpmsg 64 B round trip, ring pair (rpmsg code alone)', 'µs', () => roundTrip(ringPair, rtt)),
  ];
}
