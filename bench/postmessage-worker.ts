// Baseline: the same two-worker stream over Node's MessageChannel (structured clone of a
// `size`-byte Uint8Array per message), with a credit window so neither side runs away.
import { workerData, parentPort, type MessagePort } from 'node:worker_threads';
import { pmReceive, pmSend } from './ring-postmessage.js';

const { role, port, count, size, window } = workerData as { role: 'tx' | 'rx'; port: MessagePort; count: number; size: number; window: number };

if (role === 'rx') {
  void pmReceive(port, count, size).then(() => parentPort!.postMessage('done'));
} else {
  parentPort!.once('message', () => {
    void pmSend(port, count, size, window).then((ms) => parentPort!.postMessage({ ms }));
  });
}
