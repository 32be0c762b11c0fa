// Baseline: the same two-worker stream over Node's MessageChannel (structured clone of a
// 64-byte Uint8Array per message), with a credit window so neither side runs away.
import { workerData, parentPort, type MessagePort } from 'node:worker_threads';

const { role, port, count, size, window } = workerData as { role: 'tx' | 'rx'; port: MessagePort; count: number; size: number; window: number };
const ACK_EVERY = 256;

if (role === 'rx') {
  let got = 0;
  port.on('message', (m: Uint8Array) => {
    if (m.length !== size) throw new Error('bad size');
    got++;
    if (got % ACK_EVERY === 0 || got === count) port.postMessage(got);
    if (got === count) parentPort!.postMessage('done');
  });
} else {
  parentPort!.once('message', () => {
    const buf = new Uint8Array(size);
    let sent = 0;
    let acked = 0;
    const t0 = performance.now();
    const pump = (): void => {
      while (sent < count && sent - acked < window) {
        buf[0] = sent & 0xff;
        port.postMessage(buf);
        sent++;
      }
    };
    port.on('message', (n: number) => {
      acked = n;
      if (acked === count) {
        parentPort!.postMessage({ ms: performance.now() - t0 });
        port.close();
        return;
      }
      pump();
    });
    pump();
  });
}
