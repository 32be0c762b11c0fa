// Baseline of the rpmsg round trip: a ping-pong of one 64-byte Uint8Array (structured
// clone) between two workers over Node's MessageChannel, one message in flight.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

const { role, port, rounds, size } = workerData as { role: 'ping' | 'pong'; port: MessagePort; rounds: number; size: number };

if (role === 'pong') {
  port.on('message', (m: Uint8Array) => port.postMessage(m));
} else {
  parentPort!.once('message', () => {
    const buf = new Uint8Array(size);
    const warm = Math.max(100, rounds >> 2);
    let left = warm + rounds;
    let t0 = performance.now();
    port.on('message', () => {
      if (--left === rounds) t0 = performance.now();
      if (left > 0) {
        port.postMessage(buf);
        return;
      }
      parentPort!.postMessage({ usPerRoundTrip: ((performance.now() - t0) * 1000) / rounds });
      port.close();
    });
    port.postMessage(buf);
  });
}
