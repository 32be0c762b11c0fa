// The postMessage baseline: a stream of `size`-byte Uint8Arrays over a MessagePort
// (structured clone: one copy per message), with a credit window so the sender cannot
// run away. Used by bench/postmessage-worker.ts and by the persistent workers of
// bench/ring-worker.ts.
import type { MessagePort } from 'node:worker_threads';

/** The receiver acks every ACK_EVERY messages (and the last). */
export const ACK_EVERY = 256;

/** Credit window for a payload size: 4096 messages, at most 16 MiB in flight. */
export function pmWindow(size: number): number {
  return Math.max(64, Math.min(4096, Math.floor((16 << 20) / size)));
}

/** Receives `count` messages of `size` bytes, checking length and sequence; resolves when done. */
export function pmReceive(port: MessagePort, count: number, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    port.on('message', (m: Uint8Array) => {
      if (m.length !== size || m[0] !== (got & 0xff)) {
        reject(new Error(`postMessage: message ${got} has ${m.length} bytes, first byte ${m[0]}`));
        port.close();
        return;
      }
      got++;
      if (got % ACK_EVERY === 0 || got === count) port.postMessage(got);
      // The sender closes the channel after the last ack.
      if (got === count) resolve();
    });
  });
}

/** Sends `count` messages of `size` bytes; resolves with the milliseconds until the last ack. */
export function pmSend(port: MessagePort, count: number, size: number, window = pmWindow(size)): Promise<number> {
  return new Promise((resolve) => {
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
        const ms = performance.now() - t0;
        port.close();
        resolve(ms);
        return;
      }
      pump();
    });
    pump();
  });
}
