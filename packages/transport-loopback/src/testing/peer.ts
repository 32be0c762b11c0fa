import { layoutSpan, type Virtqueue } from '@x/vring';
import type { VirtioBuffer } from '@x/virtio-core';
import type { VhostPeerUsedBuffer, VhostTransportPeer } from '@x/vhost-core/testing';
import { openVirtio, type LoopbackLink, type LoopbackVirtioOptions, type LoopbackVirtioTransport } from '@x/transport-loopback';

/** Options of {@link LoopbackVhostPeer.open}. @public */
export interface LoopbackVhostPeerOptions extends Omit<LoopbackVirtioOptions, 'requireDeviceId' | 'name'> {
  /** Bytes of each buffer slot. Default 2048. */
  readonly bufferSize?: number;
}

interface PeerQueue {
  readonly vq: Virtqueue<number>;
  readonly slots: VirtioBuffer;
  readonly free: number[];
  readonly writable: Uint8Array;
}

/**
 * The far end of a loopback link for `describeVhostTransportConformance`
 * (`@x/vhost-core/testing`): a raw virtio-mmio driver, without `@x/virtio-core`'s bus,
 * that reaches the device only through the link — the register block (each write
 * acknowledged), the memory region and the doorbell page. It builds its rings with
 * `LoopbackVirtioTransport.setupVq` and keeps one buffer
 * slot per ring entry.
 *
 * @public
 */
export class LoopbackVhostPeer implements VhostTransportPeer {
  /** The driver side of the link this peer drives. */
  readonly transport: LoopbackVirtioTransport;
  /** Bytes of each buffer slot. */
  readonly bufferSize: number;
  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.unreachableAddress} */
  readonly unreachableAddress: number;
  #queues: Array<PeerQueue | undefined> = [];
  readonly #irqs: number[];
  readonly #allocs: VirtioBuffer[] = [];

  private constructor(transport: LoopbackVirtioTransport, bufferSize: number) {
    this.transport = transport;
    this.bufferSize = bufferSize;
    this.unreachableAddress = transport.link.driverBase + transport.link.memory.byteLength;
    this.#irqs = new Array<number>(transport.link.maxQueues).fill(0);
  }

  /**
   * Attaches a peer to the driver side of `link`. It does not wait for a `DeviceID`: the
   * conformance suite registers the device (and its driver creates the queues) later.
   */
  static async open(link: LoopbackLink, options: LoopbackVhostPeerOptions = {}): Promise<LoopbackVhostPeer> {
    const bufferSize = options.bufferSize ?? 2048;
    if (!Number.isInteger(bufferSize) || bufferSize < 1 || bufferSize > 1 << 20) {
      throw new RangeError(`options.bufferSize must be an integer in 1..2^20, got ${bufferSize}`);
    }
    const transport = await openVirtio(link, { ...options, requireDeviceId: false });
    return new LoopbackVhostPeer(transport, bufferSize);
  }

  /** Detaches the peer from the link. */
  close(): Promise<void> {
    return this.transport.close();
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.settle} */
  settle(): Promise<void> {
    return this.transport.settle();
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.getStatus} */
  async getStatus(): Promise<number> {
    return this.transport.ops.getStatus();
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.setStatus} */
  async setStatus(status: number): Promise<number> {
    await this.transport.ops.setStatus(status);
    return this.transport.ops.getStatus();
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.reset} */
  async reset(): Promise<void> {
    await this.transport.ops.reset();
    await this.transport.ops.delVqs();
    for (const q of this.#queues) if (q !== undefined) this.transport.freeBuffer(q.slots);
    this.#queues = [];
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.readDeviceFeatures} */
  async readDeviceFeatures(): Promise<bigint> {
    return this.transport.ops.getFeatures();
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.writeDriverFeatures} */
  async writeDriverFeatures(features: bigint): Promise<void> {
    await this.transport.ops.finalizeFeatures(features);
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.queueSize} */
  async queueSize(index: number): Promise<number> {
    if (!Number.isInteger(index) || index < 0 || index >= this.transport.link.maxQueues) return 0;
    return this.transport.queueNumMax(index);
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.activateQueue} */
  async activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void> {
    const num = await this.queueSize(index);
    const vq = await this.transport.setupVq<number>(
      index,
      { name: `peer${index}`, ...(num > 0 ? { size: num } : {}), callback: () => void this.#irqs[index]!++ },
      { eventIdx: options.eventIdx, indirect: false },
    );
    const slots = this.transport.allocBuffer(vq.num * this.bufferSize);
    this.#queues[index] = {
      vq,
      slots,
      free: Array.from({ length: vq.num }, (_, i) => vq.num - 1 - i),
      writable: new Uint8Array(vq.num),
    };
  }

  #queue(index: number): PeerQueue {
    const q = this.#queues[index];
    if (q === undefined) throw new RangeError(`index: queue ${index} is not active on the peer`);
    return q;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.readRing} */
  readRing(index: number): Uint8Array {
    const { start, end } = layoutSpan(this.#queue(index).vq.layout);
    return this.readMemory(start, end - start);
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.addOutbuf} */
  addOutbuf(index: number, data: Uint8Array): boolean {
    const q = this.#queue(index);
    if (data.length > this.bufferSize) throw new RangeError(`data is longer than a buffer (${this.bufferSize})`);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    const addr = q.slots.addr + slot * this.bufferSize;
    this.transport.memory.write(addr, data);
    if (!q.vq.addOutbuf(addr, data.length, slot)) {
      q.free.push(slot);
      return false;
    }
    q.writable[slot] = 0;
    return true;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.addInbuf} */
  addInbuf(index: number, len: number): boolean {
    const q = this.#queue(index);
    if (!(Number.isInteger(len) && len >= 0 && len <= this.bufferSize)) throw new RangeError(`len must be an integer in 0..${this.bufferSize}`);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    if (!q.vq.addInbuf(q.slots.addr + slot * this.bufferSize, len, slot)) {
      q.free.push(slot);
      return false;
    }
    q.writable[slot] = 1;
    return true;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.kick} */
  async kick(index: number): Promise<void> {
    this.#queue(index).vq.kick();
    await this.transport.settle();
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.getUsed} */
  getUsed(index: number): VhostPeerUsedBuffer | undefined {
    const q = this.#queue(index);
    const slot = q.vq.getBuf();
    if (slot === undefined) return undefined;
    const len = q.vq.lastLen;
    const data = q.writable[slot] === 1 ? this.readMemory(q.slots.addr + slot * this.bufferSize, len) : new Uint8Array(0);
    q.free.push(slot);
    return { len, data };
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.interrupts} */
  interrupts(index: number): number {
    return this.#irqs[index] ?? 0;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.alloc} */
  alloc(len: number): number {
    const b = this.transport.allocBuffer(len);
    this.#allocs.push(b);
    return b.addr;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.writeMemory} */
  writeMemory(addr: number, data: Uint8Array): void {
    this.transport.memory.write(addr, data);
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.readMemory} */
  readMemory(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.transport.memory.read(addr, out);
    return out;
  }
}
