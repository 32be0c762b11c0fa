import type { VirtioBuffer } from '@x/virtio-core';
import type { Virtqueue } from '@x/vring';
import { NTB_DEF_PEER_IDX, NTB_VIRTIO_SPAD, type NtbVirtio } from '@x/transport-ntb';

/** A used buffer as {@link NtbVirtioPeer} returns it (the shape of vhost-core's `VhostPeerUsedBuffer`). @public */
export interface NtbPeerUsedBuffer {
  /** The length the device wrote into the used element. */
  readonly len: number;
  /** For a device-writable buffer: the first `len` bytes; otherwise empty. */
  readonly data: Uint8Array;
}

/**
 * HOST1's side reduced to what `describeVhostTransportConformance` of
 * `@x/vhost-core/testing` drives (it implements that suite's `VhostTransportPeer`):
 * every action goes through an `NtbVirtio`'s session ops — scratchpads, commands,
 * the window's rings and pool, doorbells — never to the vhost device's objects.
 *
 * @public
 */
export class NtbVirtioPeer {
  readonly #virtio: NtbVirtio;
  readonly #settle: () => Promise<void>;
  readonly #timeoutMs: number;
  readonly #bufs = new Map<number, VirtioBuffer>();

  /**
   * @param virtio - HOST1's client (started, without a virtio bus)
   * @param settle - waits until both hosts are quiet
   * @param timeoutMs - how long an action waits for the session
   */
  constructor(virtio: NtbVirtio, settle: () => Promise<void>, timeoutMs = 5000) {
    this.#virtio = virtio;
    this.#settle = settle;
    this.#timeoutMs = timeoutMs;
  }

  async #ops(): Promise<NonNullable<NtbVirtio['ops']>> {
    await this.#virtio.ready({ timeoutMs: this.#timeoutMs });
    return this.#virtio.ops!;
  }

  #vq(index: number): Virtqueue<VirtioBuffer> {
    const vq = this.#virtio.vqs[index];
    if (vq === undefined) throw new RangeError(`queue ${index} is not active`);
    return vq as Virtqueue<VirtioBuffer>;
  }

  /** Reads the device status. */
  async getStatus(): Promise<number> {
    return (await this.#ops()).getStatus();
  }

  /** Writes the status (SET_STATUS) and reads it back. */
  async setStatus(status: number): Promise<number> {
    const ops = await this.#ops();
    await ops.setStatus(status);
    return ops.getStatus();
  }

  /** RESET, and forgets rings and buffers. */
  async reset(): Promise<void> {
    const ops = await this.#ops();
    await ops.reset();
    await ops.delVqs();
    for (const b of this.#bufs.values()) await ops.freeBuffer?.(b);
    this.#bufs.clear();
  }

  /** The features the device published (spads 3/4). */
  async readDeviceFeatures(): Promise<bigint> {
    return (await this.#ops()).getFeatures();
  }

  /** Driver features into spads 5/6, then FINALIZE_FEATURES. */
  async writeDriverFeatures(features: bigint): Promise<void> {
    await (await this.#ops()).finalizeFeatures(features);
  }

  /** VHOST_QUEUE_NUM_BUFFERS(index). */
  async queueSize(index: number): Promise<number> {
    await this.#ops();
    return this.#virtio.dev.peerSpadRead(NTB_DEF_PEER_IDX, NTB_VIRTIO_SPAD.VHOST_QUEUE_BASE + index);
  }

  /** Builds queue `index` in the window (`ntb_virtio_find_vq`). */
  async activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void> {
    await this.#ops();
    this.#virtio.findVq(index, { name: `q${index}` }, { eventIdx: options.eventIdx, indirect: false });
  }

  /** The ring's bytes. */
  readRing(index: number): Uint8Array {
    const vq = this.#vq(index);
    const l = vq.layout;
    const end = l.used + 6 + 8 * l.num;
    const out = new Uint8Array(end - l.desc);
    vq.memory.read(l.desc, out);
    return out;
  }

  #alloc(len: number): VirtioBuffer {
    const ops = this.#virtio.ops!;
    const b = ops.allocBuffer!(len) as VirtioBuffer;
    this.#bufs.set(b.addr, b);
    return b;
  }

  #free(b: VirtioBuffer): void {
    this.#bufs.delete(b.addr);
    void this.#virtio.ops?.freeBuffer?.(b);
  }

  /** A device-readable buffer holding `data`. */
  addOutbuf(index: number, data: Uint8Array): boolean {
    const vq = this.#vq(index);
    const b = this.#alloc(Math.max(1, data.length));
    b.view.set(data);
    if (vq.addOutbuf(b.addr, data.length, b)) return true;
    this.#free(b);
    return false;
  }

  /** A device-writable buffer of `len` bytes. */
  addInbuf(index: number, len: number): boolean {
    const vq = this.#vq(index);
    const b = this.#alloc(len);
    if (vq.addInbuf(b.addr, len, b)) return true;
    this.#free(b);
    return false;
  }

  /** Publishes, notifies when asked, and lets both hosts run. */
  async kick(index: number): Promise<void> {
    this.#vq(index).kick();
    await this.#settle();
  }

  /** The next used buffer. */
  getUsed(index: number): NtbPeerUsedBuffer | undefined {
    const vq = this.#vq(index);
    const b = vq.getBuf();
    if (b === undefined) return undefined;
    const len = vq.lastLen;
    const data = b.view.slice(0, len);
    this.#free(b);
    return { len, data };
  }

  /** Used-buffer interrupts queue `index` received. */
  interrupts(index: number): number {
    return this.#vq(index).stats.interrupts;
  }

  /** Window memory the device reaches. */
  alloc(len: number): number {
    return this.#alloc(len).addr;
  }

  /** HOST1's CPU writes its memory. */
  writeMemory(addr: number, data: Uint8Array): void {
    this.#virtio.dev.memory.write(addr, data);
  }

  /** HOST1's CPU reads its memory. */
  readMemory(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.#virtio.dev.memory.read(addr, out);
    return out;
  }

  /** The first address past the window. */
  get unreachableAddress(): number {
    const w = this.#virtio.window;
    if (w === undefined) throw new RangeError('no session');
    return w.addr + w.size;
  }

  /** Waits until both hosts are quiet. */
  settle(): Promise<void> {
    return this.#settle();
  }
}
