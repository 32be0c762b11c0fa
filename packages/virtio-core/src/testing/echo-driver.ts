import type { Virtqueue } from '@x/vring';
import { VIRTIO_F, type VirtioBuffer, type VirtioDevice, type VirtioDeviceId, type VirtioDriver } from '@x/virtio-core';

/** Size of every buffer the echo driver posts or sends (rpmsg's default, RFC §2.10). */
export const ECHO_BUF_SIZE = 512;

/** Byte `j` of test message `k`: a pattern that differs between neighbouring messages. */
export function echoByte(k: number, j: number): number {
  return (k * 7 + j * 13 + 1) & 0xff;
}

/** Message sizes 1…512 from a xorshift32 generator (deterministic per seed). */
export function echoSizes(count: number, seed: number): number[] {
  let x = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(1 + (x % ECHO_BUF_SIZE));
  }
  return out;
}

interface Run {
  readonly count: number;
  readonly sizes: number[];
  sent: number;
  received: number;
  done: (e?: unknown) => void;
}

/** Options of {@link EchoDriver}. */
export interface EchoDriverOptions {
  /** Drop EVENT_IDX in validate. */
  dropEventIdx?: boolean;
  /** Receive buffers to post (capped at the queue size). Default 32. */
  rxBuffers?: number;
  /** Send buffers (capped at the queue size). Default 16. */
  txBuffers?: number;
}

/**
 * A driver of the echo function of the conformance contract: queue 0 (rx) holds
 * device-writable buffers, queue 1 (tx) device-readable ones; every tx message comes
 * back in the next rx buffer. Written the way Linux virtio_rpmsg_bus sets up its queues:
 * post rx buffers, virtio_device_ready, then kick.
 */
export class EchoDriver implements VirtioDriver {
  readonly name: string;
  readonly idTable: readonly VirtioDeviceId[];
  readonly featureTable: readonly number[] = [];
  readonly dropEventIdx: boolean;
  readonly rxWanted: number;
  readonly txWanted: number;
  dev: VirtioDevice | undefined;
  rx: Virtqueue<VirtioBuffer> | undefined;
  tx: Virtqueue<VirtioBuffer> | undefined;
  /** Re-post rx buffers once received. */
  repost = true;
  /** Messages received in total. */
  received = 0;
  probed = 0;
  removed = 0;
  readonly #all: VirtioBuffer[] = [];
  #txFree: VirtioBuffer[] = [];
  #run: Run | undefined;
  /** A failure seen outside a round trip (a queue callback that threw). */
  error: unknown;

  constructor(name: string, id: VirtioDeviceId, options: EchoDriverOptions = {}) {
    this.name = name;
    this.idTable = [{ device: id.device, vendor: id.vendor }];
    this.dropEventIdx = options.dropEventIdx ?? false;
    this.rxWanted = options.rxBuffers ?? 32;
    this.txWanted = options.txBuffers ?? 16;
  }

  /** Rx buffers posted at probe. */
  get rxPosted(): number {
    return Math.min(this.rx?.num ?? 0, this.rxWanted);
  }

  validate(dev: VirtioDevice): void {
    if (this.dropEventIdx) dev.dropFeature(VIRTIO_F.EVENT_IDX);
  }

  async probe(dev: VirtioDevice): Promise<void> {
    this.dev = dev;
    const [rx, tx] = await dev.findVqs<VirtioBuffer>([
      { name: 'rx', callback: () => this.#onRx() },
      { name: 'tx', callback: () => this.#onTx() },
    ]);
    this.rx = rx;
    this.tx = tx;
    const nrx = Math.min(rx!.num, this.rxWanted);
    for (let i = 0; i < nrx; i++) {
      const b = await dev.allocBuffer(ECHO_BUF_SIZE);
      this.#all.push(b);
      if (!rx!.addInbuf(b.addr, ECHO_BUF_SIZE, b)) throw new Error('rx ring full while posting');
    }
    const ntx = Math.min(tx!.num, this.txWanted);
    for (let i = 0; i < ntx; i++) {
      const b = await dev.allocBuffer(ECHO_BUF_SIZE);
      this.#all.push(b);
      this.#txFree.push(b);
    }
    // Linux rpmsg_probe: buffers are published first, the device is told it may run,
    // and only then is the queue kicked (§3.1.1: no notification before DRIVER_OK).
    await dev.ready();
    rx!.kick();
    this.probed++;
  }

  async remove(dev: VirtioDevice): Promise<void> {
    this.#finish(new Error('driver removed during a round trip'));
    await dev.reset();
    while (this.rx?.detachUnusedBuf() !== undefined);
    while (this.tx?.detachUnusedBuf() !== undefined);
    await dev.delVqs();
    for (const b of this.#all.splice(0)) await dev.freeBuffer(b);
    this.#txFree = [];
    this.rx = undefined;
    this.tx = undefined;
    this.removed++;
  }

  /**
   * Sends `count` messages of random sizes (seeded) and checks that each comes back
   * intact and in order. Every third message goes as a two-segment chain (an indirect
   * table when INDIRECT_DESC is negotiated).
   */
  roundTrip(count: number, seed: number, timeoutMs: number): Promise<void> {
    if (this.#run !== undefined) return Promise.reject(new Error('a round trip is already running'));
    if (this.tx === undefined) return Promise.reject(new Error('not probed'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const r = this.#run;
        this.#finish(new Error(`echo round trip: ${r?.received ?? 0}/${count} received, ${r?.sent ?? 0} sent after ${timeoutMs} ms`));
      }, timeoutMs);
      (timer as { unref?: () => void }).unref?.();
      this.#run = {
        count,
        sizes: echoSizes(count, seed),
        sent: 0,
        received: 0,
        done: (e) => {
          clearTimeout(timer);
          if (e === undefined) resolve();
          else reject(e instanceof Error ? e : new Error(String(e)));
        },
      };
      try {
        this.#pump();
      } catch (e) {
        this.#finish(e);
      }
    });
  }

  /** Sends up to `count` messages without waiting for them (for reset-in-flight tests). */
  sendOnly(count: number): number {
    const tx = this.tx!;
    let sent = 0;
    while (sent < count && this.#txFree.length > 0) {
      const b = this.#txFree[this.#txFree.length - 1]!;
      b.view.fill(0x5a);
      if (!tx.addOutbuf(b.addr, ECHO_BUF_SIZE, b)) break;
      this.#txFree.pop();
      sent++;
    }
    tx.kick();
    return sent;
  }

  #finish(e?: unknown): void {
    const r = this.#run;
    if (r === undefined) return;
    this.#run = undefined;
    r.done(e);
  }

  #pump(): void {
    const r = this.#run;
    const tx = this.tx;
    if (r === undefined || tx === undefined) return;
    let added = false;
    while (r.sent < r.count && this.#txFree.length > 0) {
      const b = this.#txFree[this.#txFree.length - 1]!;
      const k = r.sent;
      const size = r.sizes[k]!;
      const v = b.view;
      for (let j = 0; j < size; j++) v[j] = echoByte(k, j);
      let ok: boolean;
      if (k % 3 === 2 && size >= 2) {
        const h = size >>> 1;
        ok = tx.addSgs([{ addr: b.addr, len: h }, { addr: b.addr + h, len: size - h }], 2, 0, b);
      } else {
        ok = tx.addOutbuf(b.addr, size, b);
      }
      if (!ok) break;
      this.#txFree.pop();
      r.sent++;
      added = true;
    }
    if (added) tx.kick();
  }

  #onRx(): void {
    const rx = this.rx;
    if (rx === undefined) return;
    try {
      for (;;) {
        const b = rx.getBuf();
        if (b === undefined) break;
        const len = rx.lastLen;
        this.received++;
        const r = this.#run;
        if (r !== undefined) {
          const k = r.received;
          const size = r.sizes[k]!;
          if (len !== size) throw new Error(`message ${k}: came back with ${len} bytes, ${size} sent`);
          const v = b.view;
          for (let j = 0; j < size; j++) {
            if (v[j] !== echoByte(k, j)) throw new Error(`message ${k}: byte ${j} is ${v[j]}, ${echoByte(k, j)} sent`);
          }
          r.received++;
        }
        if (this.repost && !rx.addInbuf(b.addr, ECHO_BUF_SIZE, b)) throw new Error('rx ring full while re-posting');
      }
      rx.kick();
      const r = this.#run;
      if (r !== undefined && r.received === r.count) this.#finish();
    } catch (e) {
      this.error = e;
      this.#finish(e);
    }
  }

  #onTx(): void {
    const tx = this.tx;
    if (tx === undefined) return;
    try {
      for (;;) {
        const b = tx.getBuf();
        if (b === undefined) break;
        this.#txFree.push(b);
      }
      this.#pump();
    } catch (e) {
      this.error = e;
      this.#finish(e);
    }
  }
}
