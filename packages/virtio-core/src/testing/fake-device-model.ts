import { Vringh, VringIov, vringModernLayout, type GuestMemory } from '@x/vring';
import { VIRTIO_CONFIG_S, VIRTIO_F, VIRTIO_MMIO, VIRTIO_MMIO_MAGIC, type VirtioDeviceId } from '@x/virtio-core';

/**
 * Register offsets of the fake's register block: the virtio-mmio layout
 * (`VIRTIO_MMIO` of the main entry, VIRTIO 1.2 §4.2.2), so the fake reads like a real
 * transport.
 *
 * @public
 */
export const FAKE_REG = VIRTIO_MMIO;

const MAGIC = VIRTIO_MMIO_MAGIC;
/** InterruptStatus bits (§4.2.2). */
const INT_VRING = 1;
const INT_CONFIG = 2;

/**
 * A register block as the driver side sees it: 8- and 32-bit accesses at offsets.
 * Reads and writes may have side effects, as on real MMIO.
 *
 * @public
 */
export interface FakeRegisterBlock {
  /** Reads a 32-bit register. */
  read32(offset: number): number;
  /** Writes a 32-bit register. */
  write32(offset: number, value: number): void;
  /** Reads one byte (configuration space). */
  read8(offset: number): number;
  /** Writes one byte (configuration space). */
  write8(offset: number, value: number): void;
}

/** Options of {@link FakeDeviceModel}. @public */
export interface FakeDeviceModelOptions {
  /** Device and vendor IDs. */
  id: VirtioDeviceId;
  /** Features offered. */
  features: bigint;
  /** Initial configuration space. */
  config: Uint8Array;
  /** Number of queues. */
  numQueues: number;
  /** QueueNumMax of every queue. */
  maxQueueSize: number;
  /** Run the echo function on queues 0 (rx) and 1 (tx). */
  echo: boolean;
  /** The memory as the device sees it (the driver's bus addresses). */
  memory: GuestMemory;
}

interface QueueState {
  num: number;
  ready: boolean;
  desc: number[];
  driver: number[];
  device: number[];
  vrh: Vringh | undefined;
}

/**
 * The device side of {@link FakeVirtioTransport}: a virtio device behind a register
 * block, a memory and an interrupt line, and nothing else. Tests script it (features
 * offered, refusing FEATURES_OK, config changes, DEVICE_NEEDS_RESET) and observe it
 * (status writes, generation reads).
 *
 * With `echo`, queue 0 takes device-writable buffers (rx) and queue 1 device-readable
 * ones (tx): the bytes of each tx buffer come back in the next rx buffer, in order.
 * It touches no ring before DRIVER_OK and treats the rings as hostile (a malformed
 * chain sets DEVICE_NEEDS_RESET).
 *
 * @public
 */
export class FakeDeviceModel implements FakeRegisterBlock {
  /** Device and vendor IDs. */
  readonly id: VirtioDeviceId;
  /** Number of queues. */
  readonly numQueues: number;
  /** QueueNumMax of every queue. */
  readonly maxQueueSize: number;
  /** Echo function on. */
  readonly echo: boolean;
  /** Features offered (scriptable). */
  offeredFeatures: bigint;
  /** Clear FEATURES_OK whatever the driver accepted (scriptable, §3.1.1 step 6). */
  refuseFeaturesOk = false;
  /** Every status byte the driver wrote, in order (0 for a reset). */
  readonly statusWrites: number[] = [];
  /** Reads of ConfigGeneration. */
  generationReads = 0;
  /** Chains echoed. */
  echoed = 0;

  readonly #memory: GuestMemory;
  readonly #config: Uint8Array;
  readonly #queues: QueueState[];
  #status = 0;
  #needsReset = false;
  #driverFeatures = 0n;
  #devFeatSel = 0;
  #drvFeatSel = 0;
  #queueSel = 0;
  #isr = 0;
  #generation = 0;
  #unstableReads = 0;
  #mutate: (config: Uint8Array) => void = (c) => {
    if (c.length > 0) c[0] = (c[0]! + 1) & 0xff;
  };
  #changedSinceGenRead = false;
  #irq: (() => void) | undefined;
  #irqScheduled = false;
  #workScheduled = false;
  #epoch = 0;
  #disposed = false;
  #txHead = -1;
  readonly #triov = new VringIov(64);
  readonly #twiov = new VringIov(64);
  readonly #rriov = new VringIov(64);
  readonly #rwiov = new VringIov(64);
  readonly #scratch = new Uint8Array(4096);

  constructor(options: FakeDeviceModelOptions) {
    this.id = options.id;
    this.offeredFeatures = options.features;
    this.#config = new Uint8Array(options.config);
    this.numQueues = options.numQueues;
    this.maxQueueSize = options.maxQueueSize;
    this.echo = options.echo;
    this.#memory = options.memory;
    this.#queues = Array.from({ length: options.numQueues }, () => ({
      num: 0,
      ready: false,
      desc: [0, 0],
      driver: [0, 0],
      device: [0, 0],
      vrh: undefined,
    }));
  }

  /** The status byte as the device holds it (including DEVICE_NEEDS_RESET). */
  get status(): number {
    return this.#status | (this.#needsReset ? VIRTIO_CONFIG_S.NEEDS_RESET : 0);
  }

  /** The features the driver wrote. */
  get driverFeatures(): bigint {
    return this.#driverFeatures;
  }

  /** The configuration generation counter. */
  get generation(): number {
    return this.#generation;
  }

  /** A copy of configuration space. */
  get config(): Uint8Array {
    return new Uint8Array(this.#config);
  }

  /** True while the model has queued work (doorbells or an interrupt) not yet run. */
  get busy(): boolean {
    return this.#irqScheduled || this.#workScheduled;
  }

  /** Connects the interrupt line (the transport's interrupt handler). */
  connectIrq(line: (() => void) | undefined): void {
    this.#irq = line;
  }

  /**
   * The device changes configuration space (§2.5.1): the generation moves on, and a
   * configuration-change interrupt is raised when DRIVER_OK is set.
   */
  setConfig(offset: number, bytes: Uint8Array): void {
    this.#config.set(bytes, offset);
    this.#generation = (this.#generation + 1) >>> 0;
    if ((this.#status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0) this.#raise(INT_CONFIG);
  }

  /**
   * The next `reads` config reads each see the device change configuration space in
   * the middle (the generation moves on between the driver's two generation reads).
   * `mutate` makes the change; default: increment byte 0.
   */
  changeConfigDuringReads(reads: number, mutate?: (config: Uint8Array) => void): void {
    this.#unstableReads = reads;
    if (mutate !== undefined) this.#mutate = mutate;
  }

  /** Sets DEVICE_NEEDS_RESET and raises a configuration-change interrupt (§2.1.2). */
  injectNeedsReset(): void {
    this.#needsReset = true;
    this.#raise(INT_CONFIG);
  }

  /** Stops the model: no more work, no more interrupts. */
  dispose(): void {
    this.#disposed = true;
    this.#epoch++;
    this.#irq = undefined;
  }

  /** {@inheritDoc FakeRegisterBlock.read32} */
  read32(offset: number): number {
    const q = this.#queues[this.#queueSel];
    switch (offset) {
      case FAKE_REG.MAGIC_VALUE:
        return MAGIC;
      case FAKE_REG.VERSION:
        return 2;
      case FAKE_REG.DEVICE_ID:
        return this.id.device;
      case FAKE_REG.VENDOR_ID:
        return this.id.vendor;
      case FAKE_REG.DEVICE_FEATURES:
        return this.#devFeatSel > 1 ? 0 : Number((this.offeredFeatures >> BigInt(32 * this.#devFeatSel)) & 0xffffffffn);
      case FAKE_REG.QUEUE_NUM_MAX:
        return q === undefined ? 0 : this.maxQueueSize;
      case FAKE_REG.QUEUE_NUM:
        return q?.num ?? 0;
      case FAKE_REG.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case FAKE_REG.INTERRUPT_STATUS:
        return this.#isr;
      case FAKE_REG.STATUS:
        return this.status;
      case FAKE_REG.CONFIG_GENERATION:
        this.generationReads++;
        this.#changedSinceGenRead = false;
        return this.#generation;
      default:
        return 0;
    }
  }

  /** {@inheritDoc FakeRegisterBlock.write32} */
  write32(offset: number, value: number): void {
    const v = value >>> 0;
    const q = this.#queues[this.#queueSel];
    switch (offset) {
      case FAKE_REG.DEVICE_FEATURES_SEL:
        this.#devFeatSel = v;
        return;
      case FAKE_REG.DRIVER_FEATURES_SEL:
        this.#drvFeatSel = v;
        return;
      case FAKE_REG.DRIVER_FEATURES: {
        if (this.#drvFeatSel > 1) return;
        const shift = BigInt(32 * this.#drvFeatSel);
        this.#driverFeatures = (this.#driverFeatures & ~(0xffffffffn << shift)) | (BigInt(v) << shift);
        return;
      }
      case FAKE_REG.QUEUE_SEL:
        this.#queueSel = v;
        return;
      case FAKE_REG.QUEUE_NUM:
        if (q !== undefined) q.num = v;
        return;
      case FAKE_REG.QUEUE_DESC_LOW:
      case FAKE_REG.QUEUE_DESC_HIGH:
        if (q !== undefined) q.desc[offset === FAKE_REG.QUEUE_DESC_LOW ? 0 : 1] = v;
        return;
      case FAKE_REG.QUEUE_DRIVER_LOW:
      case FAKE_REG.QUEUE_DRIVER_HIGH:
        if (q !== undefined) q.driver[offset === FAKE_REG.QUEUE_DRIVER_LOW ? 0 : 1] = v;
        return;
      case FAKE_REG.QUEUE_DEVICE_LOW:
      case FAKE_REG.QUEUE_DEVICE_HIGH:
        if (q !== undefined) q.device[offset === FAKE_REG.QUEUE_DEVICE_LOW ? 0 : 1] = v;
        return;
      case FAKE_REG.QUEUE_READY:
        if (q !== undefined) this.#setReady(q, v === 1);
        return;
      case FAKE_REG.QUEUE_NOTIFY:
        if (v < this.#queues.length) this.#schedule();
        return;
      case FAKE_REG.INTERRUPT_ACK:
        this.#isr &= ~v;
        return;
      case FAKE_REG.STATUS:
        this.#writeStatus(v & 0xff);
        return;
      default:
        return;
    }
  }

  /** {@inheritDoc FakeRegisterBlock.read8} */
  read8(offset: number): number {
    if (offset === FAKE_REG.STATUS) return this.status;
    const i = offset - FAKE_REG.CONFIG;
    if (i < 0 || i >= this.#config.length) return 0;
    if (this.#unstableReads > 0 && !this.#changedSinceGenRead) {
      // The device updates its configuration while the driver is reading it.
      this.#unstableReads--;
      this.#changedSinceGenRead = true;
      this.#mutate(this.#config);
      this.#generation = (this.#generation + 1) >>> 0;
    }
    return this.#config[i]!;
  }

  /** {@inheritDoc FakeRegisterBlock.write8} */
  write8(offset: number, value: number): void {
    if (offset === FAKE_REG.STATUS) {
      this.#writeStatus(value & 0xff);
      return;
    }
    const i = offset - FAKE_REG.CONFIG;
    if (i >= 0 && i < this.#config.length) this.#config[i] = value & 0xff;
  }

  #writeStatus(v: number): void {
    this.statusWrites.push(v);
    if (v === 0) {
      this.#reset();
      return;
    }
    const S = VIRTIO_CONFIG_S;
    let next = v & ~S.NEEDS_RESET;
    const newly = next & ~this.#status;
    if ((newly & S.FEATURES_OK) !== 0) {
      // §3.1.1 step 6: the device clears FEATURES_OK when it does not accept the features.
      const unoffered = this.#driverFeatures & ~this.offeredFeatures;
      if (this.refuseFeaturesOk || unoffered !== 0n) next &= ~S.FEATURES_OK;
    }
    this.#status = next;
    if ((newly & S.DRIVER_OK) !== 0) this.#schedule();
  }

  #reset(): void {
    this.#epoch++;
    this.#status = 0;
    this.#needsReset = false;
    this.#driverFeatures = 0n;
    this.#devFeatSel = 0;
    this.#drvFeatSel = 0;
    this.#queueSel = 0;
    this.#isr = 0;
    this.#txHead = -1;
    for (const q of this.#queues) {
      q.num = 0;
      q.ready = false;
      q.desc = [0, 0];
      q.driver = [0, 0];
      q.device = [0, 0];
      q.vrh = undefined;
    }
  }

  #setReady(q: QueueState, ready: boolean): void {
    q.ready = ready;
    q.vrh = undefined;
    if (q === this.#queues[1]) this.#txHead = -1;
    if (!ready) return;
    const addr = (w: number[]): number => w[1]! * 0x1_0000_0000 + w[0]!;
    try {
      if (q.num > this.maxQueueSize) throw new RangeError(`QueueNum ${q.num} > QueueNumMax ${this.maxQueueSize}`);
      const layout = vringModernLayout(q.num, { desc: addr(q.desc), avail: addr(q.driver), used: addr(q.device) });
      q.vrh = new Vringh({
        memory: this.#memory,
        layout,
        eventIdx: ((this.#driverFeatures >> BigInt(VIRTIO_F.EVENT_IDX)) & 1n) === 1n,
        indirect: ((this.#driverFeatures >> BigInt(VIRTIO_F.INDIRECT_DESC)) & 1n) === 1n,
      });
    } catch {
      this.#fail();
    }
  }

  /** The device hit an error it cannot recover from (§2.1.2). */
  #fail(): void {
    this.#needsReset = true;
    this.#txHead = -1;
    for (const q of this.#queues) q.vrh = undefined;
    if ((this.#status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0) this.#raise(INT_CONFIG);
  }

  #raise(bit: number): void {
    if (this.#disposed) return;
    this.#isr |= bit;
    if (this.#irqScheduled) return;
    this.#irqScheduled = true;
    queueMicrotask(() => {
      this.#irqScheduled = false;
      // A reset in the meantime cleared InterruptStatus: the interrupt is gone.
      if (this.#disposed || this.#isr === 0) return;
      this.#irq?.();
    });
  }

  #schedule(): void {
    if (this.#workScheduled || this.#disposed) return;
    this.#workScheduled = true;
    const epoch = this.#epoch;
    queueMicrotask(() => {
      this.#workScheduled = false;
      if (epoch === this.#epoch && !this.#disposed) this.#process();
    });
  }

  /** The echo function: bounded work per doorbell, like a vhost worker's budget. */
  #process(): void {
    if (!this.echo || this.#needsReset || (this.#status & VIRTIO_CONFIG_S.DRIVER_OK) === 0) return;
    const rx = this.#queues[0]?.vrh;
    const tx = this.#queues[1]?.vrh;
    if (rx === undefined || tx === undefined) return;
    let total = 0;
    try {
      for (let round = 0; round < 8; round++) {
        total += this.#echoBatch(rx, tx);
        // Ask for the next doorbell (EVENT_IDX: avail_event = last_avail_idx), then look
        // again for chains that raced with it, as vhost's handle_* loops do.
        const rxEmpty = rx.notifyEnable();
        const txEmpty = tx.notifyEnable();
        if (rxEmpty || (txEmpty && this.#txHead < 0)) break;
      }
      if (total > 0) {
        // Both counters must be consumed: no short-circuit.
        const a = rx.needNotify();
        const b = tx.needNotify();
        if (a || b) this.#raise(INT_VRING);
      }
      if ((this.#txHead >= 0 || tx.hasAvail()) && rx.hasAvail()) this.#schedule();
    } catch {
      this.#fail();
    }
  }

  #echoBatch(rx: Vringh, tx: Vringh): number {
    let moved = 0;
    while (moved < tx.num) {
      if (this.#txHead < 0) {
        this.#txHead = tx.getDesc(this.#triov, this.#twiov);
        if (this.#txHead < 0) break;
      }
      const rh = rx.getDesc(this.#rriov, this.#rwiov);
      if (rh < 0) break;
      let len = 0;
      for (;;) {
        const n = tx.pull(this.#triov, this.#scratch);
        if (n === 0) break;
        const m = rx.push(this.#rwiov, this.#scratch, 0, n);
        len += m;
        if (m < n) break;
      }
      rx.addUsed(rh, len);
      tx.addUsed(this.#txHead, 0);
      this.#txHead = -1;
      moved++;
      this.echoed++;
    }
    rx.flushUsed();
    tx.flushUsed();
    return moved;
  }
}
