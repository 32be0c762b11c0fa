import type { Virtqueue } from '@x/vring';
import { VIRTIO_DEV_ANY_ID, VIRTIO_F, type VirtioBuffer, type VirtioDevice, type VirtioDeviceId, type VirtioDriver } from '@x/virtio-core';

/** Options of {@link VirtioEchoClient}. @public */
export interface VirtioEchoClientOptions {
  /** Ids matched. Default: device 7 (rpmsg), any vendor. */
  readonly idTable?: readonly VirtioDeviceId[];
  /** Bytes per buffer. Default 512. */
  readonly bufferSize?: number;
  /** Queue size asked. Default: the device's. */
  readonly queueSize?: number;
  /** Drop EVENT_IDX in validate. Default false. */
  readonly dropEventIdx?: boolean;
}

/** What the client saw. @public */
export interface EchoClientCounts {
  /** Messages sent. */
  readonly sent: number;
  /** Messages received back. */
  readonly received: number;
  /** Messages received a second time (must stay 0). */
  readonly duplicates: number;
  /** Messages with wrong bytes. */
  readonly corrupt: number;
  /** Messages received after a later one. */
  readonly outOfOrder: number;
}

const HEADER = 8;

/**
 * A virtio driver for the echo function of {@link VhostEchoDriver}, on the root
 * complex: queue 0 (rx) holds device-writable buffers, queue 1 (tx) sends numbered
 * messages (u32 sequence, u32 tag, then a pattern). It checks every message that comes
 * back — once, intact, in order — across resets and re-probes (the sequence numbers and
 * the record of what was seen survive `remove` / `probe`).
 *
 * @public
 */
export class VirtioEchoClient implements VirtioDriver {
  /** Driver name. */
  readonly name: string;
  /** Ids matched. */
  readonly idTable: readonly VirtioDeviceId[];
  /** Device-specific feature bits accepted: none. */
  readonly featureTable: readonly number[] = [];
  /** Bytes per buffer. */
  readonly bufferSize: number;
  /** Times probed. */
  probed = 0;
  /** Configuration-change notifications received. */
  configChanges = 0;
  /** Errors seen in callbacks. */
  readonly errors: unknown[] = [];
  readonly #queueSize: number | undefined;
  readonly #dropEventIdx: boolean;
  readonly #seen = new Set<number>();
  #dev: VirtioDevice | undefined;
  #rx: Virtqueue<VirtioBuffer> | undefined;
  #tx: Virtqueue<VirtioBuffer> | undefined;
  #all: VirtioBuffer[] = [];
  #txFree: VirtioBuffer[] = [];
  #nextSeq = 0;
  #limit = 0;
  #size = 64;
  #lastSeq = -1;
  #sent = 0;
  #received = 0;
  #duplicates = 0;
  #corrupt = 0;
  #outOfOrder = 0;
  #waiters: Array<() => void> = [];

  constructor(name = 'virtio-echo', options: VirtioEchoClientOptions = {}) {
    this.name = name;
    this.idTable = options.idTable ?? [{ device: 7, vendor: VIRTIO_DEV_ANY_ID }];
    this.bufferSize = options.bufferSize ?? 512;
    this.#queueSize = options.queueSize;
    this.#dropEventIdx = options.dropEventIdx ?? false;
  }

  /** What the client saw so far. */
  get counts(): EchoClientCounts {
    return { sent: this.#sent, received: this.#received, duplicates: this.#duplicates, corrupt: this.#corrupt, outOfOrder: this.#outOfOrder };
  }

  /** The device while bound. */
  get device(): VirtioDevice | undefined {
    return this.#dev;
  }

  /** The receive queue while bound. */
  get rx(): Virtqueue<VirtioBuffer> | undefined {
    return this.#rx;
  }

  /** The send queue while bound. */
  get tx(): Virtqueue<VirtioBuffer> | undefined {
    return this.#tx;
  }

  /** Counts configuration changes (Linux `config_changed`). */
  configChanged(_dev: VirtioDevice): void {
    this.configChanges++;
  }

  /** Drops EVENT_IDX when asked. */
  validate(dev: VirtioDevice): void {
    if (this.#dropEventIdx) dev.dropFeature(VIRTIO_F.EVENT_IDX);
  }

  /** Linux rpmsg_probe order: queues, rx buffers posted, DRIVER_OK, then the rx kick. */
  async probe(dev: VirtioDevice): Promise<void> {
    this.#dev = dev;
    const size = this.#queueSize === undefined ? {} : { size: this.#queueSize };
    const [rx, tx] = await dev.findVqs<VirtioBuffer>([
      { name: 'rx', callback: () => this.#onRx(), ...size },
      { name: 'tx', callback: () => this.#onTx(), ...size },
    ]);
    this.#rx = rx;
    this.#tx = tx;
    for (let i = 0; i < rx!.num; i++) {
      const b = await dev.allocBuffer(this.bufferSize);
      this.#all.push(b);
      rx!.addInbuf(b.addr, this.bufferSize, b);
    }
    for (let i = 0; i < tx!.num; i++) {
      const b = await dev.allocBuffer(this.bufferSize);
      this.#all.push(b);
      this.#txFree.push(b);
    }
    await dev.ready();
    rx!.kick();
    this.probed++;
    this.#pump();
  }

  /** Resets the device, takes every buffer back, deletes the queues, frees the buffers. */
  async remove(dev: VirtioDevice): Promise<void> {
    await dev.reset();
    while (this.#rx?.detachUnusedBuf() !== undefined);
    while (this.#tx?.detachUnusedBuf() !== undefined);
    await dev.delVqs();
    for (const b of this.#all.splice(0)) await dev.freeBuffer(b);
    this.#txFree = [];
    this.#rx = undefined;
    this.#tx = undefined;
    this.#dev = undefined;
  }

  /** Streams messages of `size` bytes until `count` more were sent (they go as tx buffers come back). */
  start(count: number, size = 64): void {
    if (!(Number.isInteger(size) && size >= HEADER && size <= this.bufferSize)) throw new RangeError(`size must be in ${HEADER}..${this.bufferSize}`);
    this.#size = size;
    this.#limit = this.#nextSeq + count;
    this.#pump();
  }

  /** Resolves once `received` reaches `n`; rejects with the counts after `timeoutMs`. */
  waitReceived(n: number, timeoutMs: number): Promise<EchoClientCounts> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.#received < n) return false;
        clearTimeout(timer);
        resolve(this.counts);
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`echo: ${this.#received}/${n} received after ${timeoutMs} ms (${JSON.stringify(this.counts)})`));
      }, timeoutMs);
      const waiter = (): void => {
        if (check()) this.#waiters = this.#waiters.filter((w) => w !== waiter);
      };
      if (!check()) this.#waiters.push(waiter);
    });
  }

  /** Sends `count` messages and waits for all of them; resolves with the milliseconds it took. */
  async run(count: number, size = 64, timeoutMs = 60_000): Promise<number> {
    const t0 = performance.now();
    const target = this.#received + count;
    this.start(count, size);
    await this.waitReceived(target, timeoutMs);
    return performance.now() - t0;
  }

  /** `rounds` round trips with one message in flight; resolves with microseconds per round trip. */
  async pingPong(rounds: number, size = 64, timeoutMs = 60_000): Promise<number> {
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) {
      const target = this.#received + 1;
      this.start(1, size);
      await this.waitReceived(target, timeoutMs);
    }
    return ((performance.now() - t0) * 1000) / rounds;
  }

  #pump(): void {
    const tx = this.#tx;
    if (tx === undefined || this.#dev === undefined) return;
    let added = false;
    while (this.#nextSeq < this.#limit && this.#txFree.length > 0) {
      const b = this.#txFree[this.#txFree.length - 1]!;
      const seq = this.#nextSeq;
      const v = b.view;
      const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      dv.setUint32(0, seq, true);
      dv.setUint32(4, 0x45434830, true);
      for (let j = HEADER; j < this.#size; j++) v[j] = (seq * 7 + j) & 0xff;
      if (!tx.addOutbuf(b.addr, this.#size, b)) break;
      this.#txFree.pop();
      this.#nextSeq++;
      this.#sent++;
      added = true;
    }
    if (added) tx.kick();
  }

  #onRx(): void {
    const rx = this.#rx;
    if (rx === undefined) return;
    try {
      for (;;) {
        const b = rx.getBuf();
        if (b === undefined) break;
        const len = rx.lastLen;
        this.#check(b.view, len);
        rx.addInbuf(b.addr, this.bufferSize, b);
      }
      rx.kick();
    } catch (e) {
      this.errors.push(e);
    }
    for (const w of [...this.#waiters]) w();
  }

  #check(v: Uint8Array, len: number): void {
    this.#received++;
    if (len < HEADER) {
      this.#corrupt++;
      return;
    }
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const seq = dv.getUint32(0, true);
    if (dv.getUint32(4, true) !== 0x45434830) {
      this.#corrupt++;
      return;
    }
    if (this.#seen.has(seq)) this.#duplicates++;
    this.#seen.add(seq);
    if (seq < this.#lastSeq) this.#outOfOrder++;
    this.#lastSeq = Math.max(this.#lastSeq, seq);
    for (let j = HEADER; j < len; j++) {
      if (v[j] !== ((seq * 7 + j) & 0xff)) {
        this.#corrupt++;
        return;
      }
    }
  }

  #onTx(): void {
    const tx = this.#tx;
    if (tx === undefined) return;
    try {
      for (let b = tx.getBuf(); b !== undefined; b = tx.getBuf()) this.#txFree.push(b);
      this.#pump();
    } catch (e) {
      this.errors.push(e);
    }
  }
}
