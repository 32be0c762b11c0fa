// Child process of bench/ring.bench.ts (run with --expose-gc): JS memory per
// Virtqueue + Vringh pair. Creates the shared ring memories first, then N pairs over them,
// and reports (heapUsed + arrayBuffers) growth / N after a full GC: the JS objects and the
// private typed arrays (shadow state, token table, views) of each pair, not the shared
// ring bytes. Prints one JSON object: { [num]: { heap: number[], arrayBuffers: number[] } }.
import { ArrayBufferMemory, Virtqueue, Vringh, vringLegacyLayout, vringSize } from '@x/vring';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const [sizesArg = '64,256,1024,4096', nArg = '1000', repsArg = '1'] = process.argv.slice(2);
const sizes = sizesArg.split(',').map(Number);
const n = Number(nArg);
const reps = Number(repsArg);

function settle(): NodeJS.MemoryUsage {
  gc!();
  gc!();
  return process.memoryUsage();
}

const out: Record<number, { heap: number[]; arrayBuffers: number[] }> = {};
for (const num of sizes) {
  out[num] = { heap: [], arrayBuffers: [] };
  for (let r = 0; r < reps; r++) {
    const bytes = vringSize(num, 4096);
    const memories = Array.from({ length: n }, () => new ArrayBufferMemory(new SharedArrayBuffer(bytes)));
    const layout = vringLegacyLayout(0, num, 4096);
    const pairs: Array<[Virtqueue<number>, Vringh]> = new Array(n);
    const m0 = settle();
    for (let i = 0; i < n; i++) {
      const memory = memories[i]!;
      pairs[i] = [new Virtqueue<number>({ memory, layout, eventIdx: true }), new Vringh({ memory, layout, eventIdx: true })];
    }
    const m1 = settle();
    out[num].heap.push((m1.heapUsed - m0.heapUsed) / n);
    out[num].arrayBuffers.push((m1.arrayBuffers - m0.arrayBuffers) / n);
    if (pairs.length !== n) throw new Error('unreachable'); // keeps the pairs alive until measured
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
