import { VIRTIO_DEV_ANY_ID, type VirtioBuffer, type VirtioDevice, type VirtioDeviceId, type VirtioDriver } from '@x/virtio-core';
import type { Virtqueue } from '@x/vring';
import { NtbError, isNtbError } from '@x/transport-ntb';

/** What {@link NtbEchoClient} counted. @public */
export interface NtbEchoClientCounts {
  /** Messages put on the tx queue. */
  readonly sent: number;
  /** Messages whose tx buffer came back used: the device took them. */
  readonly acked: number;
  /** Distinct messages whose echo arrived on rx. */
  readonly echoed: number;
  /** Echoes of a message that had already come back (must stay 0). */
  readonly duplicates: number;
  /** Sends that failed with a typed error (LINK_DOWN) because the link went down with them in flight. */
  readonly failed: number;
  /** Devices probed (one per link session). */
  readonly probes: number;
}

/** Options of {@link NtbEchoClient}. @public */
export interface NtbEchoClientOptions {
  /** Driver name. Default `ntb-echo-client`. */
  readonly name?: string;
  /** Ids it binds to. Default `{ vendor: ANY, device: 7 }`. */
  readonly id?: VirtioDeviceId;
  /** Bytes per message (≥ 8: a little-endian u32 sequence number, a u32 check word, padding). Default 64. */
  readonly size?: number;
  /** Receive buffers posted at probe. Default 64. */
  readonly rxBuffers?: number;
}

/** The magic in bytes 4..7 of each message. */
const CHECK = 0x4e54_4243;

interface Pending {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

interface Live {
  readonly dev: VirtioDevice;
  readonly rx: Virtqueue<VirtioBuffer>;
  readonly tx: Virtqueue<VirtioBuffer>;
  readonly free: VirtioBuffer[];
  readonly inflight: Map<number, Pending | undefined>;
}

/**
 * A virtio driver on rpmsg's two queues that streams numbered messages to an echo
 * device and keeps the books the link-flap tests check: sent, acknowledged (the tx
 * buffer came back used), echoed (the echo came back on rx), duplicates, and sends that
 * failed with `LINK_DOWN` when the link went down with them in flight. Bound again to
 * each new device after a link flap; a message is never re-sent.
 *
 * @public
 */
export class NtbEchoClient implements VirtioDriver {
  /** {@inheritDoc @x/virtio-core#VirtioDriver.name} */
  readonly name: string;
  /** {@inheritDoc @x/virtio-core#VirtioDriver.idTable} */
  readonly idTable: readonly VirtioDeviceId[];
  /** {@inheritDoc @x/virtio-core#VirtioDriver.featureTable} */
  readonly featureTable: readonly number[] = [];
  /** Message size. */
  readonly size: number;
  /** Sequence numbers acknowledged. */
  readonly acked = new Set<number>();
  /** Sequence numbers echoed. */
  readonly echoed = new Set<number>();
  /** Errors of the failed sends (typed NtbErrors). */
  readonly failures: unknown[] = [];
  readonly #rxCount: number;
  #live: Live | undefined;
  #sent = 0;
  #next = 0;
  #duplicates = 0;
  #probes = 0;
  #readyWaiters: Array<() => void> = [];
  #roomWaiters: Array<() => void> = [];

  constructor(options: NtbEchoClientOptions = {}) {
    this.name = options.name ?? 'ntb-echo-client';
    this.idTable = [options.id ?? { device: 7, vendor: VIRTIO_DEV_ANY_ID }];
    this.size = options.size ?? 64;
    if (!Number.isInteger(this.size) || this.size < 8) throw new RangeError(`options.size must be an integer ≥ 8, got ${this.size}`);
    this.#rxCount = options.rxBuffers ?? 64;
  }

  /** What it counted. */
  get counts(): NtbEchoClientCounts {
    return { sent: this.#sent, acked: this.acked.size, echoed: this.echoed.size, duplicates: this.#duplicates, failed: this.failures.length, probes: this.#probes };
  }

  /** The device it is bound to now. */
  get device(): VirtioDevice | undefined {
    return this.#live?.dev;
  }

  /** Messages in flight (sent, neither acknowledged nor failed). */
  get inflight(): number {
    return this.#live?.inflight.size ?? 0;
  }

  /** Resolves when a tx buffer may have come free, or the device changed (bound or removed). */
  whenRoom(): Promise<void> {
    return new Promise((r) => this.#roomWaiters.push(r));
  }

  /** Takes acknowledgements the device already returned (a driver polls its tx queue like this before sending). */
  reclaim(): void {
    const live = this.#live;
    if (live !== undefined && !live.tx.isBroken) this.#reclaim(live);
  }

  /** Resolves when bound to a live device. */
  ready(): Promise<void> {
    if (this.#live !== undefined) return Promise.resolve();
    return new Promise((r) => this.#readyWaiters.push(r));
  }

  /** {@inheritDoc @x/virtio-core#VirtioDriver.probe} */
  async probe(dev: VirtioDevice): Promise<void> {
    this.#probes++;
    const [rx, tx] = await dev.findVqs<VirtioBuffer>([
      { name: 'rx', callback: () => this.#onRx() },
      { name: 'tx', callback: () => this.#onTxUsed() },
    ]);
    const live: Live = { dev, rx: rx!, tx: tx!, free: [], inflight: new Map() };
    const n = Math.min(this.#rxCount, rx!.num);
    for (let i = 0; i < n; i++) {
      const b = await dev.allocBuffer(this.size);
      rx!.addInbuf(b.addr, b.size, b);
    }
    for (let i = 0; i < tx!.num; i++) live.free.push(await dev.allocBuffer(this.size));
    await dev.ready();
    rx!.kick();
    this.#live = live;
    for (const w of this.#readyWaiters.splice(0)) w();
    for (const w of this.#roomWaiters.splice(0)) w();
  }

  /** {@inheritDoc @x/virtio-core#VirtioDriver.remove} */
  async remove(dev: VirtioDevice): Promise<void> {
    const live = this.#live;
    if (live === undefined || live.dev !== dev) return;
    this.#live = undefined;
    // Sends still in flight fail with the link's error (a typed LINK_DOWN), never silently.
    const cause = live.tx.brokenBy?.cause;
    const error = isNtbError(cause) ? cause : new NtbError('LINK_DOWN', `${dev.name} was removed with the send in flight`, cause === undefined ? undefined : { cause });
    for (const p of live.inflight.values()) {
      this.failures.push(error);
      p?.reject(error);
    }
    live.inflight.clear();
    for (const w of this.#roomWaiters.splice(0)) w();
    await dev.reset();
    for (const vq of [live.rx, live.tx]) {
      let b: VirtioBuffer | undefined;
      while ((b = vq.detachUnusedBuf()) !== undefined) await dev.freeBuffer(b);
    }
    for (const b of live.free) await dev.freeBuffer(b);
    await dev.delVqs();
  }

  /**
   * Puts the next message on tx and kicks when the ring asks for it. False when no tx
   * buffer is free or no device is bound (nothing was sent).
   */
  trySend(onDone?: Pending['resolve'], onFail?: Pending['reject']): boolean {
    const live = this.#live;
    if (live === undefined || live.tx.isBroken) return false;
    this.#reclaim(live);
    const b = live.free.pop();
    if (b === undefined) return false;
    const seq = this.#next++;
    const dv = new DataView(b.view.buffer, b.view.byteOffset, b.view.byteLength);
    dv.setUint32(0, seq, true);
    dv.setUint32(4, CHECK, true);
    if (!live.tx.addOutbuf(b.addr, this.size, b)) {
      live.free.push(b);
      this.#next--;
      return false;
    }
    live.inflight.set(seq, onDone === undefined ? undefined : { seq, resolve: onDone, reject: onFail ?? (() => undefined) });
    this.#sent++;
    live.tx.kick();
    return true;
  }

  /**
   * Sends the next message and resolves when it is acknowledged (its tx buffer came
   * back used). Waits for a free buffer or a device; rejects with the typed error
   * (`LINK_DOWN`) when the link goes down with the message in flight.
   */
  async send(): Promise<void> {
    for (;;) {
      const p = new Promise<void>((resolve, reject) => {
        if (!this.trySend(resolve, reject)) reject(undefined);
      });
      try {
        await p;
        return;
      } catch (e) {
        if (e !== undefined) throw e;
      }
      await new Promise<void>((r) => this.#roomWaiters.push(r));
    }
  }

  #reclaim(live: Live): void {
    let b: VirtioBuffer | undefined;
    while ((b = live.tx.getBuf()) !== undefined) {
      const seq = new DataView(b.view.buffer, b.view.byteOffset, 4).getUint32(0, true);
      live.free.push(b);
      this.acked.add(seq);
      const p = live.inflight.get(seq);
      live.inflight.delete(seq);
      p?.resolve();
    }
  }

  #onTxUsed(): void {
    const live = this.#live;
    if (live === undefined || live.tx.isBroken) return;
    this.#reclaim(live);
    for (const w of this.#roomWaiters.splice(0)) w();
  }

  #onRx(): void {
    const live = this.#live;
    if (live === undefined || live.rx.isBroken) return;
    const rx = live.rx;
    for (;;) {
      rx.disableCb();
      let b: VirtioBuffer | undefined;
      while ((b = rx.getBuf()) !== undefined) {
        if (rx.lastLen >= 8) {
          const dv = new DataView(b.view.buffer, b.view.byteOffset, 8);
          if (dv.getUint32(4, true) === CHECK) {
            const seq = dv.getUint32(0, true);
            if (this.echoed.has(seq)) this.#duplicates++;
            else this.echoed.add(seq);
          }
        }
        rx.addInbuf(b.addr, b.size, b);
      }
      rx.kick();
      if (rx.enableCb()) return;
    }
  }
}
