import {
  ArrayBufferMemory,
  RegionMemory,
  VRING_LEGACY_ALIGN,
  Virtqueue,
  layoutSpan,
  vringLegacyLayout,
  type SplitRingLayout,
} from '@x/vring';
import {
  VHOST_NOTIFY,
  VhostDevice,
  VhostError,
  VhostVirtqueue,
  type VhostConfigFs,
  type VhostConfigOps,
  type VhostDeviceConfig,
  type VhostDeviceId,
  type VhostVqSpec,
} from '@x/vhost-core';
import { FakeLink } from './fake-link.js';
import type { VhostPeerUsedBuffer, VhostTransportPeer } from './harness.js';

/**
 * The fake's register block, modelled on the RFC's BAR block (rfc-protocol §2.1),
 * little-endian: offsets in bytes.
 */
const REG = {
  /** u64, device writes: features offered. */
  HOST_FEATURES: 0x00,
  /** u64, peer writes: features accepted. */
  GUEST_FEATURES: 0x08,
  /** u16, device writes: queues created. */
  NUM_QUEUES: 0x12,
  /** u8, peer writes (device may write): device status. */
  DEVICE_STATUS: 0x14,
  /** u8, peer writes: device command. */
  CMD: 0x1a,
  /** u8, device writes: command result. */
  CMD_STATUS: 0x1b,
  /** First queue block; each is 16 bytes. */
  QUEUE: 0x1c,
  QUEUE_STRIDE: 16,
  /** Inside a queue block: u8 command, u8 result, u16 status (bit 0 ENABLE), u16 size, u16 vector, u64 ring address. */
  Q_CMD: 0,
  Q_CMD_STATUS: 1,
  Q_STATUS: 2,
  Q_NUM: 4,
  Q_ADDR: 8,
} as const;
const CMD = { NONE: 0, SET_STATUS: 1, FINALIZE_FEATURES: 2, RESET: 3 } as const;
const QCMD = { NONE: 0, ACTIVATE: 1, DEACTIVATE: 2 } as const;
const CMD_STATUS = { NONE: 0, OKAY: 1, ERROR: 2 } as const;
const Q_ENABLE = 1;
/** Doorbell bit 0: a command was written; bit 1 + n: queue n was kicked. Interrupt bit 1 + n: queue n. */
const DOORBELL_CMD = 0;

/** Options of {@link FakeVhostTransport}. @public */
export interface FakeVhostTransportOptions {
  /** The transport's name for its device (and its `vhost-transport/<name>` item). Default `fake0`. */
  name?: string;
  /** Ids to register with (the configuration tree sets them when linked). */
  id?: VhostDeviceId;
  /** Device attributes. */
  config?: Partial<VhostDeviceConfig>;
  /** Most queues the register block has. Default 8 (the RFC's MAX_VQS). */
  maxQueues?: number;
  /** Peer bus address of the peer's memory. Default 0x4000_0000. */
  peerBase?: number;
  /** Bytes of peer memory. Default 4 MiB. */
  peerSize?: number;
  /** Device-local address where the window onto peer memory is mapped. Default 0x8_0000_0000. */
  windowBase?: number;
  /** Ring alignment both sides use (legacy contiguous rings, §2.7.2). Default 4096. */
  align?: number;
  /** Bytes of each peer buffer slot. Default 2048. */
  bufferSize?: number;
  /** When given, the transport adds its `vhost-transport/<name>` item, so linking registers the device. */
  configFs?: VhostConfigFs;
}

/**
 * A test double of a vhost transport, with the peer's virtio driver at the far end,
 * joined only by bytes: a register block (modelled on the RFC's BAR block), the peer's
 * memory (which the device reaches through a `RegionMemory` window at a
 * different address), doorbell lines and interrupt lines. The device side implements
 * `VhostConfigOps` over those bytes; {@link FakeVhostPeer} plays the
 * driver with `@x/vring`'s `Virtqueue` in its own memory. No object crosses between the
 * two halves.
 *
 * Doorbells and interrupts are delivered as queued tasks (only bit masks reach the
 * handlers); {@link FakeVhostTransport.settle} is the simulation's "let time pass until
 * the wires are quiet". A command's result is read back from the register block, as the
 * RFC's RC polls `cmd_status`, not taken from the device's handler. Commands answer ERROR for anything the device refuses, including
 * unknown commands (the RFC's endpoint only logged those, so the peer timed out).
 *
 * @public
 */
export class FakeVhostTransport {
  /** The transport's name for its device. */
  readonly name: string;
  /** The device this transport drives (register it, or link its configuration item). */
  readonly device: VhostDevice;
  /** The far end: the peer's virtio driver. */
  readonly peer: FakeVhostPeer;
  /** The device's window onto peer memory (peer bus addresses → device-local mapping). */
  readonly deviceMemory: RegionMemory;
  /** Ring alignment. */
  readonly align: number;
  /** The last error a queue command hit (ACTIVATE of a bad ring), for tests. */
  lastQueueError: unknown = undefined;
  readonly #regs: ArrayBufferMemory;
  readonly #link: FakeLink;
  readonly #maxQueues: number;
  #vqs: VhostVirtqueue[] = [];

  constructor(options: FakeVhostTransportOptions = {}) {
    this.name = options.name ?? 'fake0';
    this.#maxQueues = options.maxQueues ?? 8;
    if (!Number.isInteger(this.#maxQueues) || this.#maxQueues < 1 || this.#maxQueues > 30) {
      throw new RangeError(`options.maxQueues must be an integer in 1..30, got ${this.#maxQueues}`);
    }
    const peerBase = options.peerBase ?? 0x4000_0000;
    const peerSize = options.peerSize ?? 4 * 1024 * 1024;
    const windowBase = options.windowBase ?? 0x8_0000_0000;
    this.align = options.align ?? VRING_LEGACY_ALIGN;
    const regsBuffer = new ArrayBuffer(REG.QUEUE + REG.QUEUE_STRIDE * this.#maxQueues);
    const peerBuffer = new ArrayBuffer(peerSize);
    this.#link = new FakeLink();

    // Device side: its own mapping of the register block and a window onto peer memory.
    this.#regs = new ArrayBufferMemory(regsBuffer, { base: 0, name: 'fake register block (device)' });
    const local = new ArrayBufferMemory(peerBuffer, { base: windowBase, name: 'fake window (device-local)' });
    this.deviceMemory = new RegionMemory({ name: 'fake window onto peer memory' });
    this.deviceMemory.map({ busAddr: peerBase, size: peerSize, target: local, targetAddr: windowBase, name: 'peer memory' });
    this.device = new VhostDevice(this.#makeOps(), {
      parent: this.name,
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.config === undefined ? {} : { config: options.config }),
    });
    this.#link.onDoorbell = (bits) => this.#onDoorbell(bits);

    // Peer side: its own mappings of the same bytes.
    this.peer = new FakeVhostPeer({
      regs: regsBuffer,
      memory: peerBuffer,
      peerBase,
      maxQueues: this.#maxQueues,
      align: this.align,
      bufferSize: options.bufferSize ?? 2048,
      link: this.#link,
    });
    options.configFs?.addTransport(this.device, this.name);
  }

  /** Waits until every doorbell and interrupt was delivered and handled. */
  settle(): Promise<void> {
    return this.#link.settle();
  }

  /** Cuts the wires. */
  dispose(): void {
    this.#link.dispose();
  }

  #makeOps(): VhostConfigOps {
    const regs = this.#regs;
    return {
      createVqs: (specs: readonly (VhostVqSpec & { readonly size: number })[]) => {
        if (specs.length > this.#maxQueues) throw new RangeError(`specs: the register block has ${this.#maxQueues} queues, ${specs.length} asked`);
        const vqs = specs.map(
          (s, index) =>
            new VhostVirtqueue({
              device: this.device,
              index,
              num: s.size,
              name: s.name,
              ...(s.callback === undefined ? {} : { callback: s.callback }),
              notify: (vq) => this.#link.raiseInterrupt(1 + vq.index),
            }),
        );
        vqs.forEach((vq, i) => regs.write16(qreg(i, REG.Q_NUM), vq.num));
        regs.write16(REG.NUM_QUEUES, vqs.length);
        this.#vqs = vqs;
        return vqs;
      },
      delVqs: () => {
        for (let i = 0; i < this.#maxQueues; i++) {
          regs.write16(qreg(i, REG.Q_NUM), 0);
          regs.write16(qreg(i, REG.Q_STATUS), 0);
        }
        regs.write16(REG.NUM_QUEUES, 0);
        for (const vq of this.#vqs) vq.detach();
        this.#vqs = [];
      },
      read: (dst, peerAddr) => this.deviceMemory.read(peerAddr, dst),
      write: (peerAddr, src) => this.deviceMemory.write(peerAddr, src),
      setFeatures: (features) => {
        regs.write32(REG.HOST_FEATURES, Number(features & 0xffff_ffffn));
        regs.write32(REG.HOST_FEATURES + 4, Number(features >> 32n));
      },
      getStatus: () => regs.read8(REG.DEVICE_STATUS),
      setStatus: (status) => regs.write8(REG.DEVICE_STATUS, status),
    };
  }

  /** Device side of the doorbell lines: the bits tell what the peer rang. */
  async #onDoorbell(bits: number): Promise<void> {
    if ((bits & (1 << DOORBELL_CMD)) !== 0) await this.#commands();
    for (let q = 0; q < this.#vqs.length; q++) {
      if ((bits & (1 << (1 + q))) !== 0) this.#vqs[q]!.kicked();
    }
  }

  async #commands(): Promise<void> {
    const regs = this.#regs;
    const cmd = regs.read8(REG.CMD);
    if (cmd !== CMD.NONE) {
      regs.write8(REG.CMD, CMD.NONE);
      let err: VhostError | undefined;
      if (cmd === CMD.SET_STATUS) err = await this.device.handleEvent(VHOST_NOTIFY.SET_STATUS);
      else if (cmd === CMD.FINALIZE_FEATURES) {
        const f = (BigInt(regs.read32(REG.GUEST_FEATURES + 4)) << 32n) | BigInt(regs.read32(REG.GUEST_FEATURES));
        err = await this.device.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, f);
      } else if (cmd === CMD.RESET) {
        err = await this.device.handleEvent(VHOST_NOTIFY.RESET);
        // Core detached every ring; the registers say so too.
        for (let i = 0; i < this.#maxQueues; i++) regs.write16(qreg(i, REG.Q_STATUS), 0);
      } else err = new VhostError('NOT_SUPPORTED', `unknown command ${cmd}`);
      regs.write8(REG.CMD_STATUS, err === undefined ? CMD_STATUS.OKAY : CMD_STATUS.ERROR);
    }
    for (let q = 0; q < this.#maxQueues; q++) {
      const qc = regs.read8(qreg(q, REG.Q_CMD));
      if (qc === QCMD.NONE) continue;
      regs.write8(qreg(q, REG.Q_CMD), QCMD.NONE);
      const vq = this.#vqs[q];
      let ok = false;
      try {
        if (vq === undefined) throw new VhostError('NOT_READY', `queue ${q} does not exist`);
        if (qc === QCMD.ACTIVATE) {
          const hi = regs.read32(qreg(q, REG.Q_ADDR) + 4);
          if (hi > 0x1fffff) throw new VhostError('BUS_ERROR', `queue ${q}: ring address above 2^53`);
          const addr = hi * 0x1_0000_0000 + regs.read32(qreg(q, REG.Q_ADDR));
          vq.attach(this.deviceMemory, vringLegacyLayout(addr, vq.num, this.align));
          regs.write16(qreg(q, REG.Q_STATUS), Q_ENABLE);
          ok = true;
        } else if (qc === QCMD.DEACTIVATE) {
          vq.detach();
          regs.write16(qreg(q, REG.Q_STATUS), 0);
          ok = true;
        }
      } catch (e) {
        this.lastQueueError = e;
      }
      regs.write8(qreg(q, REG.Q_CMD_STATUS), ok ? CMD_STATUS.OKAY : CMD_STATUS.ERROR);
    }
  }
}

function qreg(q: number, field: number): number {
  return REG.QUEUE + REG.QUEUE_STRIDE * q + field;
}

interface PeerQueue {
  readonly vq: Virtqueue<number>;
  readonly layout: SplitRingLayout;
  readonly slots: number;
  readonly free: number[];
  readonly writable: Uint8Array;
}

/** What {@link FakeVhostPeer} is built from: the bytes it shares and the wires. @internal */
export interface FakeVhostPeerWiring {
  readonly regs: ArrayBuffer;
  readonly memory: ArrayBuffer;
  readonly peerBase: number;
  readonly maxQueues: number;
  readonly align: number;
  readonly bufferSize: number;
  readonly link: FakeLink;
}

/**
 * The far end of a {@link FakeVhostTransport}: the peer's virtio driver, reaching the
 * device only through the register block, its own memory and the doorbell lines. It
 * builds legacy rings with `@x/vring`'s `Virtqueue` and keeps one buffer slot per ring
 * entry.
 *
 * @public
 */
export class FakeVhostPeer implements VhostTransportPeer {
  /** The peer's memory, at its own bus addresses. */
  readonly memory: ArrayBufferMemory;
  /** Bytes of each buffer slot. */
  readonly bufferSize: number;
  /** {@inheritDoc VhostTransportPeer.unreachableAddress} */
  readonly unreachableAddress: number;
  readonly #regs: ArrayBufferMemory;
  readonly #link: FakeLink;
  readonly #maxQueues: number;
  readonly #align: number;
  readonly #base: number;
  #next: number;
  #queues: Array<PeerQueue | undefined> = [];
  readonly #irqs: number[];

  /** @internal */
  constructor(w: FakeVhostPeerWiring) {
    this.#regs = new ArrayBufferMemory(w.regs, { base: 0xfe00_0000, name: 'fake register block (peer)' });
    this.memory = new ArrayBufferMemory(w.memory, { base: w.peerBase, name: 'peer memory' });
    this.#link = w.link;
    this.#maxQueues = w.maxQueues;
    this.#align = w.align;
    this.bufferSize = w.bufferSize;
    this.#base = w.peerBase;
    this.#next = w.peerBase;
    this.unreachableAddress = w.peerBase + w.memory.byteLength;
    this.#irqs = new Array<number>(w.maxQueues).fill(0);
    w.link.onInterrupt = (bits) => this.#onInterrupt(bits);
  }

  #reg(off: number): number {
    return 0xfe00_0000 + off;
  }

  #onInterrupt(bits: number): void {
    for (let q = 0; q < this.#maxQueues; q++) {
      if ((bits & (1 << (1 + q))) === 0) continue;
      this.#irqs[q]!++;
      this.#queues[q]?.vq.interrupt();
    }
  }

  /** Writes a command, rings the command doorbell and waits for the device's answer. */
  async #command(cmd: number): Promise<boolean> {
    this.#regs.write8(this.#reg(REG.CMD), cmd);
    this.#link.ringDoorbell(DOORBELL_CMD);
    await this.#link.settle();
    const st = this.#regs.read8(this.#reg(REG.CMD_STATUS));
    this.#regs.write8(this.#reg(REG.CMD_STATUS), CMD_STATUS.NONE);
    if (st === CMD_STATUS.NONE) throw new VhostError('TIMEOUT', `the device did not answer command ${cmd}`);
    return st === CMD_STATUS.OKAY;
  }

  /** {@inheritDoc VhostTransportPeer.settle} */
  settle(): Promise<void> {
    return this.#link.settle();
  }

  /** {@inheritDoc VhostTransportPeer.getStatus} */
  async getStatus(): Promise<number> {
    return this.#regs.read8(this.#reg(REG.DEVICE_STATUS));
  }

  /** {@inheritDoc VhostTransportPeer.setStatus} */
  async setStatus(status: number): Promise<number> {
    this.#regs.write8(this.#reg(REG.DEVICE_STATUS), status);
    await this.#command(CMD.SET_STATUS);
    return this.#regs.read8(this.#reg(REG.DEVICE_STATUS));
  }

  /** {@inheritDoc VhostTransportPeer.reset} */
  async reset(): Promise<void> {
    await this.#command(CMD.RESET);
    this.#queues = [];
    this.#next = this.#base;
  }

  /** {@inheritDoc VhostTransportPeer.readDeviceFeatures} */
  async readDeviceFeatures(): Promise<bigint> {
    return (BigInt(this.#regs.read32(this.#reg(REG.HOST_FEATURES + 4))) << 32n) | BigInt(this.#regs.read32(this.#reg(REG.HOST_FEATURES)));
  }

  /** {@inheritDoc VhostTransportPeer.writeDriverFeatures} */
  async writeDriverFeatures(features: bigint): Promise<void> {
    this.#regs.write32(this.#reg(REG.GUEST_FEATURES), Number(features & 0xffff_ffffn));
    this.#regs.write32(this.#reg(REG.GUEST_FEATURES + 4), Number((features >> 32n) & 0xffff_ffffn));
    await this.#command(CMD.FINALIZE_FEATURES);
  }

  /** {@inheritDoc VhostTransportPeer.queueSize} */
  async queueSize(index: number): Promise<number> {
    if (!(index >= 0 && index < this.#maxQueues)) return 0;
    return this.#regs.read16(this.#reg(qreg(index, REG.Q_NUM)));
  }

  /** {@inheritDoc VhostTransportPeer.alloc} */
  alloc(len: number, align = 16): number {
    const addr = Math.ceil(this.#next / align) * align;
    if (addr + len > this.unreachableAddress) throw new RangeError(`peer memory exhausted: ${len} bytes asked`);
    this.#next = addr + len;
    return addr;
  }

  /** {@inheritDoc VhostTransportPeer.activateQueue} */
  async activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void> {
    const num = await this.queueSize(index);
    if (num === 0) throw new VhostError('NOT_READY', `queue ${index} does not exist`);
    // RFC bring-up step 6: a queue already enabled is an error.
    if ((this.#regs.read16(this.#reg(qreg(index, REG.Q_STATUS))) & Q_ENABLE) !== 0) {
      throw new VhostError('BUSY', `queue ${index} is already enabled`);
    }
    const ringAddr = this.alloc(layoutSpanSize(num, this.#align), this.#align);
    const layout = vringLegacyLayout(ringAddr, num, this.#align);
    const slots = this.alloc(num * this.bufferSize, 16);
    const vq = new Virtqueue<number>({
      memory: this.memory,
      layout,
      index,
      eventIdx: options.eventIdx,
      notify: () => this.#link.ringDoorbell(1 + index),
    });
    this.#queues[index] = { vq, layout, slots, free: Array.from({ length: num }, (_, i) => num - 1 - i), writable: new Uint8Array(num) };
    this.#regs.write32(this.#reg(qreg(index, REG.Q_ADDR)), ringAddr % 0x1_0000_0000);
    this.#regs.write32(this.#reg(qreg(index, REG.Q_ADDR) + 4), Math.floor(ringAddr / 0x1_0000_0000));
    this.#regs.write8(this.#reg(qreg(index, REG.Q_CMD)), QCMD.ACTIVATE);
    this.#link.ringDoorbell(DOORBELL_CMD);
    await this.#link.settle();
    const st = this.#regs.read8(this.#reg(qreg(index, REG.Q_CMD_STATUS)));
    this.#regs.write8(this.#reg(qreg(index, REG.Q_CMD_STATUS)), CMD_STATUS.NONE);
    if (st !== CMD_STATUS.OKAY) {
      this.#queues[index] = undefined;
      throw new VhostError(st === CMD_STATUS.NONE ? 'TIMEOUT' : 'RING_ERROR', `the device refused to activate queue ${index}`);
    }
  }

  /** Deactivates queue `index` (the RFC's teardown) and forgets its ring. */
  async deactivateQueue(index: number): Promise<void> {
    this.#regs.write8(this.#reg(qreg(index, REG.Q_CMD)), QCMD.DEACTIVATE);
    this.#link.ringDoorbell(DOORBELL_CMD);
    await this.#link.settle();
    this.#regs.write8(this.#reg(qreg(index, REG.Q_CMD_STATUS)), CMD_STATUS.NONE);
    this.#queues[index] = undefined;
  }

  /** The peer's ring of queue `index` (its `Virtqueue`), for tests that need more than the harness offers. */
  virtqueue(index: number): Virtqueue<number> | undefined {
    return this.#queues[index]?.vq;
  }

  #queue(index: number): PeerQueue {
    const q = this.#queues[index];
    if (q === undefined) throw new VhostError('NOT_READY', `queue ${index} is not active on the peer`);
    return q;
  }

  /** {@inheritDoc VhostTransportPeer.readRing} */
  readRing(index: number): Uint8Array {
    const q = this.#queue(index);
    const { start, end } = layoutSpan(q.layout);
    const out = new Uint8Array(end - start);
    this.memory.read(start, out);
    return out;
  }

  /** {@inheritDoc VhostTransportPeer.addOutbuf} */
  addOutbuf(index: number, data: Uint8Array): boolean {
    const q = this.#queue(index);
    if (data.length > this.bufferSize) throw new RangeError(`data is longer than a buffer (${this.bufferSize})`);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    const addr = q.slots + slot * this.bufferSize;
    this.memory.write(addr, data);
    if (!q.vq.addOutbuf(addr, data.length, slot)) {
      q.free.push(slot);
      return false;
    }
    q.writable[slot] = 0;
    return true;
  }

  /** {@inheritDoc VhostTransportPeer.addInbuf} */
  addInbuf(index: number, len: number): boolean {
    const q = this.#queue(index);
    if (!(len >= 0 && len <= this.bufferSize)) throw new RangeError(`len must be in 0..${this.bufferSize}`);
    const slot = q.free.pop();
    if (slot === undefined) return false;
    const addr = q.slots + slot * this.bufferSize;
    if (!q.vq.addInbuf(addr, len, slot)) {
      q.free.push(slot);
      return false;
    }
    q.writable[slot] = 1;
    return true;
  }

  /** {@inheritDoc VhostTransportPeer.kick} */
  async kick(index: number): Promise<void> {
    this.#queue(index).vq.kick();
    await this.#link.settle();
  }

  /** {@inheritDoc VhostTransportPeer.getUsed} */
  getUsed(index: number): VhostPeerUsedBuffer | undefined {
    const q = this.#queue(index);
    const slot = q.vq.getBuf();
    if (slot === undefined) return undefined;
    const len = q.vq.lastLen;
    const data = new Uint8Array(q.writable[slot] === 1 ? len : 0);
    if (data.length > 0) this.memory.read(q.slots + slot * this.bufferSize, data);
    q.free.push(slot);
    return { len, data };
  }

  /** {@inheritDoc VhostTransportPeer.interrupts} */
  interrupts(index: number): number {
    return this.#irqs[index] ?? 0;
  }

  /** {@inheritDoc VhostTransportPeer.writeMemory} */
  writeMemory(addr: number, data: Uint8Array): void {
    this.memory.write(addr, data);
  }

  /** {@inheritDoc VhostTransportPeer.readMemory} */
  readMemory(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.memory.read(addr, out);
    return out;
  }
}

/** Bytes a legacy ring of `num` entries spans at alignment `align`. */
function layoutSpanSize(num: number, align: number): number {
  const l = vringLegacyLayout(0, num, align);
  return layoutSpan(l).end;
}
