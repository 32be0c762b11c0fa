import { isVringError, type Virtqueue } from '@x/vring';
import { VIRTIO_DEV_ANY_ID, type VirtioBuffer, type VirtioDevice, type VirtioDeviceId, type VirtioDriver } from '@x/virtio-core';
import { RpmsgBus, type RpmsgBusOptions } from './bus.js';
import { RpmsgVirtqueueTransport } from './ring-transport.js';
import type { RpmsgVirtproc } from './virtproc.js';
import { RPMSG_BUF_SIZE, RPMSG_HDR, RPMSG_NUM_BUFS, VIRTIO_ID_RPMSG, VIRTIO_RPMSG_F } from './wire.js';

/** Options of {@link VirtioRpmsgBus}. @public */
export interface VirtioRpmsgBusOptions extends RpmsgBusOptions {
  /** Bytes per buffer, header included. Default 512 (Linux `MAX_RPMSG_BUF_SIZE`). */
  bufSize?: number;
  /** Buffers per direction, at most the queue size. Default 256 (Linux: min(vring size, 256)). */
  numBufs?: number;
  /** Queue size asked of the transport. Default: the device's maximum. */
  queueSize?: number;
  /** Feature bits offered: VIRTIO_RPMSG_F.NS and the RFC's .AS. Default both. */
  features?: readonly number[];
}

interface Link {
  virtproc: RpmsgVirtproc | undefined;
  transport: RpmsgVirtqueueTransport | undefined;
  buffer: VirtioBuffer | undefined;
}

/**
 * The virtio (driver-role) rpmsg bus, Linux `drivers/rpmsg/virtio_rpmsg_bus.c` as a
 * `@x/virtio-core` {@link @x/virtio-core#VirtioDriver} for device id 7: vq0 ("input")
 * receives, vq1 ("output") sends; one buffer block of 2 × numBufs × bufSize taken from
 * the transport's `allocBuffer` when it has one (RFC patch 13) or core's DMA pool,
 * every RX buffer posted at probe; RX drained with callbacks off and re-checked (RFC
 * patch 8). Each probed device becomes an {@link RpmsgVirtproc} (a `virtproc` event).
 *
 * Register it on a `VirtioBus` with `bus.registerDriver(rpmsgBus)`.
 *
 * @public
 */
export class VirtioRpmsgBus extends RpmsgBus implements VirtioDriver {
  /** {@inheritDoc @x/virtio-core#VirtioDriver.name} */
  readonly name = 'virtio_rpmsg_bus';
  /** {@inheritDoc @x/virtio-core#VirtioDriver.idTable} */
  readonly idTable: readonly VirtioDeviceId[] = [{ device: VIRTIO_ID_RPMSG, vendor: VIRTIO_DEV_ANY_ID }];
  /** {@inheritDoc @x/virtio-core#VirtioDriver.featureTable} */
  readonly featureTable: readonly number[];
  /** Bytes per buffer. */
  readonly bufSize: number;
  /** Buffers per direction asked for (the queue size may lower it). */
  readonly numBufs: number;
  readonly #queueSize: number | undefined;
  readonly #links = new Map<VirtioDevice, Link>();

  /** A bus to register on a `VirtioBus`. */
  constructor(options: VirtioRpmsgBusOptions = {}) {
    super(options);
    const bufSize = options.bufSize ?? RPMSG_BUF_SIZE;
    if (typeof bufSize !== 'number' || !Number.isInteger(bufSize) || bufSize <= RPMSG_HDR.SIZE || bufSize > RPMSG_HDR.SIZE + 0xffff) {
      throw new RangeError(`bufSize must be an integer in 17..${RPMSG_HDR.SIZE + 0xffff}, got ${bufSize}`);
    }
    const numBufs = options.numBufs ?? RPMSG_NUM_BUFS;
    if (typeof numBufs !== 'number' || !Number.isInteger(numBufs) || numBufs < 1 || numBufs > 32768) {
      throw new RangeError(`numBufs must be an integer in 1..32768, got ${numBufs}`);
    }
    const features = options.features ?? [VIRTIO_RPMSG_F.NS, VIRTIO_RPMSG_F.AS];
    for (const f of features) {
      if (f !== VIRTIO_RPMSG_F.NS && f !== VIRTIO_RPMSG_F.AS) throw new RangeError(`features: ${f} is not an rpmsg feature bit (0 NS, 1 AS)`);
    }
    this.bufSize = bufSize;
    this.numBufs = numBufs;
    this.featureTable = [...features];
    this.#queueSize = options.queueSize;
  }

  /** The rpmsg core of a probed device, if any. */
  virtprocOf(dev: VirtioDevice): RpmsgVirtproc | undefined {
    return this.#links.get(dev)?.virtproc;
  }

  /**
   * The `probe` hook of `VirtioDriver`.
   *
   * Linux `rpmsg_probe`: find the two queues, allocate and post the buffers, create the
   * core (with the NS endpoint when F_NS was negotiated), set DRIVER_OK, then kick vq0.
   */
  async probe(dev: VirtioDevice): Promise<void> {
    const link: Link = { virtproc: undefined, transport: undefined, buffer: undefined };
    this.#links.set(dev, link);
    try {
      const size = this.#queueSize === undefined ? {} : { size: this.#queueSize };
      const [rvq, svq] = (await dev.findVqs<number>([
        { name: 'input', ...size, callback: () => link.transport?.rxDone() },
        { name: 'output', ...size, callback: () => link.transport?.txDone() },
      ])) as [Virtqueue<number>, Virtqueue<number>];
      // Linux: min(vring size, MAX_RPMSG_NUM_BUFS / 2) per direction.
      const numRx = Math.min(this.numBufs, rvq.num);
      const numTx = Math.min(this.numBufs, svq.num);
      const buffer = await dev.allocBuffer((numRx + numTx) * this.bufSize);
      link.buffer = buffer;
      let features = 0;
      for (const bit of [VIRTIO_RPMSG_F.NS, VIRTIO_RPMSG_F.AS]) if (dev.hasFeature(bit)) features |= 1 << bit;
      const transport = new RpmsgVirtqueueTransport({
        rvq,
        svq,
        bufferBase: buffer.addr,
        bufferView: buffer.view,
        bufSize: this.bufSize,
        numRxBufs: numRx,
        numTxBufs: numTx,
        features,
      });
      link.transport = transport;
      link.virtproc = this.openVirtproc(transport, dev.name, 'driver');
      await dev.ready();
      // "tell the remote processor it can start sending messages"
      transport.start();
    } catch (e) {
      // Core sets FAILED and releases the queues and buffers of a failed probe.
      this.#links.delete(dev);
      if (link.virtproc !== undefined) this.closeVirtproc(link.virtproc);
      throw e;
    }
  }

  /**
   * The `remove` hook of `VirtioDriver`.
   *
   * Linux `rpmsg_remove`: the channels go away (without messages: the device is being
   * reset), the device is reset, the buffers freed and the queues deleted.
   */
  async remove(dev: VirtioDevice): Promise<void> {
    const link = this.#links.get(dev);
    if (link === undefined) return;
    await this.#teardown(dev, link);
  }

  async #teardown(dev: VirtioDevice, link: Link): Promise<void> {
    this.#links.delete(dev);
    // A queue the transport broke (VringError BROKEN: a link down, a surprise removal,
    // a doorbell that could not ring; Linux virtio_break_device) means the link was
    // lost, not closed in order: pending sends fail with LINK_DOWN and the cause.
    const lost = dev.vqs?.find((vq) => isVringError(vq.brokenBy, 'BROKEN'))?.brokenBy;
    // The device stops using the rings and buffers first (Linux virtio_reset_device).
    await dev.reset();
    if (link.virtproc !== undefined) this.closeVirtproc(link.virtproc, lost === undefined ? undefined : { linkDown: lost.cause ?? lost });
    link.virtproc = undefined;
    link.transport = undefined;
    if (link.buffer !== undefined) await dev.freeBuffer(link.buffer);
    link.buffer = undefined;
    if (dev.vqs !== undefined) await dev.delVqs();
  }
}
