import { Virtqueue, availRingSize, descTableSize, usedRingSize, vringModernLayout } from '@x/vring';
import {
  GenPool,
  VIRTIO_CONFIG_S,
  VirtioDevice,
  type VirtioConfigOps,
  type VirtioDeviceId,
  type VirtioDmaRegion,
  type VirtioRingOptions,
  type VirtqueueSpec,
} from '@x/virtio-core';
import { PCI_CAP_ID, VIRTIO_MSI_NO_VECTOR, VIRTIO_PCI_CAP, VIRTIO_PCI_COMMON, VIRTIO_PCI_ID, VIRTIO_PCI_ISR } from '../constants.js';
import { PciEpfError } from '../errors.js';
import type { PciBarMmio, PciIrqType, PciRootComplex } from '../hw/root-complex.js';
import { alignUp, checkInt, hex, split64 } from '../internal/util.js';

const VERSION_1 = 1n << 32n;

/** Where one virtio-pci structure lives, from its capability (VIRTIO 1.2 §4.1.4). @public */
export interface VirtioPciRegion {
  /** The BAR. */
  readonly bar: number;
  /** Offset in the BAR. */
  readonly offset: number;
  /** Length. */
  readonly length: number;
}

/** The virtio-pci structures of a function, from its capabilities. @public */
export interface VirtioPciCaps {
  /** Common configuration. */
  readonly common: VirtioPciRegion;
  /** Notification area. */
  readonly notify: VirtioPciRegion;
  /** `notify_off_multiplier`. */
  readonly notifyOffMultiplier: number;
  /** ISR status. */
  readonly isr: VirtioPciRegion;
  /** Device configuration, when present. */
  readonly device: VirtioPciRegion | undefined;
}

/**
 * Walks an enumerated function's vendor capabilities for the virtio-pci structures
 * (Linux `virtio_pci_find_capability`: the first of each type whose BAR is implemented
 * and holds it). `NOT_FOUND` when COMMON, NOTIFY or ISR is missing.
 *
 * @public
 */
export function readVirtioPciCaps(rc: PciRootComplex): VirtioPciCaps {
  const info = rc.info ?? rc.enumerate();
  const found = new Map<number, VirtioPciRegion>();
  let mult = 0;
  for (const cap of info.capabilities) {
    if (cap.id !== PCI_CAP_ID.VNDR) continue;
    const type = rc.configRead(cap.offset + VIRTIO_PCI_CAP.CFG_TYPE, 1);
    const bar = rc.configRead(cap.offset + VIRTIO_PCI_CAP.BAR, 1);
    if (found.has(type) || !info.bars.some((b) => b.barno === bar)) continue;
    const offset = rc.configRead(cap.offset + VIRTIO_PCI_CAP.OFFSET, 4);
    const length = rc.configRead(cap.offset + VIRTIO_PCI_CAP.LENGTH, 4);
    if (offset + length > rc.bar(bar).size) continue;
    found.set(type, Object.freeze({ bar, offset, length }));
    if (type === VIRTIO_PCI_CAP.NOTIFY_CFG) mult = rc.configRead(cap.offset + VIRTIO_PCI_CAP.NOTIFY_OFF_MULTIPLIER, 4);
  }
  const common = found.get(VIRTIO_PCI_CAP.COMMON_CFG);
  const notify = found.get(VIRTIO_PCI_CAP.NOTIFY_CFG);
  const isr = found.get(VIRTIO_PCI_CAP.ISR_CFG);
  if (common === undefined || notify === undefined || isr === undefined) {
    throw new PciEpfError('NOT_FOUND', `virtio-pci capabilities missing: ${[!common && 'COMMON', !notify && 'NOTIFY', !isr && 'ISR'].filter(Boolean).join(', ')}`);
  }
  if (common.length < 0x38) throw new PciEpfError('NOT_FOUND', `common configuration is ${common.length} bytes, less than VIRTIO 1.0's 0x38`);
  return Object.freeze({ common, notify, notifyOffMultiplier: mult, isr, device: found.get(VIRTIO_PCI_CAP.DEVICE_CFG) });
}

/** Options of {@link VirtioPciModern.probe}. @public */
export interface VirtioPciModernOptions {
  /** Interrupt types to try, in order. Default MSI-X, then INTx (Linux virtio_pci never uses MSI). */
  readonly irqTypes?: readonly PciIrqType[];
  /** How long a reset may take before `TIMEOUT`, ms. Default 1000. */
  readonly resetTimeoutMs?: number;
  /** Bytes of RC memory kept for rings; the rest is the buffer region. Default 512 KiB. */
  readonly ringArea?: number;
  /** Indirect-table entries per buffer when INDIRECT_DESC is negotiated. Default 8. */
  readonly indirectSegments?: number;
}

/** Counters of a {@link VirtioPciModern}. @public */
export interface VirtioPciModernStats {
  /** Notification writes. */
  kicks: number;
  /** Interrupts handled. */
  interrupts: number;
}

interface ModernQueueState {
  readonly vq: Virtqueue;
  readonly slot: number;
  readonly notifyBar: PciBarMmio;
  readonly notifyOffset: number;
  vector: number;
}

/**
 * A stock virtio-pci modern driver (Linux `virtio_pci_modern.c` /
 * `virtio_pci_modern_dev.c`): it finds the device by its ids (0x1AF4:0x1040 + id), its
 * structures by their vendor capabilities, and drives `virtio_pci_common_cfg` through
 * plain register reads and writes in the order Linux does. It knows nothing of the
 * endpoint: over the model, the common configuration is emulated by the endpoint
 * function and notifications are the controller's doorbell.
 *
 * @public
 */
export class VirtioPciModern implements VirtioConfigOps {
  /** The root complex. */
  readonly rc: PciRootComplex;
  /** The virtio device id (device = PCI device id − 0x1040, vendor = subsystem vendor id, as Linux). */
  readonly id: VirtioDeviceId;
  /** The common configuration. */
  readonly common: VirtioPciRegion;
  /** The notification area. */
  readonly notify: VirtioPciRegion;
  /** `notify_off_multiplier`. */
  readonly notifyOffMultiplier: number;
  /** The ISR byte. */
  readonly isr: VirtioPciRegion;
  /** Device configuration, when the device has it. */
  readonly deviceCfg: VirtioPciRegion | undefined;
  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.dmaRegion} */
  readonly dmaRegion: VirtioDmaRegion;
  /** Reset timeout, ms. */
  readonly resetTimeoutMs: number;
  /** Counters. */
  readonly stats: VirtioPciModernStats = { kicks: 0, interrupts: 0 };

  readonly #c: PciBarMmio;
  readonly #rings: GenPool;
  readonly #segs: number;
  readonly #irqType: PciIrqType;
  readonly #vectors: number;
  #queues: ModernQueueState[] = [];
  #device: VirtioDevice | undefined;
  #closed = false;

  private constructor(
    rc: PciRootComplex,
    id: VirtioDeviceId,
    regions: { common: VirtioPciRegion; notify: VirtioPciRegion; isr: VirtioPciRegion; device: VirtioPciRegion | undefined; mult: number },
    options: VirtioPciModernOptions,
    irqType: PciIrqType,
    vectors: number,
  ) {
    this.rc = rc;
    this.id = id;
    this.common = regions.common;
    this.notify = regions.notify;
    this.isr = regions.isr;
    this.deviceCfg = regions.device;
    this.notifyOffMultiplier = regions.mult;
    this.resetTimeoutMs = options.resetTimeoutMs ?? 1000;
    this.#c = rc.bar(regions.common.bar);
    this.#irqType = irqType;
    this.#vectors = vectors;
    const mem = rc.memory;
    const ringArea = alignUp(options.ringArea ?? 512 * 1024, 4096);
    if (ringArea >= mem.size) throw new PciEpfError('BAD_CONFIG', `ringArea ${ringArea} leaves no buffer memory in ${mem.size} bytes of RC memory`);
    this.#rings = new GenPool({ base: mem.base, size: ringArea, align: 4096 });
    this.dmaRegion = Object.freeze({ memory: mem, addr: mem.base + ringArea, size: mem.size - ringArea });
    this.#segs = options.indirectSegments ?? 8;
    if (irqType === 'intx') {
      rc.requestIrq(0, () => this.#intx());
    } else {
      rc.requestIrq(0, () => this.#vector0());
      for (let v = 1; v < vectors; v++) {
        const q = v - 1;
        rc.requestIrq(v, () => {
          this.stats.interrupts++;
          this.#queues[q]?.vq.interrupt();
        });
      }
    }
  }

  /**
   * Probes (Linux `virtio_pci_probe` + `vp_modern_probe`): matches 0x1AF4 and a modern
   * device id, walks the vendor capabilities for COMMON, NOTIFY, ISR and DEVICE, and
   * enables MSI-X or INTx. `NOT_FOUND` for another device or a missing structure.
   */
  static async probe(rc: PciRootComplex, options: VirtioPciModernOptions = {}): Promise<VirtioPciModern> {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    checkInt('options.resetTimeoutMs', options.resetTimeoutMs ?? 1000, 1, 3_600_000);
    const info = rc.info ?? rc.enumerate();
    if (info.vendorId !== VIRTIO_PCI_ID.VENDOR || info.deviceId < VIRTIO_PCI_ID.MODERN_BASE || info.deviceId > 0x107f) {
      throw new PciEpfError('NOT_FOUND', `${hex(info.vendorId)}:${hex(info.deviceId)} is not a modern virtio-pci device`);
    }
    const { common, notify, isr, device, notifyOffMultiplier: mult } = readVirtioPciCaps(rc);
    const alloc = rc.allocIrqVectors(9, options.irqTypes ?? ['msix', 'intx']);
    return new VirtioPciModern(
      rc,
      { device: info.deviceId - VIRTIO_PCI_ID.MODERN_BASE, vendor: info.subsysVendorId },
      { common, notify, isr, device, mult },
      options,
      alloc.type,
      alloc.vectors,
    );
  }

  /** The interrupt type in use. */
  get irqType(): PciIrqType {
    return this.#irqType;
  }

  /** The queues of the last findVqs. */
  get vqs(): readonly Virtqueue[] {
    return this.#queues.map((q) => q.vq);
  }

  /** A `VirtioDevice` over this transport; configuration-change interrupts reach it. */
  createDevice(name?: string): VirtioDevice {
    const dev = new VirtioDevice({ id: this.id, ops: this, ...(name === undefined ? {} : { name }) });
    this.#device = dev;
    return dev;
  }

  #r(off: number, width: 1 | 2 | 4): Promise<number> {
    if (this.#closed) return Promise.reject(new PciEpfError('BAD_STATE', 'the transport is closed'));
    return this.#c.readAsync(this.common.offset + off, width);
  }

  #w(off: number, width: 1 | 2 | 4, v: number): Promise<void> {
    if (this.#closed) return Promise.reject(new PciEpfError('BAD_STATE', 'the transport is closed'));
    return this.#c.writeAsync(this.common.offset + off, width, v);
  }

  // ---- interrupts (vp_vring_interrupt, vp_config_changed, vp_interrupt) ---------------------------

  #perQueue(): boolean {
    return this.#irqType === 'msix' && this.#vectors >= 1 + this.#queues.length;
  }

  #vector0(): void {
    this.stats.interrupts++;
    if (!this.#perQueue()) for (const q of this.#queues) q.vq.interrupt();
    this.#configChanged();
  }

  #intx(): void {
    this.stats.interrupts++;
    const isr = this.rc.bar(this.isr.bar).read8(this.isr.offset);
    if ((isr & VIRTIO_PCI_ISR.QUEUE) !== 0) for (const q of this.#queues) q.vq.interrupt();
    if ((isr & VIRTIO_PCI_ISR.CONFIG) !== 0) this.#configChanged();
  }

  #configChanged(): void {
    const dev = this.#device;
    if (dev !== undefined && (dev.status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0) void dev.notifyConfigChanged().catch(() => undefined);
  }

  // ---- VirtioConfigOps ---------------------------------------------------------------------------

  /** `vp_modern_get_features`: select 0, read; select 1, read. */
  async getFeatures(): Promise<bigint> {
    const C = VIRTIO_PCI_COMMON;
    await this.#w(C.DFSELECT, 4, 0);
    const lo = await this.#r(C.DF, 4);
    await this.#w(C.DFSELECT, 4, 1);
    const hi = await this.#r(C.DF, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** `vp_finalize_features` + `vp_modern_set_features`: VERSION_1 required; select 0, low; select 1, high. */
  async finalizeFeatures(driverFeatures: bigint): Promise<void> {
    if ((driverFeatures & VERSION_1) === 0n) throw new PciEpfError('NOT_SUPPORTED', 'virtio: device uses the modern interface but VIRTIO_F_VERSION_1 was not negotiated');
    const C = VIRTIO_PCI_COMMON;
    const [lo, hi] = split64(driverFeatures);
    await this.#w(C.GFSELECT, 4, 0);
    await this.#w(C.GF, 4, lo);
    await this.#w(C.GFSELECT, 4, 1);
    await this.#w(C.GF, 4, hi);
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.getStatus} */
  getStatus(): Promise<number> {
    return this.#r(VIRTIO_PCI_COMMON.STATUS, 1);
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.setStatus} */
  setStatus(status: number): Promise<void> {
    return this.#w(VIRTIO_PCI_COMMON.STATUS, 1, status);
  }

  /** `vp_reset`: write 0, then read until the device reads 0 (§4.1.4.3.2). */
  async reset(): Promise<void> {
    await this.#w(VIRTIO_PCI_COMMON.STATUS, 1, 0);
    const deadline = this.rc.clock.now() + this.resetTimeoutMs;
    while ((await this.#r(VIRTIO_PCI_COMMON.STATUS, 1)) !== 0) {
      if (this.rc.clock.now() > deadline) throw new PciEpfError('TIMEOUT', `reset: device_status did not read 0 within ${this.resetTimeoutMs} ms`);
      await new Promise<void>((r) => this.rc.clock.setTimer(1, r));
    }
  }

  /** `vp_modern_find_vqs` / `setup_vq`: each queue set up, then all enabled. */
  async findVqs(specs: readonly VirtqueueSpec[], ring: VirtioRingOptions): Promise<Virtqueue[]> {
    if (this.#queues.length > 0) throw new PciEpfError('BAD_STATE', 'queues exist; delVqs first');
    const C = VIRTIO_PCI_COMMON;
    const numq = await this.#r(C.NUMQ, 2);
    if (specs.length > numq) throw new PciEpfError('NOT_FOUND', `the device has ${numq} queues, ${specs.length} asked`);
    const msix = this.#irqType === 'msix';
    if (msix) {
      await this.#w(C.MSIX, 2, 0);
      if ((await this.#r(C.MSIX, 2)) === VIRTIO_MSI_NO_VECTOR) throw new PciEpfError('IRQ_NOT_ENABLED', 'the device refused the configuration vector');
    }
    const perQueue = msix && this.#vectors >= 1 + specs.length;
    const made: ModernQueueState[] = [];
    try {
      for (let i = 0; i < specs.length; i++) {
        const spec = specs[i]!;
        await this.#w(C.Q_SELECT, 2, i);
        const max = await this.#r(C.Q_SIZE, 2);
        if (max === 0) throw new PciEpfError('NOT_FOUND', `queue ${i} is not available (queue_size 0)`);
        if ((await this.#r(C.Q_ENABLE, 2)) !== 0) throw new PciEpfError('BAD_STATE', `queue ${i} is already enabled`);
        let num = Math.min(spec.size ?? max, max);
        while ((num & (num - 1)) !== 0) num &= num - 1;
        const ringBytes = alignUp(alignUp(descTableSize(num) + availRingSize(num), 4) + usedRingSize(num), 16);
        const indirect = ring.indirect && this.#segs >= 2;
        const slot = this.#rings.alloc(ringBytes + (indirect ? num * this.#segs * 16 : 0));
        if (slot < 0) throw new PciEpfError('BAD_CONFIG', `no RC memory left for the ring of queue ${i}`);
        this.rc.memory.view(slot, ringBytes).fill(0);
        const layout = vringModernLayout(num, { desc: slot });
        await this.#w(C.Q_SIZE, 2, num);
        for (const [lo, a] of [
          [C.Q_DESCLO, layout.desc],
          [C.Q_AVAILLO, layout.avail],
          [C.Q_USEDLO, layout.used],
        ] as const) {
          await this.#w(lo, 4, a % 0x1_0000_0000);
          await this.#w(lo + 4, 4, Math.floor(a / 0x1_0000_0000));
        }
        const noff = await this.#r(C.Q_NOFF, 2);
        const notifyOffset = this.notify.offset + noff * this.notifyOffMultiplier;
        if (notifyOffset + 2 > this.notify.offset + this.notify.length) throw new PciEpfError('BUS_ERROR', `queue ${i}: notify offset ${noff} × ${this.notifyOffMultiplier} is outside the notification area`);
        const notifyBar = this.rc.bar(this.notify.bar);
        const index = i;
        const vq = new Virtqueue({
          memory: this.rc.memory,
          layout,
          index,
          name: spec.name,
          eventIdx: ring.eventIdx,
          ...(indirect ? { indirect: { area: slot + ringBytes, maxSegments: this.#segs } } : {}),
          notify: () => {
            // vp_notify: write the queue index to its notification address.
            if (this.#closed || !this.rc.linkUp) return false;
            this.stats.kicks++;
            notifyBar.write16(notifyOffset, index);
            return true;
          },
          ...(spec.callback === undefined ? {} : { callback: spec.callback }),
        });
        const st: ModernQueueState = { vq, slot, notifyBar, notifyOffset, vector: VIRTIO_MSI_NO_VECTOR };
        made.push(st);
        this.#queues = made;
        if (msix) {
          st.vector = perQueue ? 1 + i : 0;
          await this.#w(C.Q_MSIX, 2, st.vector);
          if ((await this.#r(C.Q_MSIX, 2)) === VIRTIO_MSI_NO_VECTOR) throw new PciEpfError('IRQ_NOT_ENABLED', `the device refused vector ${st.vector} for queue ${i}`);
        }
      }
      for (let i = 0; i < made.length; i++) {
        await this.#w(C.Q_SELECT, 2, i);
        await this.#w(C.Q_ENABLE, 2, 1);
      }
    } catch (e) {
      await this.#teardown();
      throw e;
    }
    return made.map((q) => q.vq);
  }

  /** `vp_del_vqs`: NO_VECTOR on each queue, ring memory freed. */
  async delVqs(): Promise<void> {
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    const queues = this.#queues;
    this.#queues = [];
    for (let i = 0; i < queues.length; i++) {
      if (this.#irqType === 'msix' && this.rc.linkUp && !this.#closed) {
        try {
          await this.#w(VIRTIO_PCI_COMMON.Q_SELECT, 2, i);
          await this.#w(VIRTIO_PCI_COMMON.Q_MSIX, 2, VIRTIO_MSI_NO_VECTOR);
        } catch {
          // Teardown goes on.
        }
      }
      this.#rings.free(queues[i]!.slot);
    }
  }

  /**
   * Resets one queue (`queue_reset`, VIRTIO 1.2 §4.1.4.3.2; VIRTIO_F_RING_RESET): the
   * device stops using it; resolves once `queue_reset` reads 1.
   */
  async resetQueue(index: number): Promise<void> {
    if (this.#queues[index] === undefined) throw new RangeError(`index ${index}: no such queue`);
    const C = VIRTIO_PCI_COMMON;
    await this.#w(C.Q_SELECT, 2, index);
    await this.#w(C.Q_RESET, 2, 1);
    const deadline = this.rc.clock.now() + this.resetTimeoutMs;
    while ((await this.#r(C.Q_RESET, 2)) !== 1) {
      if (this.rc.clock.now() > deadline) throw new PciEpfError('TIMEOUT', `queue ${index}: queue_reset did not read 1`);
      await new Promise<void>((r) => this.rc.clock.setTimer(1, r));
    }
  }

  /** Re-enables a reset queue on a fresh ring: buffers still in it are detached and returned. */
  async reenableQueue(index: number): Promise<unknown[]> {
    const st = this.#queues[index];
    if (st === undefined) throw new RangeError(`index ${index}: no such queue`);
    const C = VIRTIO_PCI_COMMON;
    const detached: unknown[] = [];
    for (let t = st.vq.detachUnusedBuf(); t !== undefined; t = st.vq.detachUnusedBuf()) detached.push(t);
    st.vq.reset();
    const l = st.vq.layout;
    await this.#w(C.Q_SELECT, 2, index);
    await this.#w(C.Q_SIZE, 2, l.num);
    for (const [lo, a] of [
      [C.Q_DESCLO, l.desc],
      [C.Q_AVAILLO, l.avail],
      [C.Q_USEDLO, l.used],
    ] as const) {
      await this.#w(lo, 4, a % 0x1_0000_0000);
      await this.#w(lo + 4, 4, Math.floor(a / 0x1_0000_0000));
    }
    if (this.#irqType === 'msix') await this.#w(C.Q_MSIX, 2, st.vector);
    await this.#w(C.Q_ENABLE, 2, 1);
    await this.#r(C.Q_ENABLE, 2);
    return detached;
  }

  #cfg(offset: number, len: number): VirtioPciRegion {
    const d = this.deviceCfg;
    if (d === undefined || offset + len > d.length) throw new RangeError(`config ${offset}+${len} is beyond the ${d?.length ?? 0} bytes the device defines`);
    return d;
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.getConfig} */
  getConfig(offset: number, dst: Uint8Array): void {
    const d = this.#cfg(offset, dst.length);
    this.rc.bar(d.bar).readBytes(d.offset + offset, dst);
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.setConfig} */
  setConfig(offset: number, src: Uint8Array): void {
    const d = this.#cfg(offset, src.length);
    this.rc.bar(d.bar).writeBytes(d.offset + offset, src);
  }

  /** `config_generation` (§4.1.4.3). */
  generation(): Promise<number> {
    return this.#r(VIRTIO_PCI_COMMON.CFGGENERATION, 1);
  }

  /** Stops using the link. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of this.#queues) this.#rings.free(q.slot);
    this.#queues = [];
    try {
      this.rc.freeIrqVectors();
    } catch {
      // The link may be gone.
    }
  }
}
