// `pnpm demo`: the main job. First the ring demo: two worker threads move a million
// 64-byte buffers through one split ring in a SharedArrayBuffer and print the rate.
// Then use case 1 of the RFC (issue 5): a PCIe root complex (virtio rpmsg) and an
// endpoint (vhost rpmsg) in two workers, in both modes, with the doorbell: the bring-up
// as the systems report it, Linux's rpmsg client sample, then 64-byte messages streamed
// for 2.5 s with the rate and the round-trip time.
// Then use case 2 (issue 6): HOST1 (virtio rpmsg) and HOST2 (vhost rpmsg) joined by the
// three-system NTB bridge (a bridge SoC running the NTB endpoint function), three workers:
// the scratchpad handshake, the client sample, a 64-byte stream with one link flap in the
// middle, and the sent / acknowledged / received counts.
import { main as ringDemo } from '../examples/ring-demo/src/main.js';
import { main as usecase1 } from '../examples/usecase1-pcie-rc-ep/src/main.js';
import { main as usecase2 } from '../examples/usecase2-ntb/src/main.js';

await ringDemo({ count: 1_000_000, verify: 'seq', spinUs: 50 });
for (const mode of ['rfc', 'modern'] as const) {
  console.log('');
  await usecase1({ mode, doorbell: 'doorbell', platform: 'threads', streamMs: 2500, rttRounds: 2000 });
}
console.log('');
await usecase2({ backend: 'bridge', platform: 'threads', streamMs: 1000, flaps: 1 });
