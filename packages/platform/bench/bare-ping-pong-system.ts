// The baseline of doorbell.bench.ts: the same ping-pong with nothing but Atomics.wait /
// Atomics.notify on two words of a shared region (no lines, no statistics, no checks
// beyond the counter), in workers started by the same topology.
import type { SystemContext } from '@x/platform';

export interface BareConfig {
  readonly role: 'ping' | 'pong';
  readonly rounds: number;
}

export default function bare(ctx: SystemContext<BareConfig>): void {
  const { role, rounds } = ctx.config;
  const mem = ctx.region('words');
  const a = new Int32Array(mem.buffer, mem.byteOffset, 32);
  const PING = 0; // ping → pong
  const PONG = 16; // pong → ping, another cache line
  const [rx, tx] = role === 'ping' ? [PONG, PING] : [PING, PONG];
  let t0 = 0;
  for (let i = 0; i <= rounds; i++) {
    if (i === 1) t0 = performance.now();
    if (role === 'ping') {
      Atomics.add(a, tx, 1);
      Atomics.notify(a, tx);
    }
    while (Atomics.load(a, rx) === i) Atomics.wait(a, rx, i, 1000);
    if (role === 'pong') {
      Atomics.add(a, tx, 1);
      Atomics.notify(a, tx);
    }
  }
  if (role === 'ping') ctx.report({ ms: performance.now() - t0 });
}
