import type { Virtqueue } from '@x/vring';
import { VIRTIO_DEV_ANY_ID, VIRTIO_F, type VirtioBuffer, type VirtioDevice, type VirtioDeviceId, type VirtioDriver } from '@x/virtio-core';

/** Size of each buffer a {@link QueuePairDriver} posts or sends (rpmsg's default). */
const BUF = 512;

/** Options of {@link QueuePairDriver}. @public */
export interface QueuePairDriverOptions {
  /** The device ID to bind (vendor ANY). Default 7 (rpmsg). */
  readonly deviceId?: number;
  /** Drop EVENT_IDX in validate (a ring feature only this side refuses). */
  readonly dropEventIdx?: boolean;
}

/**
 * A test double of a virtio driver for either side of a mediated device: 32 receive
 * buffers of 512 bytes on queue 0, 16 send buffers on queue 1 (rpmsg's vq0 "input" /
 * vq1 "output"), and a record of every message that arrives. Written like Linux
 * virtio_rpmsg_bus's probe: post the receive buffers, DRIVER_OK, then kick.
 *
 * @public
 */
export class QueuePairDriver implements VirtioDriver {
  /** {@inheritDoc @x/virtio-core#VirtioDriver.name} */
  readonly name: string;
  /** {@inheritDoc @x/virtio-core#VirtioDriver.idTable} */
  readonly idTable: readonly VirtioDeviceId[];
  /** {@inheritDoc @x/virtio-core#VirtioDriver.featureTable} */
  readonly featureTable: readonly number[];
  /** EVENT_IDX is dropped in validate. */
  readonly dropEventIdx: boolean;
  /** The bound device. */
  dev: VirtioDevice | undefined;
  /** Queue 0: receive buffers (device-writable). */
  rx: Virtqueue<VirtioBuffer> | undefined;
  /** Queue 1: send buffers (device-readable). */
  tx: Virtqueue<VirtioBuffer> | undefined;
  /** Every message received, in order. */
  readonly received: Uint8Array[] = [];
  /** Probes run. */
  probes = 0;
  /** Removes run. */
  removes = 0;
  /** The first error a queue callback hit. */
  error: unknown;
  #free: VirtioBuffer[] = [];
  #all: VirtioBuffer[] = [];

  constructor(name: string, featureTable: readonly number[] = [], options: QueuePairDriverOptions = {}) {
    this.name = name;
    this.idTable = [{ device: options.deviceId ?? 7, vendor: VIRTIO_DEV_ANY_ID }];
    this.featureTable = featureTable;
    this.dropEventIdx = options.dropEventIdx ?? false;
  }

  /** {@inheritDoc @x/virtio-core#VirtioDriver.validate} */
  validate(dev: VirtioDevice): void {
    if (this.dropEventIdx) dev.dropFeature(VIRTIO_F.EVENT_IDX);
  }

  /** {@inheritDoc @x/virtio-core#VirtioDriver.probe} */
  async probe(dev: VirtioDevice): Promise<void> {
    this.dev = dev;
    const [rx, tx] = await dev.findVqs<VirtioBuffer>([
      { name: 'rx', callback: () => this.#onRx() },
      { name: 'tx', callback: () => this.#onTx() },
    ]);
    this.rx = rx;
    this.tx = tx;
    for (let i = 0; i < Math.min(32, rx!.num); i++) {
      const b = await dev.allocBuffer(BUF);
      this.#all.push(b);
      rx!.addInbuf(b.addr, BUF, b);
    }
    for (let i = 0; i < Math.min(16, tx!.num); i++) {
      const b = await dev.allocBuffer(BUF);
      this.#all.push(b);
      this.#free.push(b);
    }
    await dev.ready();
    rx!.kick();
    this.probes++;
  }

  /** {@inheritDoc @x/virtio-core#VirtioDriver.remove} */
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

  /** Queues one message; false when no send buffer is free (or not bound). */
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

  #onRx(): void {
    const rx = this.rx;
    if (rx === undefined) return;
    try {
      for (let b = rx.getBuf(); b !== undefined; b = rx.getBuf()) {
        this.received.push(b.view.slice(0, rx.lastLen));
        rx.addInbuf(b.addr, BUF, b);
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

