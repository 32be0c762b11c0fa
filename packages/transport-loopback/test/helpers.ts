import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Virtqueue } from '@x/vring';
import { VIRTIO_DEV_ANY_ID, VIRTIO_F, type VirtioBuffer, type VirtioDevice, type VirtioDriver } from '@x/virtio-core';

/** A virtio driver of the echo device: posts rx buffers, sends tx buffers, collects replies. */
export class EchoClient implements VirtioDriver {
  readonly name: string;
  readonly idTable;
  readonly featureTable: readonly number[] = [];
  dev: VirtioDevice | undefined;
  rx: Virtqueue<VirtioBuffer> | undefined;
  tx: Virtqueue<VirtioBuffer> | undefined;
  readonly replies: Uint8Array[] = [];
  probes = 0;
  removes = 0;
  error: unknown;
  #free: VirtioBuffer[] = [];
  #all: VirtioBuffer[] = [];
  readonly #dropEventIdx: boolean;

  constructor(deviceId: number, options: { name?: string; dropEventIdx?: boolean; rx?: number; tx?: number } = {}) {
    this.name = options.name ?? 'echo-client';
    this.idTable = [{ device: deviceId, vendor: VIRTIO_DEV_ANY_ID }];
    this.#dropEventIdx = options.dropEventIdx ?? false;
    this.rxCount = options.rx ?? 32;
    this.txCount = options.tx ?? 16;
  }
  readonly rxCount: number;
  readonly txCount: number;

  validate(dev: VirtioDevice): void {
    if (this.#dropEventIdx) dev.dropFeature(VIRTIO_F.EVENT_IDX);
  }

  async probe(dev: VirtioDevice): Promise<void> {
    this.dev = dev;
    const [rx, tx] = await dev.findVqs<VirtioBuffer>([
      { name: 'rx', callback: () => this.#onRx() },
      { name: 'tx', callback: () => this.#onTx() },
    ]);
    this.rx = rx;
    this.tx = tx;
    for (let i = 0; i < Math.min(this.rxCount, rx!.num); i++) {
      const b = await dev.allocBuffer(512);
      this.#all.push(b);
      rx!.addInbuf(b.addr, 512, b);
    }
    for (let i = 0; i < Math.min(this.txCount, tx!.num); i++) {
      const b = await dev.allocBuffer(512);
      this.#all.push(b);
      this.#free.push(b);
    }
    await dev.ready();
    rx!.kick();
    this.probes++;
  }

  async remove(dev: VirtioDevice): Promise<void> {
    await dev.reset();
    while (this.rx?.detachUnusedBuf() !== undefined);
    while (this.tx?.detachUnusedBuf() !== undefined);
    await dev.delVqs();
    for (const b of this.#all.splice(0)) await dev.freeBuffer(b);
    this.#free = [];
    this.rx = undefined;
    this.tx = undefined;
    this.removes++;
  }

  /** Queues one message; false when no tx buffer is free. */
  send(bytes: Uint8Array): boolean {
    const tx = this.tx;
    const b = this.#free.pop();
    if (tx === undefined || b === undefined) {
      if (b !== undefined) this.#free.push(b);
      return false;
    }
    b.view.set(bytes);
    if (!tx.addOutbuf(b.addr, bytes.length, b)) {
      this.#free.push(b);
      return false;
    }
    tx.kick();
    return true;
  }

  /** Sends every message (waiting for tx buffers as needed) and resolves with the replies. */
  async echo(messages: Uint8Array[], timeoutMs = 10_000): Promise<Uint8Array[]> {
    const start = this.replies.length;
    const deadline = Date.now() + timeoutMs;
    let sent = 0;
    while (this.replies.length - start < messages.length) {
      while (sent < messages.length && this.send(messages[sent]!)) sent++;
      if (this.error !== undefined) throw this.error;
      if (this.tx === undefined) throw new Error('echo: the driver was removed');
      if (Date.now() > deadline) throw new Error(`echo: ${this.replies.length - start}/${messages.length} replies, ${sent} sent after ${timeoutMs} ms`);
      await new Promise((r) => setImmediate(r));
    }
    return this.replies.slice(start, start + messages.length);
  }

  #onRx(): void {
    const rx = this.rx;
    if (rx === undefined) return;
    try {
      for (let b = rx.getBuf(); b !== undefined; b = rx.getBuf()) {
        this.replies.push(b.view.slice(0, rx.lastLen));
        rx.addInbuf(b.addr, 512, b);
      }
      rx.kick();
    } catch (e) {
      this.error = e;
    }
  }

  #onTx(): void {
    const tx = this.tx;
    if (tx === undefined) return;
    try {
      for (let b = tx.getBuf(); b !== undefined; b = tx.getBuf()) this.#free.push(b);
    } catch (e) {
      this.error = e;
    }
  }
}

/** Message `k`: a few bytes that differ between neighbours. */
export function message(k: number): Uint8Array {
  const n = 1 + ((k * 37) % 200);
  return Uint8Array.from({ length: n }, (_, i) => (k * 7 + i * 13 + 1) & 0xff);
}

// tsx's ESM API (its "import" export); require.resolve would give the CommonJS one.
const tsxApi = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;

/**
 * Starts a worker from a TypeScript file (after examples/ring-demo): Node 20 cannot run
 * .ts itself, so the worker registers tsx's loader first, then imports the file.
 */
export function startWorker(url: URL, workerData: unknown): Worker {
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); }).catch((e) => { process.nextTick(() => { throw e; }); });`;
  return new Worker(boot, { eval: true, workerData, execArgv: ['--conditions=@x/source'] });
}

/** Waits, bounded, for the next message of `type` from a worker. */
export function nextMessage<T extends { type: string }>(worker: Worker, type: string, timeoutMs = 20_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no "${type}" message from the worker within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: T): void => {
      if (m?.type !== type) return;
      cleanup();
      resolve(m);
    };
    const onError = (e: unknown): void => {
      cleanup();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}
