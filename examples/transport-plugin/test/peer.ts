// The far end the vhost conformance suite wants: the RC's driver reduced to raw
// actions, reaching the EP only through the BAR, the RC memory and the doorbells.
import { layoutSpan, type Virtqueue } from '@x/vring';
import type { VhostPeerUsedBuffer, VhostTransportPeer } from '@x/vhost-core/testing';
import { CMD, type BarLink } from '../src/bar.js';
import { openRc, type RcTransport } from '../src/rc.js';

interface Q {
  readonly vq: Virtqueue<number>;
  readonly slots: number;
  readonly free: number[];
  readonly writable: Uint8Array;
}

export class RcPeer implements VhostTransportPeer {
  readonly unreachableAddress: number;
  #queues: Array<Q | undefined> = [];
  readonly #irqs = new Array<number>(8).fill(0);
  #next: number;

  private constructor(
    readonly rc: RcTransport,
    readonly bufferSize: number,
  ) {
    this.unreachableAddress = rc.link.rcBase + rc.link.memory.byteLength;
    this.#next = rc.link.rcBase + 512 * 1024; // above the ring area
  }

  static async open(link: BarLink, bufferSize: number): Promise<RcPeer> {
    return new RcPeer(await openRc(link, { requireQueues: false }), bufferSize);
  }

  close(): Promise<void> {
    return this.rc.close();
  }
  settle(): Promise<void> {
    return this.rc.settle();
  }
  async getStatus(): Promise<number> {
    return this.rc.ops.getStatus();
  }
  async setStatus(status: number): Promise<number> {
    await this.rc.ops.setStatus(status);
    return this.rc.ops.getStatus();
  }
  async reset(): Promise<void> {
    await this.rc.ops.reset();
    await this.rc.ops.delVqs();
    this.#queues = [];
  }
  async readDeviceFeatures(): Promise<bigint> {
    return this.rc.ops.getFeatures();
  }
  async writeDriverFeatures(features: bigint): Promise<void> {
    await this.rc.ops.finalizeFeatures(features);
  }
  async queueSize(index: number): Promise<number> {
    return index >= 0 && index < 8 ? this.rc.numBuffers(index) : 0;
  }
  alloc(len: number): number {
    const addr = Math.ceil(this.#next / 16) * 16;
    if (addr + len > this.unreachableAddress) throw new RangeError('peer memory exhausted');
    this.#next = addr + len;
    return addr;
  }
  async activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void> {
    const vq = await this.rc.setupVq<number>(index, { name: `q${index}`, callback: () => void this.#irqs[index]!++ }, { eventIdx: options.eventIdx, indirect: false });
    this.#queues[index] = { vq, slots: this.alloc(vq.num * this.bufferSize), free: Array.from({ length: vq.num }, (_, i) => vq.num - 1 - i), writable: new Uint8Array(vq.num) };
  }
  #q(index: number): Q {
    const q = this.#queues[index];
    if (q === undefined) throw new RangeError(`queue ${index} is not active`);
    return q;
  }
  readRing(index: number): Uint8Array {
    const { start, end } = layoutSpan(this.#q(index).vq.layout);
    return this.readMemory(start, end - start);
  }
  addOutbuf(index: number, data: Uint8Array): boolean {
    const q = this.#q(index);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    this.writeMemory(q.slots + slot * this.bufferSize, data);
    if (!q.vq.addOutbuf(q.slots + slot * this.bufferSize, data.length, slot)) return q.free.push(slot) < 0;
    q.writable[slot] = 0;
    return true;
  }
  addInbuf(index: number, len: number): boolean {
    const q = this.#q(index);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    if (!q.vq.addInbuf(q.slots + slot * this.bufferSize, len, slot)) return q.free.push(slot) < 0;
    q.writable[slot] = 1;
    return true;
  }
  async kick(index: number): Promise<void> {
    this.#q(index).vq.kick();
    await this.rc.settle();
  }
  getUsed(index: number): VhostPeerUsedBuffer | undefined {
    const q = this.#q(index);
    const slot = q.vq.getBuf();
    if (slot === undefined) return undefined;
    const len = q.vq.lastLen;
    const data = q.writable[slot] === 1 ? this.readMemory(q.slots + slot * this.bufferSize, len) : new Uint8Array(0);
    q.free.push(slot);
    return { len, data };
  }
  interrupts(index: number): number {
    return this.#irqs[index] ?? 0;
  }
  writeMemory(addr: number, data: Uint8Array): void {
    this.rc.memory.write(addr, data);
  }
  readMemory(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.rc.memory.read(addr, out);
    return out;
  }
  /** An unknown device command, to check the EP answers ERROR instead of staying silent. */
  unknownCommand(): Promise<boolean> {
    return this.rc.command(CMD.RESET + 1);
  }
}
