import { ArrayBufferMemory, RegionMemory, vringModernLayout } from '@x/vring';
import {
  VHOST_NOTIFY,
  VIRTIO_CONFIG_S,
  VhostDevice,
  VhostVirtqueue,
  type VhostBus,
  type VhostConfigFs,
  type VhostConfigOps,
  type VhostDeviceConfig,
  type VhostVqSpec,
} from '@x/vhost-core';
import { LoopbackError } from './errors.js';
import { checkLink, type LoopbackLink } from './link.js';
import { LOOPBACK_DOORBELL as DB, VIRTIO_MMIO as R, VIRTIO_MMIO_INT, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION } from './registers.js';
import { RegisterPort, yieldTurn } from './internal/port.js';

const S = VIRTIO_CONFIG_S;
/** Records the bus {@link attachVhost} registered a device on, so close() unregisters it. */
let setBusOf: (t: LoopbackVhostTransport, bus: VhostBus) => void;
let makeTransport: (link: LoopbackLink, options: LoopbackVhostOptions) => LoopbackVhostTransport;
/** DEVICE_ATTACHED while the device side fills the registers: not yet visible to a driver. */
const ATTACHING = 2;
/** The longest a side sleeps on its doorbell before it looks again (bounded waits). */
const IDLE_WAIT_MS = 1000;
/** Busy rounds (the doorbell rang again while serving) before the loop yields a macrotask turn. */
const ROUNDS_BEFORE_YIELD = 64;

/** Options of {@link openVhost} and {@link attachVhost}. @public */
export interface LoopbackVhostOptions {
  /** The transport's name for its device and its `vhost-transport/<name>` item. Default `loopback`. */
  name?: string;
  /** Device-local address of the window onto the driver's memory. Default 0x8_0000_0000. */
  windowBase?: number;
  /** Device attributes (queue size, buffers, features), as the configuration tree would set them. */
  config?: Partial<VhostDeviceConfig>;
  /** When given, the transport adds `vhost-transport/<name>`, so linking a client item registers the device. */
  configFs?: VhostConfigFs;
}

/** Counters of a {@link LoopbackVhostTransport}. @public */
export interface LoopbackVhostStats {
  /** Register writes the device handled (and acknowledged). */
  registerWrites: number;
  /** Kicks (doorbell counter steps) delivered to queues. */
  kicks: number;
  /** Used-buffer interrupts raised. */
  interrupts: number;
  /** Configuration-change interrupts raised. */
  configInterrupts: number;
}

interface QueueRegs {
  num: number;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
  ready: boolean;
}

function freshQueue(): QueueRegs {
  return { num: 0, desc: [0, 0], driver: [0, 0], device: [0, 0], ready: false };
}

/**
 * The device side of a loopback link: a {@link @x/vhost-core#VhostDevice} whose
 * `VhostConfigOps` are the device half of a virtio-mmio register block (VIRTIO 1.2
 * §4.2.2) in a SharedArrayBuffer. It reaches the driver's memory through a
 * `RegionMemory` window at a different local address, handles every register write
 * the driver posts (and acknowledges it in the doorbell page), turns kicks into
 * `VhostVirtqueue.kicked()`, and raises interrupts through `InterruptStatus` and the IRQ
 * doorbell. What the peer does reaches vhost-core as `handleEvent`: a `Status` write as
 * SET_STATUS (0 as RESET), the second `DriverFeatures` word as FINALIZE_FEATURES, and
 * `QueueReady` as attach / detach of the ring.
 *
 * Create it with {@link openVhost} or {@link attachVhost}.
 *
 * @public
 */
export class LoopbackVhostTransport {
  /** The transport's name for its device. */
  readonly name: string;
  /** The link, as checked on this side. */
  readonly link: LoopbackLink;
  /** The device (register it on a bus, or link its `vhost-transport` item). */
  readonly device: VhostDevice;
  /** The device's window onto the driver's memory: driver bus addresses → a local mapping. */
  readonly memory: RegionMemory;
  /** Counters. */
  readonly stats: LoopbackVhostStats = { registerWrites: 0, kicks: 0, interrupts: 0, configInterrupts: 0 };
  /** The last error the device hit handling a register write (e.g. a ring it refused). */
  lastError: unknown = undefined;

  readonly #regs: RegisterPort;
  readonly #configFs: VhostConfigFs | undefined;
  #bus: VhostBus | undefined = undefined;
  #vqs: VhostVirtqueue[] = [];
  #queues: QueueRegs[];
  #offered = 0n;
  #devSel = 0;
  #drvSel = 0;
  #queueSel = 0;
  #drvWords: [number, number] = [0, 0];
  /** Bit n: DriverFeatures word n was written since the last finalize or reset. */
  #drvWritten = 0;
  #acked: number;
  readonly #kickSeen: Int32Array;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;
  readonly #loop: Promise<void>;

  static {
    makeTransport = (link, options) => new LoopbackVhostTransport(link, options);
  }

  private constructor(link: LoopbackLink, options: LoopbackVhostOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.link = checkLink(link);
    this.name = options.name ?? 'loopback';
    if (typeof this.name !== 'string' || this.name === '') throw new TypeError('options.name must be a non-empty string');
    const windowBase = options.windowBase ?? 0x8_0000_0000;
    const size = this.link.memory.byteLength;
    if (!Number.isSafeInteger(windowBase) || windowBase < 0 || windowBase + size > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`options.windowBase must be an integer with windowBase + ${size} ≤ 2^53-1, got ${windowBase}`);
    }
    const local = new ArrayBufferMemory(this.link.memory, { base: windowBase, name: `${this.name}: device-local mapping of driver memory` });
    this.memory = new RegionMemory({ name: `${this.name}: window onto driver memory` });
    this.memory.map({ busAddr: this.link.driverBase, size, target: local, targetAddr: windowBase, name: 'driver memory' });
    this.#regs = new RegisterPort(this.link.regs);
    this.#queues = Array.from({ length: this.link.maxQueues }, freshQueue);
    this.device = new VhostDevice(this.#makeOps(), {
      id: { vendor: this.link.vendorId, device: this.link.deviceId },
      parent: this.name,
      ...(options.config === undefined ? {} : { config: options.config }),
    });

    const regs = this.#regs;
    if (regs.dbCas(DB.DEVICE_ATTACHED, 0, ATTACHING) !== 0) {
      throw new LoopbackError('ALREADY_ATTACHED', `${this.name}: the link already has a device side`);
    }
    // A fresh device: every register of page 0 reads 0 except the identity (§4.2.2).
    for (let off = 0; off < R.CONFIG; off += 4) regs.write32(off, 0);
    regs.write32(R.VERSION, VIRTIO_MMIO_VERSION);
    regs.write32(R.VENDOR_ID, this.link.vendorId);
    regs.write32(R.MAGIC_VALUE, VIRTIO_MMIO_MAGIC);
    this.#acked = regs.db(DB.REG_SEQ);
    regs.dbStore(DB.REG_ACK, this.#acked);
    this.#kickSeen = new Int32Array(this.link.maxQueues);
    for (let q = 0; q < this.link.maxQueues; q++) {
      this.#kickSeen[q] = regs.db(DB.KICK + q);
      regs.dbStore(DB.KICK_SEEN + q, this.#kickSeen[q]!);
    }
    regs.dbStore(DB.DEVICE_ATTACHED, 1);
    this.#presence();
    this.#configFs = options.configFs;
    try {
      this.#configFs?.addTransport(this.device, this.name);
    } catch (e) {
      // Give the link back: no device side is attached after all.
      regs.write32(R.MAGIC_VALUE, 0);
      regs.dbStore(DB.DEVICE_ATTACHED, 0);
      this.#presence();
      throw e;
    }
    this.#loop = this.#run().catch((e: unknown) => {
      this.lastError = e;
    });
  }

  /** True once {@link LoopbackVhostTransport.close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Detaches the device side: unregisters the device (the vhost driver's remove runs),
   * removes its `vhost-transport` item, clears `MagicValue` and `DeviceID`, sets
   * DEVICE_NEEDS_RESET with a configuration interrupt if a driver was live, and stops
   * listening. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    try {
      if (this.#configFs !== undefined && this.#configFs.transports.hasEntry(this.name)) await this.#configFs.removeTransport(this.name);
      if (this.#bus !== undefined && this.device.bus === this.#bus) await this.#bus.unregisterDevice(this.device);
    } catch (e) {
      this.lastError = e;
    }
    this.#bus = undefined;
    const regs = this.#regs;
    this.#closed = true;
    regs.write32(R.DEVICE_ID, 0);
    regs.write32(R.MAGIC_VALUE, 0);
    if ((regs.read32(R.STATUS) & S.DRIVER_OK) !== 0) {
      regs.or32(R.STATUS, S.NEEDS_RESET);
      this.#raise(VIRTIO_MMIO_INT.CONFIG);
    }
    regs.dbStore(DB.DEVICE_ATTACHED, 0);
    this.#presence();
    // Wake our own loop, and a driver waiting for an acknowledgement that will not come.
    regs.ring(DB.DEVICE);
    regs.ring(DB.REG_ACK);
    await this.#loop;
  }

  static {
    setBusOf = (t, bus) => {
      t.#bus = bus;
    };
  }

  // ---- the listener: one loop per device side ---------------------------------------

  async #run(): Promise<void> {
    const regs = this.#regs;
    let busy = 0;
    while (!this.#closed) {
      const seen = regs.db(DB.DEVICE);
      await this.#service();
      if (this.#closed) break;
      if (regs.db(DB.DEVICE) !== seen) {
        if (++busy % ROUNDS_BEFORE_YIELD === 0) await yieldTurn();
        continue;
      }
      busy = 0;
      await regs.wait(DB.DEVICE, seen, IDLE_WAIT_MS);
    }
  }

  /** Handles the posted register write, then every queue whose kick counter moved. */
  async #service(): Promise<void> {
    const regs = this.#regs;
    const seq = regs.db(DB.REG_SEQ);
    if (seq !== this.#acked) {
      const off = regs.db(DB.REG_OFFSET);
      try {
        await this.#onWrite(off);
      } catch (e) {
        this.lastError = e;
      }
      this.stats.registerWrites++;
      this.#acked = seq;
      regs.dbStore(DB.REG_ACK, seq);
      regs.ring(DB.REG_ACK);
    }
    for (let q = 0; q < this.#kickSeen.length; q++) {
      const k = regs.db(DB.KICK + q);
      if (k === this.#kickSeen[q]) continue;
      this.#kickSeen[q] = k;
      this.#kick(q);
      regs.dbStore(DB.KICK_SEEN + q, k);
    }
  }

  #kick(q: number): void {
    const vq = this.#vqs[q];
    if (vq === undefined) return;
    this.stats.kicks++;
    vq.kicked();
  }

  /** Tells a waiting driver that the device appeared, went, or changed `DeviceID`. */
  #presence(): void {
    this.#regs.dbAdd(DB.PRESENCE, 1);
    this.#regs.ring(DB.PRESENCE);
  }

  #raise(bit: number): void {
    if (bit === VIRTIO_MMIO_INT.VRING) this.stats.interrupts++;
    else this.stats.configInterrupts++;
    this.#regs.or32(R.INTERRUPT_STATUS, bit);
    this.#regs.dbAdd(DB.IRQ, 1);
    this.#regs.ring(DB.IRQ);
  }

  // ---- what the driver's register writes do (virtio-mmio, device side) --------------

  async #onWrite(off: number): Promise<void> {
    const regs = this.#regs;
    const v = off >= 0 && off < R.CONFIG && (off & 3) === 0 ? regs.read32(off) : 0;
    switch (off) {
      case R.DEVICE_FEATURES_SEL:
        this.#devSel = v;
        this.#showFeatures();
        return;
      case R.DRIVER_FEATURES_SEL:
        this.#drvSel = v;
        return;
      case R.DRIVER_FEATURES:
        // Only words 0 and 1 exist; others are ignored (§4.2.2: 64 feature bits).
        if (this.#drvSel > 1) return;
        this.#drvWords[this.#drvSel] = v;
        this.#drvWritten |= 1 << this.#drvSel;
        // Both words written (Linux vm_finalize_features writes both): the features are final.
        if (this.#drvWritten === 3) await this.#finalize();
        return;
      case R.QUEUE_SEL:
        this.#queueSel = v;
        this.#showQueue();
        return;
      case R.QUEUE_NUM:
      case R.QUEUE_DESC_LOW:
      case R.QUEUE_DESC_HIGH:
      case R.QUEUE_DRIVER_LOW:
      case R.QUEUE_DRIVER_HIGH:
      case R.QUEUE_DEVICE_LOW:
      case R.QUEUE_DEVICE_HIGH:
        this.#storeQueueReg(off, v);
        return;
      case R.QUEUE_READY:
        this.#setReady(v);
        return;
      case R.QUEUE_NOTIFY:
        if (v < this.#kickSeen.length) this.#kick(v);
        return;
      case R.INTERRUPT_ACK:
        regs.clear32(R.INTERRUPT_STATUS, v);
        return;
      case R.STATUS:
        await this.#onStatus(v & 0xff);
        return;
      default:
        // Configuration space and read-only registers: the bytes are where the driver put them.
        return;
    }
  }

  async #finalize(): Promise<void> {
    const f = (BigInt(this.#drvWords[1]) << 32n) | BigInt(this.#drvWords[0]);
    this.#drvWritten = 0;
    const err = await this.device.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, f);
    if (err !== undefined) this.lastError = err;
  }

  async #onStatus(s: number): Promise<void> {
    const regs = this.#regs;
    if (s === 0) {
      const err = await this.device.handleEvent(VHOST_NOTIFY.RESET);
      if (err !== undefined) this.lastError = err;
      this.#resetRegisters();
      return;
    }
    // A driver that wrote only one DriverFeatures word: it is final when FEATURES_OK comes.
    if ((s & S.FEATURES_OK) !== 0 && (this.device.status & S.FEATURES_OK) === 0 && this.#drvWritten !== 0) await this.#finalize();
    const wasLive = (this.device.status & S.DRIVER_OK) !== 0;
    const err = await this.device.handleEvent(VHOST_NOTIFY.SET_STATUS);
    if (err !== undefined) this.lastError = err;
    // DEVICE_NEEDS_RESET belongs to the device: a driver's write does not clear it, and a
    // driver that sets DRIVER_OK on a device that needs a reset is told so (§2.1.2).
    if ((this.device.status & S.NEEDS_RESET) !== 0) {
      regs.or32(R.STATUS, S.NEEDS_RESET);
      if ((s & S.DRIVER_OK) !== 0 && !wasLive) this.#raise(VIRTIO_MMIO_INT.CONFIG);
    }
  }

  /** Upon reset the device clears InterruptStatus and every QueueReady (§4.2.2.1). */
  #resetRegisters(): void {
    const regs = this.#regs;
    this.#devSel = 0;
    this.#drvSel = 0;
    this.#queueSel = 0;
    this.#drvWords = [0, 0];
    this.#drvWritten = 0;
    this.#queues = Array.from({ length: this.link.maxQueues }, freshQueue);
    for (const off of [R.DEVICE_FEATURES_SEL, R.DRIVER_FEATURES, R.DRIVER_FEATURES_SEL, R.QUEUE_SEL, R.INTERRUPT_STATUS]) regs.write32(off, 0);
    regs.write32(R.STATUS, 0);
    this.#showFeatures();
    this.#showQueue();
  }

  #showFeatures(): void {
    const word = this.#devSel > 1 ? 0 : Number((this.#offered >> BigInt(32 * this.#devSel)) & 0xffffffffn);
    this.#regs.write32(R.DEVICE_FEATURES, word);
  }

  /** Fills the Queue* registers with the selected queue's state (what a read would return). */
  #showQueue(): void {
    const regs = this.#regs;
    const sel = this.#queueSel;
    const q = this.#queues[sel];
    const vq = this.#vqs[sel];
    regs.write32(R.QUEUE_NUM_MAX, vq === undefined ? 0 : vq.num);
    regs.write32(R.QUEUE_NUM, q?.num ?? 0);
    regs.write32(R.QUEUE_READY, q?.ready === true ? 1 : 0);
    regs.write32(R.QUEUE_DESC_LOW, q?.desc[0] ?? 0);
    regs.write32(R.QUEUE_DESC_HIGH, q?.desc[1] ?? 0);
    regs.write32(R.QUEUE_DRIVER_LOW, q?.driver[0] ?? 0);
    regs.write32(R.QUEUE_DRIVER_HIGH, q?.driver[1] ?? 0);
    regs.write32(R.QUEUE_DEVICE_LOW, q?.device[0] ?? 0);
    regs.write32(R.QUEUE_DEVICE_HIGH, q?.device[1] ?? 0);
  }

  #storeQueueReg(off: number, v: number): void {
    const q = this.#queues[this.#queueSel];
    // §4.2.2.1: the queue registers of a live queue do not change.
    if (q === undefined || q.ready) return;
    switch (off) {
      case R.QUEUE_NUM:
        q.num = v;
        return;
      case R.QUEUE_DESC_LOW:
        q.desc[0] = v;
        return;
      case R.QUEUE_DESC_HIGH:
        q.desc[1] = v;
        return;
      case R.QUEUE_DRIVER_LOW:
        q.driver[0] = v;
        return;
      case R.QUEUE_DRIVER_HIGH:
        q.driver[1] = v;
        return;
      case R.QUEUE_DEVICE_LOW:
        q.device[0] = v;
        return;
      default:
        q.device[1] = v;
    }
  }

  /** QueueReady: 1 attaches the ring the driver described (reads back 0 when refused), 0 detaches it. */
  #setReady(v: number): void {
    const regs = this.#regs;
    const q = this.#queues[this.#queueSel];
    const vq = this.#vqs[this.#queueSel];
    if (q === undefined || vq === undefined) {
      regs.write32(R.QUEUE_READY, 0);
      return;
    }
    if (v === 0) {
      vq.detach();
      q.ready = false;
      regs.write32(R.QUEUE_READY, 0);
      return;
    }
    if (q.ready) {
      regs.write32(R.QUEUE_READY, 1);
      return;
    }
    try {
      const addr = (w: [number, number], what: string): number => {
        // 2^53 − 1 is the largest bus address (`MAX_BUS_ADDR`): the high word holds 21 bits.
        if (w[1] > 0x1f_ffff) throw new RangeError(`${what} 0x${w[1].toString(16)}_${w[0].toString(16).padStart(8, '0')} is above 2^53-1`);
        return w[1] * 0x1_0000_0000 + w[0];
      };
      const layout = vringModernLayout(q.num, {
        desc: addr(q.desc, 'QueueDesc'),
        avail: addr(q.driver, 'QueueDriver'),
        used: addr(q.device, 'QueueDevice'),
      });
      vq.attach(this.memory, layout);
      q.ready = true;
      regs.write32(R.QUEUE_READY, 1);
    } catch (e) {
      this.lastError = e;
      q.ready = false;
      regs.write32(R.QUEUE_READY, 0);
    }
  }

  // ---- VhostConfigOps over the register block ---------------------------------------

  #makeOps(): VhostConfigOps {
    const regs = this.#regs;
    const configSize = this.link.configSize;
    const checkConfig = (offset: number, len: number): void => {
      if (offset + len > configSize) throw new RangeError(`offset: config access ${offset}+${len} is beyond the ${configSize}-byte configuration space`);
    };
    return {
      createVqs: (specs: readonly (VhostVqSpec & { readonly size: number })[]) => {
        if (specs.length > this.link.maxQueues) {
          throw new RangeError(`specs: the link carries ${this.link.maxQueues} queues, ${specs.length} asked`);
        }
        const vqs = specs.map(
          (s, index) =>
            new VhostVirtqueue({
              device: this.device,
              index,
              num: s.size,
              name: s.name,
              ...(s.callback === undefined ? {} : { callback: s.callback }),
              notify: () => this.#raise(VIRTIO_MMIO_INT.VRING),
            }),
        );
        this.#vqs = vqs;
        this.#queues = Array.from({ length: this.link.maxQueues }, freshQueue);
        this.#showQueue();
        // The device has a function now: a driver may bind (§4.2.3.1.1, DeviceID 0 = none).
        regs.write32(R.DEVICE_ID, this.link.deviceId);
        this.#presence();
        return vqs;
      },
      delVqs: () => {
        for (const vq of this.#vqs) vq.detach();
        this.#vqs = [];
        this.#queues = Array.from({ length: this.link.maxQueues }, freshQueue);
        this.#showQueue();
        regs.write32(R.DEVICE_ID, 0);
        this.#presence();
        const st = regs.read32(R.STATUS);
        if ((st & S.DRIVER_OK) !== 0 && (st & S.NEEDS_RESET) === 0) {
          // The queues a live driver uses are gone: it must reset (§2.1.2).
          regs.or32(R.STATUS, S.NEEDS_RESET);
          this.#raise(VIRTIO_MMIO_INT.CONFIG);
        }
      },
      read: (dst, peerAddr) => this.memory.read(peerAddr, dst),
      write: (peerAddr, src) => this.memory.write(peerAddr, src),
      setFeatures: (features) => {
        this.#offered = features;
        this.#showFeatures();
      },
      getStatus: () => regs.read32(R.STATUS) & 0xff,
      setStatus: (status) => {
        const prev = regs.read32(R.STATUS);
        if (status === ((prev | S.NEEDS_RESET) & 0xff)) {
          // Only NEEDS_RESET is added: set it without clobbering a concurrent driver write.
          regs.or32(R.STATUS, S.NEEDS_RESET);
        } else {
          regs.write32(R.STATUS, status);
        }
        if ((status & S.NEEDS_RESET) !== 0 && (prev & S.NEEDS_RESET) === 0 && (prev & S.DRIVER_OK) !== 0) {
          this.#raise(VIRTIO_MMIO_INT.CONFIG);
        }
      },
      readConfig: (offset, dst) => {
        checkConfig(offset, dst.length);
        for (let i = 0; i < dst.length; i++) dst[i] = regs.read8(R.CONFIG + offset + i);
      },
      writeConfig: (offset, src) => {
        checkConfig(offset, src.length);
        // A seqlock on ConfigGeneration: odd while the bytes change, so a driver never
        // accepts a torn read with an unchanged generation (§2.5.1, §4.2.2).
        const g = regs.read32(R.CONFIG_GENERATION);
        regs.write32(R.CONFIG_GENERATION, (g | 1) >>> 0);
        for (let i = 0; i < src.length; i++) regs.write8(R.CONFIG + offset + i, src[i]!);
        regs.write32(R.CONFIG_GENERATION, ((g | 1) + 1) >>> 0);
        if ((regs.read32(R.STATUS) & S.DRIVER_OK) !== 0) this.#raise(VIRTIO_MMIO_INT.CONFIG);
      },
    };
  }
}

/**
 * Attaches the device side to a link without registering the device (for a
 * configuration tree, via `options.configFs`, or a test harness). The device appears to
 * the driver (`MagicValue`, `Version`, `VendorID`) at once, and `DeviceID` is published
 * when a vhost driver creates its queues.
 *
 * @public
 */
export function openVhost(link: LoopbackLink, options: LoopbackVhostOptions = {}): LoopbackVhostTransport {
  return makeTransport(link, options);
}

/**
 * Attaches the device side to a link and registers its device on `bus` (Linux: the
 * transport calls `vhost_register_device`); a matching vhost driver probes it.
 * `close()` unregisters it.
 *
 * @public
 */
export async function attachVhost(link: LoopbackLink, bus: VhostBus, options: LoopbackVhostOptions = {}): Promise<LoopbackVhostTransport> {
  if (typeof bus !== 'object' || bus === null || typeof bus.registerDevice !== 'function') throw new TypeError('bus must be a VhostBus');
  const t = makeTransport(link, options);
  try {
    setBusOf(t, bus);
    await bus.registerDevice(t.device);
  } catch (e) {
    await t.close();
    throw e;
  }
  return t;
}
