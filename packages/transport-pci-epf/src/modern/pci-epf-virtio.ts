import { layoutSpan, vringModernLayout, type SplitRingLayout } from '@x/vring';
import {
  VHOST_NOTIFY,
  VIRTIO_CONFIG_S,
  VhostDevice,
  VhostVirtqueue,
  type VhostConfigOps,
  type VhostDeviceConfig,
  type VhostDeviceId,
  type VhostVqSpec,
} from '@x/vhost-core';
import {
  PCI_CAP_ID,
  PCI_CFG,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_COMMON,
  VIRTIO_PCI_EPF_LAYOUT,
  VIRTIO_PCI_ID,
  VIRTIO_PCI_ISR,
} from '../constants.js';
import { PciEpfError } from '../errors.js';
import type { PciEndpointController, PciEpcMap, PciEpfBar, PciEpfHeader } from '../hw/endpoint.js';
import { RcDataPath, checkDataPath } from '../internal/data-path.js';
import { OutboundView } from '../internal/outbound-view.js';
import { checkInt, isPow2, join64, joinAddr, split64 } from '../internal/util.js';
import type { PciEpfDataPath } from '../rfc/pci-epf-vhost.js';
import { systemClock, type PciClock } from '../wire.js';

/** VIRTIO_F_VERSION_1 (bit 32): the modern interface; the transport offers it itself. */
const VERSION_1 = 1n << 32n;

/** A polled notification slot with nothing in it (no queue has index 0xFFFF). */
const NO_NOTIFY = 0xffff;

/** Options of {@link PciEpfVirtioModern}. @public */
export interface PciEpfVirtioModernOptions {
  /** The endpoint controller (needs register emulation). */
  readonly epc: PciEndpointController;
  /** The device's id: `device` is the virtio device id (PCI device id 0x1040 + it). */
  readonly id: VhostDeviceId;
  /** Header fields over the defaults: 0x1AF4:0x1040+id, revision 1, class OTHERS, subsystem 0x1AF4:id. */
  readonly header?: Partial<PciEpfHeader>;
  /** The vhost device's attributes. */
  readonly deviceConfig?: Partial<VhostDeviceConfig>;
  /** The transport's name for its device. Default `pci-epf-virtio`. */
  readonly name?: string;
  /** The BAR for the virtio-pci structures. Default: the first free BAR. */
  readonly barno?: number;
  /** Most queues (≤ 31). Default 8. */
  readonly maxQueues?: number;
  /** MSI-X vectors. Default 9 (config + 8 queues). */
  readonly msixVectors?: number;
  /** Bytes of device configuration (≤ 4096). Default 0. */
  readonly configSize?: number;
  /** How `read` / `write` reach RC memory. Default `map`. */
  readonly dataPath?: PciEpfDataPath;
  /** Keep per-access windows mapped. Default false. */
  readonly cacheWindows?: boolean;
  /** Without a doorbell the endpoint polls the rings every `pollPeriodMs`. Default 1. */
  readonly pollPeriodMs?: number;
  /** Use the controller's doorbell for the notification area when it has one. Default true. */
  readonly useDoorbell?: boolean;
  /** The endpoint's clock (the ring poller). Default `systemClock`. */
  readonly clock?: PciClock;
}

interface ModernQueue {
  readonly max: number;
  size: number;
  vector: number;
  enable: number;
  reset: number;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
  maps: PciEpcMap[];
}

/** Counters of a {@link PciEpfVirtioModern}. @public */
export interface PciEpfVirtioModernStats {
  /** Common-configuration reads served. */
  reads: number;
  /** Common-configuration writes served. */
  writes: number;
  /** Kicks (doorbell events or polled rings with new chains). */
  kicks: number;
  /** Interrupts raised. */
  irqs: number;
  /** Interrupts that could not be raised. */
  irqErrors: number;
}

/**
 * Mode 2, the direction mainline took: the endpoint function presents a standard
 * modern virtio-pci device (VIRTIO 1.2 §4.1) — vendor capabilities COMMON / NOTIFY /
 * ISR / DEVICE in configuration space, `virtio_pci_common_cfg` at the §4.1.4.3 offsets
 * (served by register emulation, so a selector write is seen by the next read), a
 * notification area with `notify_off_multiplier` 4 routed to the controller's doorbell,
 * a read-to-clear ISR byte, device configuration and an MSI-X table — so the root
 * complex runs a stock virtio-pci modern driver that knows nothing of the endpoint.
 *
 * Toward `@x/vhost-core` it is the same `VhostConfigOps` face as {@link PciEpfVhost}:
 * vhost drivers run unchanged. The wire has no finalize command: the driver's features
 * are finalized when it writes the high half of `driver_feature` (Linux's order), and
 * again at FEATURES_OK if they changed since. VERSION_1 is offered by the transport and
 * taken off before the features reach the vhost device.
 *
 * @public
 */
export class PciEpfVirtioModern implements VhostConfigOps {
  /** The controller. */
  readonly epc: PciEndpointController;
  /** The vhost device (register it on a `VhostBus`). */
  readonly device: VhostDevice;
  /** The BAR of the virtio-pci structures. */
  readonly bar: PciEpfBar;
  /** Most queues. */
  readonly maxQueues: number;
  /** MSI-X vectors. */
  readonly msixVectors: number;
  /** Bytes of device configuration. */
  readonly configSize: number;
  /** True when notifications arrive by doorbell; false when the endpoint polls the rings. */
  readonly doorbell: boolean;
  /** The ring poll period, ms (without a doorbell). */
  readonly pollPeriodMs: number;
  /** How `read` / `write` reach RC memory. */
  readonly dataPath: PciEpfDataPath;
  /** Counters. */
  readonly stats: PciEpfVirtioModernStats = { reads: 0, writes: 0, kicks: 0, irqs: 0, irqErrors: 0 };
  /** The last error a register access or an interrupt hit. */
  lastError: unknown = undefined;

  readonly #view: OutboundView;
  readonly #data: RcDataPath;
  readonly #clock: PciClock;
  #vqs: VhostVirtqueue[] = [];
  #queues: ModernQueue[] = [];
  #hostFeatures = VERSION_1;
  #dfSelect = 0;
  #gfSelect = 0;
  readonly #gf: [number, number] = [0, 0];
  #finalized: bigint | undefined;
  #configVector: number = VIRTIO_MSI_NO_VECTOR;
  #status = 0;
  #qsel = 0;
  #generation = 0;
  #cancelPoll: (() => void) | undefined;
  #closed = false;

  constructor(options: PciEpfVirtioModernOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const epc = options.epc;
    if (typeof epc !== 'object' || epc === null || typeof epc.setBar !== 'function') throw new TypeError('options.epc must be a PciEndpointController');
    if (!epc.features.trap) throw new PciEpfError('NOT_SUPPORTED', 'a virtio-pci modern function needs register emulation (its common configuration answers selector reads)');
    const id = options.id;
    if (typeof id !== 'object' || id === null) throw new TypeError('options.id must be a VhostDeviceId');
    checkInt('options.id.device', id.device, 1, 0x3f);
    this.epc = epc;
    this.#clock = options.clock ?? systemClock;
    this.maxQueues = checkInt('options.maxQueues', options.maxQueues ?? 8, 1, 31);
    this.msixVectors = checkInt('options.msixVectors', options.msixVectors ?? this.maxQueues + 1, 1, 64);
    this.configSize = checkInt('options.configSize', options.configSize ?? 0, 0, VIRTIO_PCI_EPF_LAYOUT.DEVICE_SIZE);
    this.pollPeriodMs = options.pollPeriodMs ?? 1;
    if (!(this.pollPeriodMs > 0)) throw new RangeError(`options.pollPeriodMs must be > 0, got ${this.pollPeriodMs}`);
    this.dataPath = checkDataPath(epc, options.dataPath);
    this.doorbell = (options.useDoorbell ?? true) && epc.features.doorbell;
    this.#view = new OutboundView(epc, { cache: options.cacheWindows ?? false });
    this.#data = new RcDataPath(epc, this.dataPath, this.#view);

    epc.writeHeader({
      vendorId: VIRTIO_PCI_ID.VENDOR,
      deviceId: VIRTIO_PCI_ID.MODERN_BASE + id.device,
      revisionId: 1,
      baseClass: PCI_CFG.CLASS_OTHERS,
      subsysVendorId: VIRTIO_PCI_ID.VENDOR,
      subsysId: id.device,
      ...options.header,
    });
    const L = VIRTIO_PCI_EPF_LAYOUT;
    const barno = options.barno ?? epc.firstFreeBar();
    if (barno < 0) throw new PciEpfError('NO_FREE_BAR', 'the controller has no free BAR for the virtio-pci structures');
    this.bar = epc.setBar({ barno, size: L.BAR_SIZE });
    this.#cap(VIRTIO_PCI_CAP.COMMON_CFG, L.COMMON, VIRTIO_PCI_COMMON.SIZE);
    this.#cap(VIRTIO_PCI_CAP.NOTIFY_CFG, L.NOTIFY, this.maxQueues * L.NOTIFY_MULTIPLIER, L.NOTIFY_MULTIPLIER);
    this.#cap(VIRTIO_PCI_CAP.ISR_CFG, L.ISR, 1);
    if (this.configSize > 0) this.#cap(VIRTIO_PCI_CAP.DEVICE_CFG, L.DEVICE, this.configSize);
    if (epc.features.msix) epc.setMsix(this.msixVectors, barno, L.MSIX_TABLE, L.MSIX_PBA);
    epc.setTrap(barno, L.COMMON, VIRTIO_PCI_COMMON.SIZE, {
      read: (off, width) => this.#read(off, width),
      write: (off, width, v) => this.#write(off, width, v),
    });
    epc.setReadToClear(barno, L.ISR);
    if (this.doorbell) epc.setDoorbell(barno, L.NOTIFY, this.maxQueues * L.NOTIFY_MULTIPLIER, (events) => this.#onDoorbell(events));
    else {
      this.#notifySlots().fill(NO_NOTIFY);
      this.#armPoll();
    }

    this.device = new VhostDevice(this, {
      parent: options.name ?? 'pci-epf-virtio',
      id,
      ...(options.deviceConfig === undefined ? {} : { config: options.deviceConfig }),
    });
  }

  /** Adds a `virtio_pci_cap` (VIRTIO 1.2 §4.1.4) pointing into this function's BAR. */
  #cap(cfgType: number, offset: number, length: number, notifyMultiplier?: number): void {
    const len = notifyMultiplier === undefined ? VIRTIO_PCI_CAP.SIZE : VIRTIO_PCI_CAP.SIZE + 4;
    const epc = this.epc;
    const c = epc.addCapability(PCI_CAP_ID.VNDR, len);
    epc.writeConfig(c + VIRTIO_PCI_CAP.LEN, 1, len);
    epc.writeConfig(c + VIRTIO_PCI_CAP.CFG_TYPE, 1, cfgType);
    epc.writeConfig(c + VIRTIO_PCI_CAP.BAR, 1, this.bar.barno);
    epc.writeConfig(c + VIRTIO_PCI_CAP.ID, 1, 0);
    epc.writeConfig(c + VIRTIO_PCI_CAP.OFFSET, 4, offset);
    epc.writeConfig(c + VIRTIO_PCI_CAP.LENGTH, 4, length);
    if (notifyMultiplier !== undefined) epc.writeConfig(c + VIRTIO_PCI_CAP.NOTIFY_OFF_MULTIPLIER, 4, notifyMultiplier);
  }

  /** The BAR number of the virtio-pci structures. */
  get barno(): number {
    return this.bar.barno;
  }

  /** Counters of the endpoint's accesses to RC memory. */
  get accessStats(): { readonly persistent: number; readonly perAccess: number; readonly cached: number } {
    return this.#view.stats;
  }

  // ---- notifications --------------------------------------------------------------------------

  #onDoorbell(events: number): void {
    if (this.#closed) return;
    for (let q = 0; q < this.#vqs.length; q++) {
      if ((events & (1 << q)) !== 0) {
        this.stats.kicks++;
        this.#vqs[q]!.kicked();
      }
    }
  }

  /** The notification area as u16 slots (queue n at slot n × multiplier / 2). */
  #notifySlots(): Uint16Array {
    const m = this.bar.memory;
    return new Uint16Array(m.buffer, m.byteOffset + VIRTIO_PCI_EPF_LAYOUT.NOTIFY, VIRTIO_PCI_EPF_LAYOUT.NOTIFY_SIZE / 2);
  }

  /**
   * Without a doorbell the driver's notification writes land in plain BAR memory, which
   * the endpoint polls like the RFC's command byte: each queue's slot holds 0xFFFF until
   * the driver writes its queue index there; the poller takes it back atomically, so no
   * notification is lost or seen twice.
   */
  #armPoll(): void {
    if (this.#closed || this.#cancelPoll !== undefined) return;
    this.#cancelPoll = this.#clock.setTimer(this.pollPeriodMs, () => {
      this.#cancelPoll = undefined;
      // Host writes before the notification (queue_enable, DRIVER_OK) are served first.
      if (this.epc.requestsPending) return this.#armPoll();
      const slots = this.#notifySlots();
      const stride = VIRTIO_PCI_EPF_LAYOUT.NOTIFY_MULTIPLIER / 2;
      for (let q = 0; q < this.#vqs.length; q++) {
        if (Atomics.exchange(slots, q * stride, NO_NOTIFY) === NO_NOTIFY) continue;
        this.stats.kicks++;
        this.#vqs[q]!.kicked();
      }
      this.#armPoll();
    });
  }

  /** True while a polled notification waits for the poller. */
  get busy(): boolean {
    if (this.doorbell) return false;
    const slots = this.#notifySlots();
    const stride = VIRTIO_PCI_EPF_LAYOUT.NOTIFY_MULTIPLIER / 2;
    for (let q = 0; q < this.#vqs.length; q++) if (Atomics.load(slots, q * stride) !== NO_NOTIFY) return true;
    return false;
  }

  #raise(vector: number, isrBit: number): boolean {
    const epc = this.epc;
    try {
      if (epc.getMsix() > 0) {
        if (vector === VIRTIO_MSI_NO_VECTOR) return false;
        epc.raiseIrq('msix', vector + 1);
      } else if (epc.getMsi() > 0) {
        // Not what a stock virtio-pci driver enables, but a host may.
        epc.raiseIrq('msi', vector !== VIRTIO_MSI_NO_VECTOR && vector < epc.getMsi() ? vector + 1 : 1);
      } else {
        epc.orBarByte(this.bar.barno, VIRTIO_PCI_EPF_LAYOUT.ISR, isrBit);
        epc.raiseIrq('intx');
      }
      this.stats.irqs++;
      return true;
    } catch (e) {
      this.stats.irqErrors++;
      this.lastError = e;
      return false;
    }
  }

  // ---- common configuration (emulated) ---------------------------------------------------------

  /** `virtio_pci_common_cfg` as the driver sees it now (the selected queue's fields). */
  #image(): DataView {
    const C = VIRTIO_PCI_COMMON;
    const dv = new DataView(new ArrayBuffer(C.SIZE));
    const [flo, fhi] = split64(this.#hostFeatures);
    dv.setUint32(C.DFSELECT, this.#dfSelect, true);
    dv.setUint32(C.DF, this.#dfSelect === 0 ? flo : this.#dfSelect === 1 ? fhi : 0, true);
    dv.setUint32(C.GFSELECT, this.#gfSelect, true);
    dv.setUint32(C.GF, this.#gfSelect < 2 ? this.#gf[this.#gfSelect]! : 0, true);
    dv.setUint16(C.MSIX, this.#configVector, true);
    dv.setUint16(C.NUMQ, this.#vqs.length, true);
    dv.setUint8(C.STATUS, this.#status);
    dv.setUint8(C.CFGGENERATION, this.#generation);
    dv.setUint16(C.Q_SELECT, this.#qsel, true);
    const q = this.#queues[this.#qsel];
    if (q !== undefined) {
      dv.setUint16(C.Q_SIZE, q.size, true);
      dv.setUint16(C.Q_MSIX, q.vector, true);
      dv.setUint16(C.Q_ENABLE, q.enable, true);
      dv.setUint16(C.Q_NOFF, this.#qsel, true);
      dv.setUint32(C.Q_DESCLO, q.desc[0], true);
      dv.setUint32(C.Q_DESCHI, q.desc[1], true);
      dv.setUint32(C.Q_AVAILLO, q.driver[0], true);
      dv.setUint32(C.Q_AVAILHI, q.driver[1], true);
      dv.setUint32(C.Q_USEDLO, q.device[0], true);
      dv.setUint32(C.Q_USEDHI, q.device[1], true);
      dv.setUint16(C.Q_NDATA, this.#qsel, true);
      dv.setUint16(C.Q_RESET, q.reset, true);
    }
    return dv;
  }

  #read(off: number, width: 1 | 2 | 4): number {
    this.stats.reads++;
    const dv = this.#image();
    return width === 1 ? dv.getUint8(off) : width === 2 ? dv.getUint16(off, true) : dv.getUint32(off, true);
  }

  async #write(off: number, _width: 1 | 2 | 4, v: number): Promise<void> {
    this.stats.writes++;
    const C = VIRTIO_PCI_COMMON;
    const q = this.#queues[this.#qsel];
    switch (off) {
      case C.DFSELECT:
        this.#dfSelect = v >>> 0;
        return;
      case C.GFSELECT:
        this.#gfSelect = v >>> 0;
        return;
      case C.GF:
        if (this.#gfSelect > 1) return;
        this.#gf[this.#gfSelect] = v >>> 0;
        // Linux writes the low half, then the high half: that completes the word.
        if (this.#gfSelect === 1) await this.#finalize();
        return;
      case C.MSIX:
        this.#configVector = (v & 0xffff) < this.msixVectors ? v & 0xffff : VIRTIO_MSI_NO_VECTOR;
        return;
      case C.STATUS:
        await this.#statusWrite(v & 0xff);
        return;
      case C.Q_SELECT:
        this.#qsel = v & 0xffff;
        return;
    }
    if (q === undefined) return;
    switch (off) {
      case C.Q_SIZE:
        // The driver may use a smaller power of two (§4.1.4.3.2); anything else is ignored.
        if (q.enable === 0 && isPow2(v & 0xffff) && (v & 0xffff) <= q.max) q.size = v & 0xffff;
        return;
      case C.Q_MSIX:
        q.vector = (v & 0xffff) < this.msixVectors ? v & 0xffff : VIRTIO_MSI_NO_VECTOR;
        return;
      case C.Q_ENABLE:
        if ((v & 0xffff) === 1 && q.enable === 0) await this.#enable(this.#qsel, q);
        return;
      case C.Q_DESCLO:
      case C.Q_DESCHI:
        if (q.enable === 0) q.desc[off === C.Q_DESCLO ? 0 : 1] = v >>> 0;
        return;
      case C.Q_AVAILLO:
      case C.Q_AVAILHI:
        if (q.enable === 0) q.driver[off === C.Q_AVAILLO ? 0 : 1] = v >>> 0;
        return;
      case C.Q_USEDLO:
      case C.Q_USEDHI:
        if (q.enable === 0) q.device[off === C.Q_USEDLO ? 0 : 1] = v >>> 0;
        return;
      case C.Q_RESET:
        if ((v & 0xffff) === 1) this.#resetQueue(this.#qsel, q);
        return;
    }
  }

  /** The driver's features as the vhost device sees them: VERSION_1 belongs to the transport. */
  async #finalize(): Promise<void> {
    const raw = join64(this.#gf[0], this.#gf[1]);
    this.#finalized = raw;
    const offered = this.device.offeredFeatures;
    const f = (offered & VERSION_1) === 0n ? raw & ~VERSION_1 : raw;
    const err = await this.device.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, f);
    if (err !== undefined) this.lastError = err;
  }

  async #statusWrite(v: number): Promise<void> {
    if (v === 0) {
      const err = await this.device.handleEvent(VHOST_NOTIFY.RESET);
      if (err !== undefined) this.lastError = err;
      this.#resetRegisters();
      return;
    }
    const prev = this.#status;
    this.#status = v;
    const S = VIRTIO_CONFIG_S;
    if ((v & S.FEATURES_OK) !== 0 && (prev & S.FEATURES_OK) === 0 && this.#finalized !== join64(this.#gf[0], this.#gf[1])) await this.#finalize();
    const err = await this.device.handleEvent(VHOST_NOTIFY.SET_STATUS);
    if (err !== undefined) this.lastError = err;
  }

  #resetRegisters(): void {
    this.#queues.forEach((q, i) => this.#resetQueue(i, q));
    for (const q of this.#queues) q.reset = 0;
    this.#dfSelect = 0;
    this.#gfSelect = 0;
    this.#gf[0] = 0;
    this.#gf[1] = 0;
    this.#finalized = undefined;
    this.#configVector = VIRTIO_MSI_NO_VECTOR;
    this.#qsel = 0;
    this.bar.memory.write8(this.bar.phys + VIRTIO_PCI_EPF_LAYOUT.ISR, 0);
    this.#view.flushCache();
  }

  /** queue_enable = 1: map the three areas and attach the ring. A refusal sets DEVICE_NEEDS_RESET (virtio-pci has no error register). */
  async #enable(index: number, q: ModernQueue): Promise<void> {
    const vq = this.#vqs[index];
    if (vq === undefined) return;
    let layout: SplitRingLayout;
    try {
      layout = vringModernLayout(q.size, {
        desc: joinAddr(q.desc[0], q.desc[1], 'queue_desc'),
        avail: joinAddr(q.driver[0], q.driver[1], 'queue_driver'),
        used: joinAddr(q.device[0], q.device[1], 'queue_device'),
      });
      const { start, end } = layoutSpan(layout);
      if (this.epc.canMap(start, end - start)) q.maps.push(this.#view.mapPersistent(start, end - start));
      else {
        for (const [a, n] of [
          [layout.desc, 16 * layout.num],
          [layout.avail, 6 + 2 * layout.num],
          [layout.used, 6 + 8 * layout.num],
        ] as const) {
          q.maps.push(this.#view.mapPersistent(a, n));
        }
      }
      vq.attach(this.#view, layout);
    } catch (e) {
      this.lastError = e;
      this.#unmapQueue(q);
      await this.device.setStatus(this.#status | VIRTIO_CONFIG_S.NEEDS_RESET);
      return;
    }
    q.enable = 1;
    q.reset = 0;
  }

  #unmapQueue(q: ModernQueue): void {
    for (const m of q.maps.splice(0)) this.#view.unmapPersistent(m);
  }

  /** queue_reset = 1 (VIRTIO 1.2 §4.1.4.3.2): the queue goes back to its reset state; reads 1 once done. */
  #resetQueue(index: number, q: ModernQueue): void {
    this.#vqs[index]?.detach();
    this.#unmapQueue(q);
    q.size = q.max;
    q.vector = VIRTIO_MSI_NO_VECTOR;
    q.enable = 0;
    q.reset = 1;
    q.desc = [0, 0];
    q.driver = [0, 0];
    q.device = [0, 0];
  }

  // ---- VhostConfigOps ------------------------------------------------------------------------------

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.createVqs} */
  createVqs(specs: readonly (VhostVqSpec & { readonly size: number })[]): VhostVirtqueue[] {
    if (specs.length > this.maxQueues) throw new RangeError(`specs: the function has ${this.maxQueues} queues, ${specs.length} asked`);
    this.#vqs = specs.map(
      (s, index) =>
        new VhostVirtqueue({
          device: this.device,
          index,
          num: s.size,
          name: s.name,
          ...(s.callback === undefined ? {} : { callback: s.callback }),
          notify: (vq) => this.#raise(this.#queues[vq.index]?.vector ?? VIRTIO_MSI_NO_VECTOR, VIRTIO_PCI_ISR.QUEUE),
        }),
    );
    this.#queues = this.#vqs.map((vq) => ({
      max: vq.num,
      size: vq.num,
      vector: VIRTIO_MSI_NO_VECTOR,
      enable: 0,
      reset: 0,
      desc: [0, 0],
      driver: [0, 0],
      device: [0, 0],
      maps: [],
    }));
    return [...this.#vqs];
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.delVqs} */
  delVqs(): void {
    for (const vq of this.#vqs) vq.detach();
    for (const q of this.#queues) this.#unmapQueue(q);
    this.#vqs = [];
    this.#queues = [];
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.read} */
  read(dst: Uint8Array, peerAddr: number): void | Promise<void> {
    return this.#data.read(dst, peerAddr);
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.write} */
  write(peerAddr: number, src: Uint8Array): void | Promise<void> {
    return this.#data.write(peerAddr, src);
  }

  /** Publishes the device features; the transport adds VERSION_1 (the modern interface). */
  setFeatures(features: bigint): void {
    this.#hostFeatures = features | VERSION_1;
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.getStatus} */
  getStatus(): number {
    return this.#status;
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.setStatus} */
  setStatus(status: number): void {
    this.#status = status & 0xff;
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.readConfig} */
  readConfig(offset: number, dst: Uint8Array): void {
    if (offset + dst.length > this.configSize) throw new RangeError(`device config ${offset}+${dst.length} is beyond its ${this.configSize} bytes`);
    this.bar.memory.read(this.bar.phys + VIRTIO_PCI_EPF_LAYOUT.DEVICE + offset, dst);
  }

  /** Writes device configuration, moves `config_generation` on and raises the configuration-change interrupt once the driver is ready. */
  writeConfig(offset: number, src: Uint8Array): void {
    if (offset + src.length > this.configSize) throw new RangeError(`device config ${offset}+${src.length} is beyond its ${this.configSize} bytes`);
    this.bar.memory.write(this.bar.phys + VIRTIO_PCI_EPF_LAYOUT.DEVICE + offset, src);
    this.#generation = (this.#generation + 1) & 0xff;
    if ((this.#status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0) this.#raise(this.#configVector, VIRTIO_PCI_ISR.CONFIG);
  }

  /** Unbinds: stops the ring poller and unmaps every ring. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelPoll?.();
    this.#cancelPoll = undefined;
    for (const q of this.#queues) this.#unmapQueue(q);
    this.#view.flushCache();
  }
}
