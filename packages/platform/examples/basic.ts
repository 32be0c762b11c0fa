// Two systems, each in its own worker thread, share one 4 KiB region and two doorbell
// lines. The producer sees the region at bus address 0x8000_0000, writes a message into
// it and rings `doorbell`; the consumer sees the same bytes at 0x1_0000_0000, reads the
// message when its doorbell handler runs, reports it to the owner and rings `ack`.
// Nothing but bytes and two counter words crosses between them.
//
// This file is both the example (main) and the systems' module (the default export).
// Run it: node --conditions=@x/source --import tsx packages/platform/examples/basic.ts
import { isMainThread } from 'node:worker_threads';
import { Topology, type SystemContext, type TopologyMode } from '@x/platform';

const MESSAGES = 3;
/** Offset of the message slot in the region: u32 length, then the bytes. */
const SLOT = 0x100;

export default async function system(ctx: SystemContext): Promise<void> {
  const shm = ctx.region('shm');
  const doorbell = ctx.line('doorbell');
  const ack = ctx.line('ack');
  const slot = shm.base + SLOT; // the same bytes, at this system's own address

  if (ctx.name === 'producer') {
    let seen = ack.count();
    for (let i = 1; i <= MESSAGES; i++) {
      const text = new TextEncoder().encode(`hello #${i}`);
      shm.write32(slot, text.length);
      shm.write(slot + 4, text);
      doorbell.ring(); // after the bytes: Atomics.add orders the writes before it
      seen = await ack.wait(seen, { timeoutMs: 5_000 });
    }
    return;
  }

  let handled = 0;
  await new Promise<void>((resolve) => {
    const listener = doorbell.listen(() => {
      const text = new Uint8Array(shm.read32(slot));
      shm.read(slot + 4, text);
      ctx.report(`${ctx.name} read "${new TextDecoder().decode(text)}" at 0x${slot.toString(16)}`);
      ack.ring();
      if (++handled === MESSAGES) {
        listener.close();
        resolve();
      }
    });
  });
}

/** Runs both systems (in two workers by default) and returns what the consumer read. */
export async function main(mode: TopologyMode = 'threads'): Promise<string[]> {
  const entry = new URL(import.meta.url);
  const lines = ['doorbell', 'ack'];
  const topology = new Topology({
    mode,
    regions: [{ name: 'shm', size: 4096, align: 4096 }],
    lines,
    systems: [
      { name: 'producer', entry, regions: [{ region: 'shm', base: 0x8000_0000 }], lines },
      { name: 'consumer', entry, regions: [{ region: 'shm', base: 0x1_0000_0000 }], lines },
    ],
  });
  try {
    await topology.start();
    for (const name of topology.systems) {
      const end = await topology.waitForEvent((e) => e.system === name && (e.type === 'exit' || e.type === 'crash'), { timeoutMs: 10_000 });
      if (end.type === 'crash') throw end.error;
    }
    const out = topology.events.flatMap((e) => (e.type === 'report' ? [String(e.data)] : []));
    out.push(`doorbell rang ${topology.lineStats('doorbell').rings} times, ack ${topology.lineStats('ack').rings} times`);
    return out;
  } finally {
    await topology.stop();
  }
}

if (isMainThread && import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (out) => console.log(out.join('\n')),
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
