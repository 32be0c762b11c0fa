import {
  ArrayBufferMemory,
  RegionMemory,
  Virtqueue,
  availRingSize,
  descTableSize,
  usedRingSize,
  vringModernLayout,
  layoutSpan,
} from '@x/vring';
import {
  GenPool,
  VIRTIO_BUFFER_ALIGN,
  VIRTIO_F,
  VIRTIO_ID,
  VirtioDevice,
  featuresFromBits,
  type VirtioBuffer,
  type VirtioConfigOps,
  type VirtioDeviceId,
  type VirtioRingOptions,
  type VirtqueueSpec,
} from '@x/virtio-core';
import { FAKE_REG, FakeDeviceModel, type FakeRegisterBlock } from './fake-device-model.js';

/** Options of {@link FakeVirtioTransport}. @public */
export interface FakeVirtioTransportOptions {
  /** Device identity. Default `{ device: VIRTIO_ID.RPMSG (7), vendor: 0x1af4 }`. */
  id?: VirtioDeviceId;
  /** Features the device offers. Default VERSION_1 | EVENT_IDX | INDIRECT_DESC. */
  features?: bigint;
  /** Initial configuration space. Default 16 zero bytes. */
  config?: Uint8Array;
  /** Queues the device has. Default 2. */
  numQueues?: number;
  /** QueueNumMax of every queue (a power of two). Default 256. */
  maxQueueSize?: number;
  /** The device echoes queue 1 (tx) into queue 0 (rx). Default false. */
  echo?: boolean;
  /** Ops answer with Promises (like a command protocol) instead of values. Default true. */
  asyncOps?: boolean;
  /** Provide the `generation` op. Default true. */
  generation?: boolean;
  /** Provide allocBuffer / freeBuffer ops; otherwise declare a dmaRegion. Default false. */
  allocBuffer?: boolean;
  /** Bytes of buffer memory after the rings. Default 1 MiB. */
  dmaSize?: number;
  /** Indirect table entries per buffer when INDIRECT_DESC is negotiated. Default 8. */
  indirectSegments?: number;
  /** Bus address of the driver's memory. Default 0x4000_0000. */
  driverBase?: number;
  /** Where the device keeps the same bytes locally (it reaches them through a window). Default 0x8_0000_0000. */
  deviceBase?: number;
}

/** The ops of `VirtioConfigOps` a fault can be injected into. @public */
export type FakeOpName =
  | 'getFeatures'
  | 'finalizeFeatures'
  | 'getStatus'
  | 'setStatus'
  | 'reset'
  | 'findVqs'
  | 'delVqs'
  | 'getConfig'
  | 'setConfig'
  | 'generation'
  | 'allocBuffer'
  | 'freeBuffer';

/** A fault of one op: never answer, or throw. @public */
export type FakeFault = 'hang' | 'throw';

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/**
 * A test double of a virtio transport, in the shape of virtio-mmio (VIRTIO 1.2 §4.2.2):
 * the driver side ({@link FakeVirtioTransport.ops}) reaches its {@link FakeDeviceModel}
 * only through a register block, the memory and one interrupt line, as the model rule
 * requires. The device sees the driver's memory through a window onto its own mapping
 * of the same bytes at another address (as Linux `vringh_test` does).
 *
 * Scriptable through {@link FakeVirtioTransport.model} (the far end) and
 * {@link FakeVirtioTransport.fault} (a hanging or throwing op).
 *
 * @public
 */
export class FakeVirtioTransport {
  /** Device identity. */
  readonly id: VirtioDeviceId;
  /** The far end: the device model behind the registers. */
  readonly model: FakeDeviceModel;
  /** The driver's memory (rings and buffers), at `driverBase`. */
  readonly memory: ArrayBufferMemory;
  /** The transport contract, over the registers. */
  readonly ops: VirtioConfigOps;
  /** Where the buffer area starts (the dmaRegion, or the allocBuffer pool). */
  readonly dmaAddr: number;
  /** Size of the buffer area. */
  readonly dmaSize: number;

  readonly #regs: FakeRegisterBlock;
  readonly #slot: number;
  readonly #segs: number;
  readonly #faults = new Map<FakeOpName, FakeFault>();
  #vqs: Virtqueue[] = [];
  #device: VirtioDevice | undefined;
  #disposed = false;

  constructor(options: FakeVirtioTransportOptions = {}) {
    const F = VIRTIO_F;
    this.id = options.id ?? { device: VIRTIO_ID.RPMSG, vendor: 0x1af4 };
    const numQueues = options.numQueues ?? 2;
    const maxQueueSize = options.maxQueueSize ?? 256;
    const segs = options.indirectSegments ?? 8;
    const driverBase = options.driverBase ?? 0x4000_0000;
    const deviceBase = options.deviceBase ?? 0x8_0000_0000;
    const dmaSize = options.dmaSize ?? 1 << 20;
    // One slot per queue: ring at its minimum alignments, then the indirect tables.
    const ring = alignUp(alignUp(descTableSize(maxQueueSize) + availRingSize(maxQueueSize), 4) + usedRingSize(maxQueueSize), 16);
    this.#slot = alignUp(ring + maxQueueSize * segs * 16, 4096);
    this.#segs = segs;
    const total = numQueues * this.#slot + dmaSize;
    const buffer = new ArrayBuffer(total);
    this.memory = new ArrayBufferMemory(buffer, { base: driverBase, name: 'fake driver memory' });
    const local = new ArrayBufferMemory(buffer, { base: deviceBase, name: 'fake device local memory' });
    const window = new RegionMemory({ name: 'fake device window' });
    window.map({ busAddr: driverBase, size: total, target: local, targetAddr: deviceBase, name: 'driver memory' });
    this.dmaAddr = driverBase + numQueues * this.#slot;
    this.dmaSize = dmaSize;
    this.model = new FakeDeviceModel({
      id: this.id,
      features: options.features ?? featuresFromBits([F.VERSION_1, F.EVENT_IDX, F.INDIRECT_DESC]),
      config: options.config ?? new Uint8Array(16),
      numQueues,
      maxQueueSize,
      echo: options.echo ?? false,
      memory: window,
    });
    this.#regs = this.model;
    this.model.connectIrq(() => this.#interrupt());
    this.ops = this.#buildOps(options);
  }

  /** The queues of the last findVqs. */
  get vqs(): readonly Virtqueue[] {
    return this.#vqs;
  }

  /** Makes one op hang (never answer) or throw, or clears its fault. */
  fault(op: FakeOpName, fault: FakeFault | undefined): void {
    if (fault === undefined) this.#faults.delete(op);
    else this.#faults.set(op, fault);
  }

  /**
   * A `VirtioDevice` over this transport, which the transport delivers
   * configuration-change interrupts to (Linux: the transport allocates the
   * `virtio_device` it registers).
   */
  createDevice(name?: string): VirtioDevice {
    const dev = new VirtioDevice({ id: this.id, ops: this.ops, ...(name !== undefined ? { name } : {}) });
    this.#device = dev;
    return dev;
  }

  /** Resolves once neither side has queued work (doorbells, interrupts). */
  async idle(): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      await new Promise<void>((r) => setImmediate(r));
      if (!this.model.busy) return;
    }
    throw new Error('FakeVirtioTransport.idle: still busy after 10000 turns');
  }

  /** Stops the device model and forgets the device. */
  dispose(): void {
    this.#disposed = true;
    this.model.dispose();
    this.#device = undefined;
    this.#vqs = [];
  }

  /** The interrupt handler (virtio-mmio `vm_interrupt`). */
  #interrupt(): void {
    if (this.#disposed) return;
    const regs = this.#regs;
    const status = regs.read32(FAKE_REG.INTERRUPT_STATUS);
    if (status === 0) return;
    regs.write32(FAKE_REG.INTERRUPT_ACK, status);
    if ((status & 1) !== 0) {
      for (const vq of this.#vqs) {
        try {
          vq.interrupt();
        } catch {
          // A broken queue stays broken; the driver sees it on its next call.
        }
      }
    }
    if ((status & 2) !== 0 && this.#device !== undefined) void this.#device.notifyConfigChanged();
  }

  #buildOps(options: FakeVirtioTransportOptions): VirtioConfigOps {
    const regs = this.#regs;
    const asyncOps = options.asyncOps ?? true;
    const wrap = <A extends unknown[], R>(name: FakeOpName, f: (...args: A) => R) =>
      (...args: A): R | Promise<R> => {
        const fault = this.#faults.get(name);
        if (fault === 'hang') return new Promise<R>(() => undefined);
        const run = (): R => {
          if (fault === 'throw') throw new Error(`injected fault in ${name}`);
          return f(...args);
        };
        return asyncOps ? Promise.resolve().then(run) : run();
      };
    const configSize = this.model.config.length;
    const checkConfig = (offset: number, len: number): void => {
      if (offset + len > configSize) throw new RangeError(`config access ${offset}+${len} beyond ${configSize} bytes`);
    };
    const ops: {
      -readonly [K in keyof VirtioConfigOps]: VirtioConfigOps[K];
    } = {
      getFeatures: wrap('getFeatures', () => {
        regs.write32(FAKE_REG.DEVICE_FEATURES_SEL, 1);
        const hi = regs.read32(FAKE_REG.DEVICE_FEATURES);
        regs.write32(FAKE_REG.DEVICE_FEATURES_SEL, 0);
        const lo = regs.read32(FAKE_REG.DEVICE_FEATURES);
        return (BigInt(hi) << 32n) | BigInt(lo);
      }),
      finalizeFeatures: wrap('finalizeFeatures', (f: bigint) => {
        regs.write32(FAKE_REG.DRIVER_FEATURES_SEL, 1);
        regs.write32(FAKE_REG.DRIVER_FEATURES, Number((f >> 32n) & 0xffffffffn));
        regs.write32(FAKE_REG.DRIVER_FEATURES_SEL, 0);
        regs.write32(FAKE_REG.DRIVER_FEATURES, Number(f & 0xffffffffn));
      }),
      getStatus: wrap('getStatus', () => regs.read32(FAKE_REG.STATUS) & 0xff),
      setStatus: wrap('setStatus', (s: number) => regs.write32(FAKE_REG.STATUS, s)),
      reset: wrap('reset', () => {
        regs.write32(FAKE_REG.STATUS, 0);
      }),
      findVqs: wrap('findVqs', (specs: readonly VirtqueueSpec[], ring: VirtioRingOptions) => this.#findVqs(specs, ring)),
      delVqs: wrap('delVqs', () => this.#delVqs()),
      getConfig: wrap('getConfig', (offset: number, dst: Uint8Array) => {
        checkConfig(offset, dst.length);
        for (let i = 0; i < dst.length; i++) dst[i] = regs.read8(FAKE_REG.CONFIG + offset + i);
      }),
      setConfig: wrap('setConfig', (offset: number, src: Uint8Array) => {
        checkConfig(offset, src.length);
        for (let i = 0; i < src.length; i++) regs.write8(FAKE_REG.CONFIG + offset + i, src[i]!);
      }),
    };
    if (options.generation ?? true) ops.generation = wrap('generation', () => regs.read32(FAKE_REG.CONFIG_GENERATION));
    if (options.allocBuffer ?? false) {
      const pool = new GenPool({ base: this.dmaAddr, size: this.dmaSize, align: VIRTIO_BUFFER_ALIGN });
      ops.allocBuffer = wrap('allocBuffer', (size: number): VirtioBuffer => {
        const addr = pool.alloc(size);
        if (addr < 0) throw new Error(`fake transport: no ${size}-byte buffer left`);
        return { addr, size, view: this.memory.view(addr, size) };
      });
      ops.freeBuffer = wrap('freeBuffer', (buf: VirtioBuffer) => {
        pool.free(buf.addr);
      });
    } else {
      ops.dmaRegion = Object.freeze({ memory: this.memory, addr: this.dmaAddr, size: this.dmaSize });
    }
    return ops;
  }

  /** virtio-mmio `vm_find_vqs` / `vm_setup_vq`. */
  #findVqs(specs: readonly VirtqueueSpec[], ring: VirtioRingOptions): Virtqueue[] {
    const regs = this.#regs;
    if (specs.length > this.model.numQueues) throw new Error(`the device has ${this.model.numQueues} queues, ${specs.length} asked`);
    const vqs: Virtqueue[] = [];
    try {
      specs.forEach((spec, i) => {
        regs.write32(FAKE_REG.QUEUE_SEL, i);
        if (regs.read32(FAKE_REG.QUEUE_READY) !== 0) throw new Error(`queue ${i} is already set up`);
        const max = regs.read32(FAKE_REG.QUEUE_NUM_MAX);
        if (max === 0) throw new Error(`queue ${i} does not exist`);
        let num = Math.min(spec.size ?? max, max);
        while ((num & (num - 1)) !== 0) num &= num - 1;
        const base = this.memory.base + i * this.#slot;
        const layout = vringModernLayout(num, { desc: base });
        const indirectArea = alignUp(layoutSpan(layout).end, 16);
        // The driver owns and zeroes the ring before the device may look at it.
        const vq = new Virtqueue({
          memory: this.memory,
          layout,
          index: i,
          name: spec.name,
          eventIdx: ring.eventIdx,
          ...(ring.indirect && this.#segs >= 2 ? { indirect: { area: indirectArea, maxSegments: this.#segs } } : {}),
          notify: (q) => {
            regs.write32(FAKE_REG.QUEUE_NOTIFY, q.index);
          },
          ...(spec.callback !== undefined ? { callback: spec.callback } : {}),
        });
        regs.write32(FAKE_REG.QUEUE_NUM, num);
        for (const [lo, hi, a] of [
          [FAKE_REG.QUEUE_DESC_LOW, FAKE_REG.QUEUE_DESC_HIGH, layout.desc],
          [FAKE_REG.QUEUE_DRIVER_LOW, FAKE_REG.QUEUE_DRIVER_HIGH, layout.avail],
          [FAKE_REG.QUEUE_DEVICE_LOW, FAKE_REG.QUEUE_DEVICE_HIGH, layout.used],
        ] as const) {
          regs.write32(lo, a % 0x1_0000_0000);
          regs.write32(hi, Math.floor(a / 0x1_0000_0000));
        }
        regs.write32(FAKE_REG.QUEUE_READY, 1);
        vqs.push(vq);
      });
    } catch (e) {
      this.#vqs = vqs;
      this.#delVqs();
      throw e;
    }
    this.#vqs = vqs;
    return vqs;
  }

  #delVqs(): void {
    const regs = this.#regs;
    for (let i = 0; i < this.#vqs.length; i++) {
      regs.write32(FAKE_REG.QUEUE_SEL, i);
      regs.write32(FAKE_REG.QUEUE_READY, 0);
    }
    this.#vqs = [];
  }
}
