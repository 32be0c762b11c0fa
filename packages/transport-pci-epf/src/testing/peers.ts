import { Virtqueue, layoutSpan, vringLegacyLayout, vringModernLayout, vringSize, type SplitRingLayout } from '@x/vring';
import { VhostError } from '@x/vhost-core';
import type { VhostPeerUsedBuffer, VhostTransportPeer } from '@x/vhost-core/testing';
import {
  EPF_VHOST_CMD_STATUS,
  EPF_VHOST_DB,
  EPF_VHOST_EXT,
  EPF_VHOST_EXT_F,
  EPF_VHOST_HOST_CMD,
  EPF_VHOST_MAGIC,
  EPF_VHOST_MAX_VQS,
  EPF_VHOST_QUEUE_CMD,
  EPF_VHOST_QUEUE_REG,
  EPF_VHOST_Q_STATUS_ENABLE,
  EPF_VHOST_REG,
  EPF_VHOST_VRING_ALIGN,
  PciEpfError,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_COMMON,
  VIRTIO_PCI_ISR,
  readVirtioPciCaps,
  type PciBarMmio,
  type PciRootComplex,
  type VirtioPciCaps,
} from '@x/transport-pci-epf';

interface PeerQueue {
  readonly vq: Virtqueue<number>;
  readonly layout: SplitRingLayout;
  readonly slots: number;
  readonly free: number[];
  readonly writable: Uint8Array;
}

/**
 * The part of a `VhostTransportPeer` both host peers share: RC memory handed out
 * bump-wise, one buffer slot per ring entry, per-queue MSI-X vectors (vector 1 + n)
 * counted as the queue's interrupts, all through the model's root complex.
 *
 * @public
 */
export abstract class PciHostPeer implements VhostTransportPeer {
  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.unreachableAddress} */
  readonly unreachableAddress: number;
  /** Bytes of each buffer slot. */
  readonly bufferSize: number;
  /** The root complex the peer works through. */
  protected readonly rc: PciRootComplex;
  #queues: Array<PeerQueue | undefined> = [];
  readonly #irqs: number[] = new Array<number>(32).fill(0);
  readonly #settle: () => Promise<void>;
  #next: number;

  /** Enables the function's interrupts (MSI-X, MSI or INTx) and takes RC memory from its start. */
  constructor(rc: PciRootComplex, bufferSize: number, settle: () => Promise<void>) {
    this.rc = rc;
    this.bufferSize = bufferSize;
    this.#settle = settle;
    this.#next = rc.memory.base;
    this.unreachableAddress = rc.memory.base + rc.memory.size;
    const irq = rc.allocIrqVectors(9, ['msix', 'msi', 'intx']);
    if (irq.type === 'intx') {
      rc.requestIrq(0, () => this.onIntx());
    } else {
      for (let v = 1; v < irq.vectors; v++) {
        const q = v - 1;
        rc.requestIrq(v, () => {
          this.#irqs[q]!++;
          this.#queues[q]?.vq.interrupt();
        });
      }
    }
  }

  /** INTx: the ISR says a queue interrupt; every active queue is looked at. */
  protected onIntx(): void {
    if ((this.readIsr() & VIRTIO_PCI_ISR.QUEUE) === 0) return;
    this.#queues.forEach((q, i) => {
      if (q !== undefined && q.vq.moreUsed()) {
        this.#irqs[i]!++;
        q.vq.interrupt();
      }
    });
  }

  /** Reads (and so clears) the ISR. */
  protected abstract readIsr(): number;

  /** The vector register value for queue `index`. */
  protected vectorOf(index: number): number {
    return this.rc.irq?.type === 'intx' ? VIRTIO_MSI_NO_VECTOR : 1 + index;
  }

  /** Forgets every ring and buffer (after a reset). */
  protected forget(): void {
    this.#queues = [];
    this.#next = this.rc.memory.base;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.alloc} */
  alloc(len: number, align = 16): number {
    const addr = Math.ceil(this.#next / align) * align;
    if (addr + len > this.unreachableAddress) throw new RangeError(`peer memory exhausted: ${len} bytes asked`);
    this.#next = addr + len;
    return addr;
  }

  /** Sets up the driver half of queue `index` over a zeroed ring, with one buffer slot per entry. */
  protected makeQueue(index: number, layout: SplitRingLayout, eventIdx: boolean, notify: () => void): void {
    const num = layout.num;
    this.rc.memory.view(layoutSpan(layout).start, layoutSpan(layout).end - layoutSpan(layout).start).fill(0);
    const slots = this.alloc(num * this.bufferSize, 16);
    const vq = new Virtqueue<number>({ memory: this.rc.memory, layout, index, eventIdx, notify: () => void notify() });
    this.#queues[index] = { vq, layout, slots, free: Array.from({ length: num }, (_, i) => num - 1 - i), writable: new Uint8Array(num) };
  }

  /** Forgets queue `index` (the device refused it). */
  protected dropQueue(index: number): void {
    this.#queues[index] = undefined;
  }

  #queue(index: number): PeerQueue {
    const q = this.#queues[index];
    if (q === undefined) throw new VhostError('NOT_READY', `queue ${index} is not active on the peer`);
    return q;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.readRing} */
  readRing(index: number): Uint8Array {
    const { start, end } = layoutSpan(this.#queue(index).layout);
    const out = new Uint8Array(end - start);
    this.rc.memory.read(start, out);
    return out;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.addOutbuf} */
  addOutbuf(index: number, data: Uint8Array): boolean {
    const q = this.#queue(index);
    if (data.length > this.bufferSize) throw new RangeError(`data is longer than a buffer (${this.bufferSize})`);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    const addr = q.slots + slot * this.bufferSize;
    this.rc.memory.write(addr, data);
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
    if (!(len >= 0 && len <= this.bufferSize)) throw new RangeError(`len must be in 0..${this.bufferSize}`);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    if (!q.vq.addInbuf(q.slots + slot * this.bufferSize, len, slot)) {
      q.free.push(slot);
      return false;
    }
    q.writable[slot] = 1;
    return true;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.kick} */
  async kick(index: number): Promise<void> {
    this.#queue(index).vq.kick();
    await this.#settle();
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.getUsed} */
  getUsed(index: number): VhostPeerUsedBuffer | undefined {
    const q = this.#queue(index);
    const slot = q.vq.getBuf();
    if (slot === undefined) return undefined;
    const len = q.vq.lastLen;
    const data = new Uint8Array(q.writable[slot] === 1 ? len : 0);
    if (data.length > 0) this.rc.memory.read(q.slots + slot * this.bufferSize, data);
    q.free.push(slot);
    return { len, data };
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.interrupts} */
  interrupts(index: number): number {
    return this.#irqs[index] ?? 0;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.writeMemory} */
  writeMemory(addr: number, data: Uint8Array): void {
    this.rc.memory.write(addr, data);
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.readMemory} */
  readMemory(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.rc.memory.read(addr, out);
    return out;
  }

  /** {@inheritDoc @x/vhost-core#VhostTransportPeer.settle} */
  settle(): Promise<void> {
    return this.#settle();
  }

  /** Reads `device_status`. */
  abstract getStatus(): Promise<number>;
  /** Writes `device_status`; resolves with the status read back. */
  abstract setStatus(status: number): Promise<number>;
  /** Resets the device and forgets every ring. */
  abstract reset(): Promise<void>;
  /** Reads the 64 device feature bits. */
  abstract readDeviceFeatures(): Promise<bigint>;
  /** Writes the driver features and lets the device see them. */
  abstract writeDriverFeatures(features: bigint): Promise<void>;
  /** The size the device publishes for queue `index`; 0 when it does not exist. */
  abstract queueSize(index: number): Promise<number>;
  /** Builds a ring in RC memory and hands it to the device. */
  abstract activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void>;
}

function qreg(q: number, field: number): number {
  return EPF_VHOST_REG.QUEUE + EPF_VHOST_REG.QUEUE_STRIDE * q + field;
}

/**
 * The far end of a `PciEpfVhost` under the vhost conformance suite: the RFC's
 * root-complex driver reduced to raw register work through the model's root complex
 * (the block found by its signature, commands with the defined handshake, legacy rings
 * at alignment 4096 in RC memory). Nothing reaches the endpoint's objects.
 *
 * @public
 */
export class RfcHostPeer extends PciHostPeer {
  readonly #regs: PciBarMmio;
  readonly #db: PciBarMmio | undefined;
  readonly #dbOffset: number;
  readonly #timeoutMs: number;

  constructor(rc: PciRootComplex, options: { readonly bufferSize: number; readonly settle: () => Promise<void>; readonly commandTimeoutMs?: number }) {
    super(rc, options.bufferSize, options.settle);
    const info = rc.info ?? rc.enumerate();
    const bar = info.bars.find((b) => b.size >= EPF_VHOST_EXT.END && rc.bar(b.barno).read32(EPF_VHOST_EXT.MAGIC) === EPF_VHOST_MAGIC);
    if (bar === undefined) throw new PciEpfError('NOT_FOUND', 'no BAR holds the register block');
    this.#regs = rc.bar(bar.barno);
    const flags = this.#regs.read16(EPF_VHOST_EXT.FLAGS);
    this.#db = (flags & EPF_VHOST_EXT_F.DOORBELL) !== 0 ? rc.bar(this.#regs.read8(EPF_VHOST_EXT.DB_BAR)) : undefined;
    this.#dbOffset = this.#regs.read32(EPF_VHOST_EXT.DB_OFFSET);
    this.#timeoutMs = options.commandTimeoutMs ?? 5000;
  }

  /** Reads (and so clears) the ISR. */
  protected readIsr(): number {
    return this.#regs.read32(EPF_VHOST_REG.ISR);
  }

  async #command(cmdOff: number, statusOff: number, cmd: number, db: number): Promise<number> {
    const r = this.#regs;
    if (r.read8(cmdOff) !== 0) await this.rc.waitFor(() => r.read8(cmdOff) === 0, { timeoutMs: this.#timeoutMs, what: 'previous command' });
    r.write8(statusOff, EPF_VHOST_CMD_STATUS.NONE);
    r.write8(cmdOff, cmd);
    if (this.#db !== undefined) this.#db.write32(this.#dbOffset, db);
    await this.rc.waitFor(() => r.read8(statusOff) !== EPF_VHOST_CMD_STATUS.NONE, { timeoutMs: this.#timeoutMs, what: `command ${cmd}` });
    const st = r.read8(statusOff);
    r.write8(statusOff, EPF_VHOST_CMD_STATUS.NONE);
    return st;
  }

  #deviceCmd(cmd: number): Promise<number> {
    return this.#command(EPF_VHOST_REG.CMD, EPF_VHOST_REG.CMD_STATUS, cmd, EPF_VHOST_DB.DEVICE_CMD);
  }

  /** Reads `device_status`. */
  async getStatus(): Promise<number> {
    return this.#regs.read8(EPF_VHOST_REG.DEVICE_STATUS);
  }

  /** Writes `device_status` (and, RFC, sends SET_STATUS); resolves with the status read back. */
  async setStatus(status: number): Promise<number> {
    this.#regs.write8(EPF_VHOST_REG.DEVICE_STATUS, status);
    await this.#deviceCmd(EPF_VHOST_HOST_CMD.SET_STATUS);
    return this.#regs.read8(EPF_VHOST_REG.DEVICE_STATUS);
  }

  /** Resets the device (RFC: RESET command; modern: status 0, then read until 0) and forgets every ring. */
  async reset(): Promise<void> {
    await this.#deviceCmd(EPF_VHOST_HOST_CMD.RESET);
    this.forget();
  }

  /** Reads the 64 device feature bits. */
  async readDeviceFeatures(): Promise<bigint> {
    return (BigInt(this.#regs.read32(EPF_VHOST_REG.HOST_FEATURES + 4)) << 32n) | BigInt(this.#regs.read32(EPF_VHOST_REG.HOST_FEATURES));
  }

  /** Writes the driver features (RFC: then FINALIZE_FEATURES; modern: low then high word through the selector). */
  async writeDriverFeatures(features: bigint): Promise<void> {
    this.#regs.write32(EPF_VHOST_REG.GUEST_FEATURES, Number(features & 0xffff_ffffn));
    this.#regs.write32(EPF_VHOST_REG.GUEST_FEATURES + 4, Number((features >> 32n) & 0xffff_ffffn));
    await this.#deviceCmd(EPF_VHOST_HOST_CMD.FINALIZE_FEATURES);
  }

  /** The size the device publishes for queue `index`; 0 when it does not exist. */
  async queueSize(index: number): Promise<number> {
    if (!(index >= 0 && index < EPF_VHOST_MAX_VQS)) return 0;
    return this.#regs.read16(qreg(index, EPF_VHOST_QUEUE_REG.NUM_BUFFERS));
  }

  /** Builds a ring in RC memory and hands it to the device; rejects when the device refuses. */
  async activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void> {
    const num = await this.queueSize(index);
    if (num === 0) throw new VhostError('NOT_READY', `queue ${index} does not exist`);
    const r = this.#regs;
    if ((r.read16(qreg(index, EPF_VHOST_QUEUE_REG.STATUS)) & EPF_VHOST_Q_STATUS_ENABLE) !== 0) throw new VhostError('BUSY', `queue ${index} is already enabled`);
    const ring = this.alloc(vringSize(num, EPF_VHOST_VRING_ALIGN), EPF_VHOST_VRING_ALIGN);
    this.makeQueue(index, vringLegacyLayout(ring, num, EPF_VHOST_VRING_ALIGN), options.eventIdx, () => {
      if (this.#db !== undefined) this.#db.write32(this.#dbOffset, EPF_VHOST_DB.KICK + index);
      else r.write8(qreg(index, EPF_VHOST_QUEUE_REG.CMD), EPF_VHOST_QUEUE_CMD.NOTIFY);
    });
    r.write32(qreg(index, EPF_VHOST_QUEUE_REG.QUEUE_ADDR), ring % 0x1_0000_0000);
    r.write32(qreg(index, EPF_VHOST_QUEUE_REG.QUEUE_ADDR) + 4, Math.floor(ring / 0x1_0000_0000));
    const st = await this.#command(qreg(index, EPF_VHOST_QUEUE_REG.CMD), qreg(index, EPF_VHOST_QUEUE_REG.CMD_STATUS), EPF_VHOST_QUEUE_CMD.ACTIVATE, EPF_VHOST_DB.QUEUE_CMD);
    if (st !== EPF_VHOST_CMD_STATUS.OKAY) {
      this.dropQueue(index);
      throw new VhostError('RING_ERROR', `the device refused to activate queue ${index}`);
    }
    r.write16(qreg(index, EPF_VHOST_QUEUE_REG.MSIX_VECTOR), this.vectorOf(index));
  }
}

/**
 * The far end of a `PciEpfVirtioModern` under the vhost conformance suite: a
 * virtio-pci modern driver reduced to raw register work (`virtio_pci_common_cfg` through
 * the root complex, notifications written to `notify_off × multiplier`).
 *
 * @public
 */
export class ModernHostPeer extends PciHostPeer {
  readonly #caps: VirtioPciCaps;
  readonly #c: PciBarMmio;

  constructor(rc: PciRootComplex, options: { readonly bufferSize: number; readonly settle: () => Promise<void> }) {
    super(rc, options.bufferSize, options.settle);
    this.#caps = readVirtioPciCaps(rc);
    this.#c = rc.bar(this.#caps.common.bar);
  }

  /** Reads (and so clears) the ISR. */
  protected readIsr(): number {
    return this.rc.bar(this.#caps.isr.bar).read8(this.#caps.isr.offset);
  }

  #r(off: number, width: 1 | 2 | 4): Promise<number> {
    return this.#c.readAsync(this.#caps.common.offset + off, width);
  }

  #w(off: number, width: 1 | 2 | 4, v: number): Promise<void> {
    return this.#c.writeAsync(this.#caps.common.offset + off, width, v);
  }

  /** Reads `device_status`. */
  getStatus(): Promise<number> {
    return this.#r(VIRTIO_PCI_COMMON.STATUS, 1);
  }

  /** Writes `device_status` (and, RFC, sends SET_STATUS); resolves with the status read back. */
  async setStatus(status: number): Promise<number> {
    await this.#w(VIRTIO_PCI_COMMON.STATUS, 1, status);
    return this.#r(VIRTIO_PCI_COMMON.STATUS, 1);
  }

  /** Resets the device (RFC: RESET command; modern: status 0, then read until 0) and forgets every ring. */
  async reset(): Promise<void> {
    await this.#w(VIRTIO_PCI_COMMON.STATUS, 1, 0);
    for (let i = 0; (await this.#r(VIRTIO_PCI_COMMON.STATUS, 1)) !== 0; i++) {
      if (i > 1000) throw new VhostError('TIMEOUT', 'device_status did not read 0 after reset');
    }
    this.forget();
  }

  /** Reads the 64 device feature bits. */
  async readDeviceFeatures(): Promise<bigint> {
    const C = VIRTIO_PCI_COMMON;
    await this.#w(C.DFSELECT, 4, 0);
    const lo = await this.#r(C.DF, 4);
    await this.#w(C.DFSELECT, 4, 1);
    const hi = await this.#r(C.DF, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** Writes the driver features (RFC: then FINALIZE_FEATURES; modern: low then high word through the selector). */
  async writeDriverFeatures(features: bigint): Promise<void> {
    const C = VIRTIO_PCI_COMMON;
    await this.#w(C.GFSELECT, 4, 0);
    await this.#w(C.GF, 4, Number(features & 0xffff_ffffn));
    await this.#w(C.GFSELECT, 4, 1);
    await this.#w(C.GF, 4, Number((features >> 32n) & 0xffff_ffffn));
    // A read completes after every posted write before it: the device has seen them.
    await this.#r(C.GF, 4);
  }

  /** The size the device publishes for queue `index`; 0 when it does not exist. */
  async queueSize(index: number): Promise<number> {
    const C = VIRTIO_PCI_COMMON;
    if (index >= (await this.#r(C.NUMQ, 2))) return 0;
    await this.#w(C.Q_SELECT, 2, index);
    return this.#r(C.Q_SIZE, 2);
  }

  /** Builds a ring in RC memory and hands it to the device; rejects when the device refuses. */
  async activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void> {
    const C = VIRTIO_PCI_COMMON;
    const num = await this.queueSize(index);
    if (num === 0) throw new VhostError('NOT_READY', `queue ${index} does not exist`);
    if ((await this.#r(C.Q_ENABLE, 2)) !== 0) throw new VhostError('BUSY', `queue ${index} is already enabled`);
    const base = this.alloc(vringSize(num, 16) + 16, 4096);
    const layout = vringModernLayout(num, { desc: base });
    const notifyOff = this.#caps.notify.offset + (await this.#r(C.Q_NOFF, 2)) * this.#caps.notifyOffMultiplier;
    const nbar = this.rc.bar(this.#caps.notify.bar);
    this.makeQueue(index, layout, options.eventIdx, () => nbar.write16(notifyOff, index));
    for (const [lo, a] of [
      [C.Q_DESCLO, layout.desc],
      [C.Q_AVAILLO, layout.avail],
      [C.Q_USEDLO, layout.used],
    ] as const) {
      await this.#w(lo, 4, a % 0x1_0000_0000);
      await this.#w(lo + 4, 4, Math.floor(a / 0x1_0000_0000));
    }
    await this.#w(C.Q_MSIX, 2, this.vectorOf(index));
    await this.#w(C.Q_ENABLE, 2, 1);
    if ((await this.#r(C.Q_ENABLE, 2)) !== 1) {
      this.dropQueue(index);
      throw new VhostError('RING_ERROR', `the device refused to enable queue ${index}`);
    }
  }
}
