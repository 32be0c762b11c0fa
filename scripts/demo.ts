// `pnpm demo`: the main job. For now the ring demo: two worker threads move a million
// 64-byte buffers through one split ring in a SharedArrayBuffer and print the rate.
import { main as ringDemo } from '../examples/ring-demo/src/main.js';

await ringDemo({ count: 1_000_000, verify: 'seq', spinUs: 50 });
