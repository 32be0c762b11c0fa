import { ArrayBufferMemory, VIRTQUEUE_MAX_SIZE, Virtqueue, layoutSpan, vringModernLayout } from '@x/vring';
import {
  GenPool,
  VIRTIO_BUFFER_ALIGN,
  VirtioDevice,
  VirtioError,
  type VirtioBuffer,
  type VirtioBus,
  type VirtioConfigOps,
  type VirtioDeviceId,
  type VirtioRingOptions,
  type VirtqueueSpec,
} from '@x/virtio-core';
import { LoopbackError, isLoopbackError } from './errors.js';
import { checkLink, type LoopbackLink } from './link.js';
import { LOOPBACK_DOORBELL as DB, VIRTIO_MMIO as R, VIRTIO_MMIO_INT, VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION } from './registers.js';
import { Mutex, RegisterPort, yieldTurn } from './internal/port.js';

/** The longest one wait slice lasts: a waiter re-checks its conditions (device gone, abort) at least this often. */
const WAIT_SLICE_MS = 50;
/** The longest the interrupt loop sleeps on its doorbell before it looks again. */
const IDLE_WAIT_MS = 1000;
/** Busy rounds before the interrupt loop yields a macrotask turn. */
const ROUNDS_BEFORE_YIELD = 64;

/** Options of {@link openVirtio} and {@link attachVirtio}. @public */
export interface LoopbackVirtioOptions {
  /**
   * How long a register write waits for the device's acknowledgement, in ms, before it
   * fails with `TIMEOUT`. Default 1000 (the RFC's command timeout, rfc-protocol §2.2).
   */
  timeoutMs?: number;
  /** How long to wait for the device to appear on the link, in ms. Default 5000. */
  attachTimeoutMs?: number;
  /** Aborts the wait for the device (`ABORTED`). */
  signal?: AbortSignal;
  /**
   * Wait for a non-zero `DeviceID` (a vhost driver created the device's queues) before
   * resolving. Default true; a raw driver that only pokes registers may pass false.
   */
  requireDeviceId?: boolean;
  /** Indirect table entries per buffer when INDIRECT_DESC is negotiated (0: none). Default 8. */
  indirectSegments?: number;
  /** Name of the `VirtioDevice` {@link attachVirtio} registers. */
  name?: string;
}

/** Counters of a {@link LoopbackVirtioTransport}. @public */
export interface LoopbackVirtioStats {
  /** Register writes posted (each acknowledged by the device). */
  registerWrites: number;
  /** Kicks rung. */
  kicks: number;
  /** Used-buffer interrupts handled. */
  interrupts: number;
  /** Configuration-change interrupts handled. */
  configInterrupts: number;
}

function regName(off: number): string {
  for (const [k, v] of Object.entries(R)) if (v === off) return k;
  return off >= R.CONFIG ? `config space +0x${(off - R.CONFIG).toString(16)}` : `register 0x${off.toString(16)}`;
}

function checkMs(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a positive number of milliseconds, got ${v}`);
  return v;
}

let makeTransport: (link: LoopbackLink, regs: RegisterPort, options: LoopbackVirtioOptions) => LoopbackVirtioTransport;
let setBusOf: (t: LoopbackVirtioTransport, bus: VirtioBus) => void;

/**
 * The driver side of a loopback link: `VirtioConfigOps` (the contract of
 * `@x/virtio-core`) written as a virtio-mmio driver (Linux `virtio_mmio.c`) over the
 * register block in a SharedArrayBuffer, with rings and buffers in the link's memory
 * region. A register write is posted to the device and awaited until the device
 * acknowledges it (or `TIMEOUT`); kicks are doorbell counters; the device's interrupts
 * arrive through `InterruptStatus` and the IRQ doorbell and run `vq.interrupt()` /
 * `device.notifyConfigChanged()`.
 *
 * Everything the device sends is checked: a wrong `MagicValue` or `Version`, an
 * impossible `QueueNumMax`, a queue that is live before setup, a refused `QueueReady`,
 * a missing acknowledgement — each is a {@link LoopbackError}; nothing waits unbounded.
 *
 * Create it with {@link openVirtio} or {@link attachVirtio}.
 *
 * @public
 */
export class LoopbackVirtioTransport {
  /** The link, as checked on this side. */
  readonly link: LoopbackLink;
  /** The driver's memory (rings and buffers) at the link's `driverBase`. */
  readonly memory: ArrayBufferMemory;
  /** The transport contract, for one `VirtioDevice`. */
  readonly ops: VirtioConfigOps;
  /** Counters. */
  readonly stats: LoopbackVirtioStats = { registerWrites: 0, kicks: 0, interrupts: 0, configInterrupts: 0 };
  /** The last error the interrupt handler caught (a broken queue, a failed config-change handler). */
  lastError: unknown = undefined;

  readonly #regs: RegisterPort;
  readonly #timeoutMs: number;
  readonly #segs: number;
  readonly #lock = new Mutex();
  readonly #pool: GenPool;
  readonly #buffers = new Map<number, VirtioBuffer>();
  #vqs: Array<Virtqueue | undefined> = [];
  #rings: number[] = [];
  #device: VirtioDevice | undefined = undefined;
  #bus: VirtioBus | undefined = undefined;
  #irqHandled: number;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;
  readonly #irqLoop: Promise<void>;

  static {
    makeTransport = (link, regs, options) => new LoopbackVirtioTransport(link, regs, options);
    setBusOf = (t, bus) => {
      t.#bus = bus;
    };
  }

  private constructor(link: LoopbackLink, regs: RegisterPort, options: LoopbackVirtioOptions) {
    this.link = link;
    this.#regs = regs;
    this.#timeoutMs = checkMs('options.timeoutMs', options.timeoutMs, 1000);
    const segs = options.indirectSegments ?? 8;
    if (typeof segs !== 'number' || !Number.isInteger(segs) || segs < 0 || segs > 1024) {
      throw new RangeError(`options.indirectSegments must be an integer in 0..1024, got ${String(segs)}`);
    }
    this.#segs = segs;
    this.memory = new ArrayBufferMemory(link.memory, { base: link.driverBase, name: 'loopback driver memory' });
    // Rings and buffers share one bounded first-fit pool over the whole region (RFC
    // patch 12: buffers the peer can reach; Linux gen_pool, as the RFC's NTB client uses).
    this.#pool = new GenPool({ base: link.driverBase, size: link.memory.byteLength, align: VIRTIO_BUFFER_ALIGN });
    this.ops = this.#makeOps();
    this.#irqHandled = regs.db(DB.IRQ);
    this.#irqLoop = this.#runIrq().catch((e: unknown) => {
      this.lastError = e;
    });
  }

  /** The device's identity as the registers give it (`DeviceID`, `VendorID`). */
  get id(): VirtioDeviceId {
    return { device: this.#regs.read32(R.DEVICE_ID), vendor: this.#regs.read32(R.VENDOR_ID) };
  }

  /** The `VirtioDevice` made by {@link LoopbackVirtioTransport.createDevice}, which gets configuration interrupts. */
  get device(): VirtioDevice | undefined {
    return this.#device;
  }

  /** The live queues by index (a hole where a queue is not set up). */
  get vqs(): readonly (Virtqueue | undefined)[] {
    return this.#vqs;
  }

  /** True once {@link LoopbackVirtioTransport.close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A `VirtioDevice` over this transport, which the transport delivers
   * configuration-change interrupts to (Linux: `register_virtio_device` of the
   * `virtio_device` that `virtio_mmio_probe` allocated). Needs a non-zero `DeviceID`.
   */
  createDevice(name?: string): VirtioDevice {
    this.#checkOpen();
    const id = this.id;
    if (id.device === 0) throw new LoopbackError('NO_DEVICE', 'DeviceID reads 0: the device has no function yet (VIRTIO 1.2 §4.2.3.1.1)');
    const dev = new VirtioDevice({ id, ops: this.ops, ...(name === undefined ? {} : { name }) });
    this.#device = dev;
    return dev;
  }

  /**
   * A buffer in the link memory, which the device reaches (RFC patch 12
   * `alloc_buffer`; the `allocBuffer` op): 16-byte aligned, with a zero-copy view.
   * Rings come from the same bounded pool. `NO_BUFFER_SPACE` (a `VirtioError`, as core's
   * own allocator) when it is exhausted.
   */
  allocBuffer(size: number): VirtioBuffer {
    this.#checkOpen();
    const addr = this.#pool.alloc(size);
    if (addr < 0) throw new VirtioError('NO_BUFFER_SPACE', `no ${size}-byte buffer left in the ${this.link.memory.byteLength}-byte link memory`);
    const buf: VirtioBuffer = Object.freeze({ addr, size, view: this.memory.view(addr, size) });
    this.#buffers.set(addr, buf);
    return buf;
  }

  /** Frees a buffer of {@link LoopbackVirtioTransport.allocBuffer} (RFC patch 12 `free_buffer`); `BAD_BUFFER` otherwise. */
  freeBuffer(buf: VirtioBuffer): void {
    if (typeof buf !== 'object' || buf === null || this.#buffers.get(buf.addr) !== buf) {
      throw new VirtioError('BAD_BUFFER', 'the buffer was not allocated by this transport, or was freed');
    }
    this.#buffers.delete(buf.addr);
    this.#pool.free(buf.addr);
  }

  /** Selects queue `index` and reads its `QueueNumMax` (0: no such queue). */
  queueNumMax(index: number): Promise<number> {
    checkQueueIndex(index, this.link.maxQueues);
    return this.#lock.run(async () => {
      await this.#write32(R.QUEUE_SEL, index);
      return this.#regs.read32(R.QUEUE_NUM_MAX);
    });
  }

  /**
   * Sets up one queue (Linux `vm_setup_vq`): selects it, checks it is not live, reads
   * `QueueNumMax`, allocates and zeroes a ring of `spec.size` entries (or fewer, a power
   * of two ≤ QueueNumMax) in the memory region, writes its size and the three area
   * addresses, and writes `QueueReady` = 1, which the device must read back.
   */
  setupVq<T = unknown>(index: number, spec: VirtqueueSpec, ring: VirtioRingOptions): Promise<Virtqueue<T>> {
    checkQueueIndex(index, this.link.maxQueues);
    return this.#lock.run(() => this.#setupVq<T>(index, spec, ring));
  }

  /**
   * Waits until the device consumed every kick and acknowledged every register write,
   * and every interrupt it raised was handled here. For tests and orderly shutdown.
   */
  async settle(timeoutMs: number = this.#timeoutMs): Promise<void> {
    const ms = checkMs('timeoutMs', timeoutMs, this.#timeoutMs);
    const regs = this.#regs;
    const deadline = Date.now() + ms;
    for (;;) {
      const attached = regs.db(DB.DEVICE_ATTACHED) === 1;
      let busy = attached && regs.db(DB.REG_ACK) !== regs.db(DB.REG_SEQ);
      if (attached) for (let q = 0; q < this.link.maxQueues; q++) if (regs.db(DB.KICK_SEEN + q) !== regs.db(DB.KICK + q)) busy = true;
      if (regs.db(DB.IRQ) !== this.#irqHandled && !this.#closed) busy = true;
      if (!busy) return;
      if (Date.now() > deadline) throw new LoopbackError('TIMEOUT', `the link did not settle within ${ms} ms`);
      await yieldTurn();
    }
  }

  /**
   * Detaches the driver side: unregisters the device registered by {@link attachVirtio}
   * (its driver's remove runs and core resets the device), stops the interrupt handler
   * and releases the link for another driver. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const bus = this.#bus;
    const dev = this.#device;
    if (bus !== undefined && dev !== undefined && dev.bus === bus) {
      try {
        await bus.unregisterDevice(dev);
      } catch (e) {
        this.lastError = e;
      }
    }
    this.#bus = undefined;
    this.#closed = true;
    this.#regs.dbStore(DB.DRIVER_ATTACHED, 0);
    this.#regs.ring(DB.IRQ);
    await this.#irqLoop;
    this.#device = undefined;
  }

  #checkOpen(): void {
    if (this.#closed) throw new LoopbackError('CLOSED', 'the driver side of the link is closed');
  }

  // ---- register transactions --------------------------------------------------------

  /**
   * Posts a register write to the device and waits for its acknowledgement: the
   * loopback's stand-in for an MMIO write the device handles before the next access.
   */
  async #post(off: number): Promise<void> {
    this.#checkOpen();
    const regs = this.#regs;
    if (regs.db(DB.DEVICE_ATTACHED) !== 1) throw new LoopbackError('NO_DEVICE', `write of ${regName(off)}: no device is attached to the link`);
    regs.dbStore(DB.REG_OFFSET, off);
    const seq = (regs.db(DB.REG_SEQ) + 1) | 0;
    regs.dbStore(DB.REG_SEQ, seq);
    regs.dbAdd(DB.DEVICE, 1);
    regs.ring(DB.DEVICE);
    this.stats.registerWrites++;
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const ack = regs.db(DB.REG_ACK);
      if (ack === seq) return;
      if (regs.db(DB.DEVICE_ATTACHED) !== 1) throw new LoopbackError('NO_DEVICE', `write of ${regName(off)}: the device detached before acknowledging it`);
      this.#checkOpen();
      const left = deadline - Date.now();
      if (left <= 0) throw new LoopbackError('TIMEOUT', `the device did not acknowledge the write of ${regName(off)} within ${this.#timeoutMs} ms`);
      await regs.wait(DB.REG_ACK, ack, Math.min(left, WAIT_SLICE_MS));
    }
  }

  async #write32(off: number, value: number): Promise<void> {
    this.#regs.write32(off, value);
    await this.#post(off);
  }

  #kick(index: number): boolean {
    if (this.#closed) return false;
    const regs = this.#regs;
    regs.dbAdd(DB.KICK + index, 1);
    regs.dbAdd(DB.DEVICE, 1);
    regs.ring(DB.DEVICE);
    this.stats.kicks++;
    return true;
  }

  // ---- interrupts (Linux vm_interrupt) ----------------------------------------------

  async #runIrq(): Promise<void> {
    const regs = this.#regs;
    let busy = 0;
    while (!this.#closed) {
      const seen = regs.db(DB.IRQ);
      this.#onInterrupt();
      this.#irqHandled = seen;
      if (this.#closed) break;
      if (regs.db(DB.IRQ) !== seen) {
        if (++busy % ROUNDS_BEFORE_YIELD === 0) await yieldTurn();
        continue;
      }
      busy = 0;
      await regs.wait(DB.IRQ, seen, IDLE_WAIT_MS);
    }
  }

  #onInterrupt(): void {
    const regs = this.#regs;
    const isr = regs.read32(R.INTERRUPT_STATUS);
    if (isr === 0) return;
    // InterruptACK: clearing exactly the bits read, atomically, so a bit the device sets
    // meanwhile stays pending (the write of InterruptACK without a round trip).
    regs.clear32(R.INTERRUPT_STATUS, isr);
    if ((isr & VIRTIO_MMIO_INT.VRING) !== 0) {
      this.stats.interrupts++;
      for (const vq of this.#vqs) {
        if (vq === undefined) continue;
        try {
          vq.interrupt();
        } catch (e) {
          // A broken queue stays broken; its driver sees it on the next call.
          this.lastError = e;
        }
      }
    }
    if ((isr & VIRTIO_MMIO_INT.CONFIG) !== 0) {
      this.stats.configInterrupts++;
      const dev = this.#device;
      if (dev !== undefined) {
        dev.notifyConfigChanged().catch((e: unknown) => {
          this.lastError = e;
        });
      }
    }
  }

  // ---- queues (Linux vm_setup_vq / vm_del_vqs) --------------------------------------

  async #setupVq<T>(index: number, spec: VirtqueueSpec, ring: VirtioRingOptions): Promise<Virtqueue<T>> {
    if (this.#vqs[index] !== undefined) throw new RangeError(`index: queue ${index} is already set up; delete the queues first`);
    const regs = this.#regs;
    await this.#write32(R.QUEUE_SEL, index);
    if (regs.read32(R.QUEUE_READY) !== 0) {
      throw new LoopbackError('BAD_REGISTER', `queue ${index}: QueueReady reads ${regs.read32(R.QUEUE_READY)} before setup, not 0 (VIRTIO 1.2 §4.2.3.2)`);
    }
    const max = regs.read32(R.QUEUE_NUM_MAX);
    if (max === 0) throw new LoopbackError('NO_QUEUE', `queue ${index}: QueueNumMax reads 0, the queue does not exist (VIRTIO 1.2 §4.2.3.2)`);
    if (max > VIRTQUEUE_MAX_SIZE) {
      throw new LoopbackError('BAD_REGISTER', `queue ${index}: QueueNumMax reads ${max}, above the split ring maximum ${VIRTQUEUE_MAX_SIZE} (VIRTIO 1.2 §2.7)`);
    }
    let num = Math.min(spec.size ?? max, max);
    // The largest power of two ≤ num (split rings, §2.7).
    while ((num & (num - 1)) !== 0) num &= num - 1;
    const probe = vringModernLayout(num, { desc: 0 });
    const ringBytes = alignUp(layoutSpan(probe).end, 16);
    const segs = ring.indirect && this.#segs >= 2 ? this.#segs : 0;
    const total = ringBytes + num * segs * 16;
    const addr = this.#pool.alloc(total);
    if (addr < 0) throw new VirtioError('NO_BUFFER_SPACE', `queue ${index}: no ${total} bytes left in the link memory for a ring of ${num}`);
    try {
      // The driver owns the ring and hands it over zeroed (§2.7.10.1).
      this.memory.write(addr, new Uint8Array(total));
      const layout = vringModernLayout(num, { desc: addr });
      const vq = new Virtqueue<T>({
        memory: this.memory,
        layout,
        index,
        name: spec.name,
        eventIdx: ring.eventIdx,
        ...(segs > 0 ? { indirect: { area: addr + ringBytes, maxSegments: segs } } : {}),
        notify: (q) => this.#kick(q.index),
        ...(spec.callback === undefined ? {} : { callback: spec.callback }),
      });
      await this.#write32(R.QUEUE_NUM, num);
      for (const [lo, hi, a] of [
        [R.QUEUE_DESC_LOW, R.QUEUE_DESC_HIGH, layout.desc],
        [R.QUEUE_DRIVER_LOW, R.QUEUE_DRIVER_HIGH, layout.avail],
        [R.QUEUE_DEVICE_LOW, R.QUEUE_DEVICE_HIGH, layout.used],
      ] as const) {
        await this.#write32(lo, a % 0x1_0000_0000);
        await this.#write32(hi, Math.floor(a / 0x1_0000_0000));
      }
      await this.#write32(R.QUEUE_READY, 1);
      if (regs.read32(R.QUEUE_READY) !== 1) throw new LoopbackError('QUEUE_REFUSED', `queue ${index}: the device did not accept the ring (QueueReady reads 0)`);
      this.#vqs[index] = vq as Virtqueue;
      this.#rings[index] = addr;
      return vq;
    } catch (e) {
      this.#pool.free(addr);
      throw e;
    }
  }

  async #delVqs(): Promise<void> {
    let first: unknown;
    for (let i = 0; i < this.#vqs.length; i++) {
      if (this.#vqs[i] === undefined) continue;
      try {
        await this.#write32(R.QUEUE_SEL, i);
        await this.#write32(R.QUEUE_READY, 0);
      } catch (e) {
        // A device that is gone has no queue to stop; anything else is reported.
        if (!isLoopbackError(e, 'NO_DEVICE') && !isLoopbackError(e, 'CLOSED')) first ??= e;
      }
      this.#pool.free(this.#rings[i]!);
    }
    this.#vqs = [];
    this.#rings = [];
    if (first !== undefined) throw first;
  }

  // ---- VirtioConfigOps --------------------------------------------------------------

  #makeOps(): VirtioConfigOps {
    const regs = this.#regs;
    const configSize = this.link.configSize;
    const checkConfig = (offset: number, len: number): void => {
      if (!Number.isInteger(offset) || offset < 0 || offset + len > configSize) {
        throw new RangeError(`offset: config access ${offset}+${len} is beyond the ${configSize}-byte configuration space`);
      }
    };
    return {
      getFeatures: () =>
        this.#lock.run(async () => {
          await this.#write32(R.DEVICE_FEATURES_SEL, 1);
          const hi = regs.read32(R.DEVICE_FEATURES);
          await this.#write32(R.DEVICE_FEATURES_SEL, 0);
          const lo = regs.read32(R.DEVICE_FEATURES);
          return (BigInt(hi) << 32n) | BigInt(lo);
        }),
      finalizeFeatures: (features: bigint) =>
        this.#lock.run(async () => {
          // Linux vm_finalize_features: the high word, then the low word.
          await this.#write32(R.DRIVER_FEATURES_SEL, 1);
          await this.#write32(R.DRIVER_FEATURES, Number((features >> 32n) & 0xffffffffn));
          await this.#write32(R.DRIVER_FEATURES_SEL, 0);
          await this.#write32(R.DRIVER_FEATURES, Number(features & 0xffffffffn));
        }),
      getStatus: () => regs.read32(R.STATUS) & 0xff,
      setStatus: (status: number) => this.#lock.run(() => this.#write32(R.STATUS, status & 0xff)),
      // Linux vm_reset: write 0; the acknowledgement means the device has reset (§4.2.2.1).
      reset: () => this.#lock.run(() => this.#write32(R.STATUS, 0)),
      findVqs: (specs: readonly VirtqueueSpec[], ring: VirtioRingOptions) =>
        this.#lock.run(async () => {
          if (specs.length > this.link.maxQueues) throw new RangeError(`specs: the link carries ${this.link.maxQueues} queues, ${specs.length} asked`);
          const vqs: Virtqueue[] = [];
          try {
            for (let i = 0; i < specs.length; i++) vqs.push(await this.#setupVq(i, specs[i]!, ring));
          } catch (e) {
            await this.#delVqs().catch(() => undefined);
            throw e;
          }
          return vqs;
        }),
      delVqs: () => this.#lock.run(() => this.#delVqs()),
      getConfig: (offset: number, dst: Uint8Array) => {
        checkConfig(offset, dst.length);
        for (let i = 0; i < dst.length; i++) dst[i] = regs.read8(R.CONFIG + offset + i);
      },
      setConfig: (offset: number, src: Uint8Array) => {
        checkConfig(offset, src.length);
        return this.#lock.run(async () => {
          for (let i = 0; i < src.length; i++) regs.write8(R.CONFIG + offset + i, src[i]!);
          await this.#post(R.CONFIG + offset);
        });
      },
      generation: async () => {
        // The device holds ConfigGeneration odd while it rewrites configuration space
        // (a seqlock): wait for an even value, bounded.
        const deadline = Date.now() + this.#timeoutMs;
        for (;;) {
          const g = regs.read32(R.CONFIG_GENERATION);
          if ((g & 1) === 0) return g;
          if (Date.now() > deadline) throw new LoopbackError('TIMEOUT', `ConfigGeneration stayed odd (a configuration update in progress) for ${this.#timeoutMs} ms`);
          await yieldTurn();
        }
      },
      allocBuffer: (size: number) => this.allocBuffer(size),
      freeBuffer: (buf: VirtioBuffer) => this.freeBuffer(buf),
    };
  }
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

function checkQueueIndex(index: number, max: number): void {
  if (typeof index !== 'number') throw new TypeError(`index must be a number, got ${typeof index}`);
  if (!Number.isInteger(index) || index < 0 || index >= max) throw new RangeError(`index must be an integer in 0..${max - 1}, got ${index}`);
}

/**
 * Attaches the driver side to a link: claims it (one driver per link), waits, bounded,
 * for the device to appear (`DEVICE_ATTACHED`, then a non-zero `DeviceID` unless
 * `requireDeviceId` is false), and checks `MagicValue` and `Version` (Linux
 * `virtio_mmio_probe`). The device is not registered anywhere: use the transport's
 * `ops` with your own `VirtioDevice`, or {@link attachVirtio}.
 *
 * @public
 */
export async function openVirtio(link: LoopbackLink, options: LoopbackVirtioOptions = {}): Promise<LoopbackVirtioTransport> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const l = checkLink(link);
  const waitMs = checkMs('options.attachTimeoutMs', options.attachTimeoutMs, 5000);
  checkMs('options.timeoutMs', options.timeoutMs, 1000);
  const signal = options.signal;
  if (signal !== undefined && (typeof signal !== 'object' || signal === null || typeof signal.aborted !== 'boolean')) {
    throw new TypeError('options.signal must be an AbortSignal');
  }
  const regs = new RegisterPort(l.regs);
  if (regs.dbCas(DB.DRIVER_ATTACHED, 0, 1) !== 0) throw new LoopbackError('ALREADY_ATTACHED', 'the link already has a driver side');
  try {
    const requireId = options.requireDeviceId ?? true;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const seen = regs.db(DB.PRESENCE);
      if (regs.db(DB.DEVICE_ATTACHED) === 1) {
        const magic = regs.read32(R.MAGIC_VALUE);
        if (magic !== VIRTIO_MMIO_MAGIC) {
          throw new LoopbackError('BAD_MAGIC', `MagicValue reads 0x${magic.toString(16)}, not 0x74726976 ("virt", VIRTIO 1.2 §4.2.2)`);
        }
        const version = regs.read32(R.VERSION);
        if (version !== VIRTIO_MMIO_VERSION) {
          throw new LoopbackError('BAD_VERSION', `Version reads ${version}, not 2 (VIRTIO 1.2 §4.2.2; 1 is the legacy interface, §4.2.4)`);
        }
        if (!requireId || regs.read32(R.DEVICE_ID) !== 0) break;
      }
      if (signal?.aborted === true) throw new LoopbackError('ABORTED', 'aborted while waiting for the device', { cause: signal.reason });
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new LoopbackError(
          'TIMEOUT',
          regs.db(DB.DEVICE_ATTACHED) === 1
            ? `DeviceID still reads 0 after ${waitMs} ms: no vhost driver created the device's queues`
            : `no device attached to the link within ${waitMs} ms`,
        );
      }
      await regs.wait(DB.PRESENCE, seen, Math.min(left, WAIT_SLICE_MS));
    }
    return makeTransport(l, regs, options);
  } catch (e) {
    regs.dbStore(DB.DRIVER_ATTACHED, 0);
    throw e;
  }
}

/**
 * Attaches the driver side to a link ({@link openVirtio}) and registers a
 * `VirtioDevice` over it on `bus` (Linux `virtio_mmio_probe` → `register_virtio_device`);
 * a matching virtio driver probes it. `close()` unregisters it.
 *
 * @public
 */
export async function attachVirtio(link: LoopbackLink, bus: VirtioBus, options: LoopbackVirtioOptions = {}): Promise<LoopbackVirtioTransport> {
  if (typeof bus !== 'object' || bus === null || typeof bus.registerDevice !== 'function') throw new TypeError('bus must be a VirtioBus');
  const t = await openVirtio(link, options);
  try {
    const dev = t.createDevice(options.name);
    setBusOf(t, bus);
    await bus.registerDevice(dev);
  } catch (e) {
    await t.close();
    throw e;
  }
  return t;
}
