import { vringLegacyLayout, vringSize } from '@x/vring';
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
  EPF_VHOST_CMD_STATUS,
  EPF_VHOST_DB,
  EPF_VHOST_DEVICE_CFG,
  EPF_VHOST_EXT,
  EPF_VHOST_EXT_F,
  EPF_VHOST_EXT_VERSION,
  EPF_VHOST_HOST_CMD,
  EPF_VHOST_IRQ_VECTORS,
  EPF_VHOST_MAGIC,
  EPF_VHOST_MAX_VQS,
  EPF_VHOST_POLL_PERIOD_MS,
  EPF_VHOST_QUEUE_CMD,
  EPF_VHOST_QUEUE_REG,
  EPF_VHOST_Q_STATUS_ENABLE,
  EPF_VHOST_REG,
  EPF_VHOST_VRING_ALIGN,
  PCI_ANY_ID16,
  PCI_CFG,
  PCI_ID_TI,
  PCI_MSIX,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_ISR,
} from '../constants.js';
import { PciEpfError } from '../errors.js';
import type { PciEndpointController, PciEpcMap, PciEpfBar, PciEpfHeader } from '../hw/endpoint.js';
import { RcDataPath, checkDataPath } from '../internal/data-path.js';
import { OutboundView } from '../internal/outbound-view.js';
import { Mutex, alignUp, checkInt, isPow2, join64, joinAddr, split64 } from '../internal/util.js';
import { systemClock, type PciClock } from '../wire.js';

/** How the RC reaches the endpoint function (rfc-protocol §2.2). @public */
export type PciEpfNotifyMode = 'poll' | 'doorbell';

/** How the endpoint function reaches buffers in RC memory (rfc-protocol §2.4). @public */
export type PciEpfDataPath = 'map' | 'dma';

/** Options of {@link PciEpfVhost}. @public */
export interface PciEpfVhostOptions {
  /** The endpoint controller to bind to. */
  readonly epc: PciEndpointController;
  /** The ids of the linked vhost-client item: the device's id and the header's subsystem ids (rfc-protocol §2.3 EP step 2). */
  readonly id?: VhostDeviceId;
  /** Header fields over the defaults: TI DRA74x (0x104c:0xb500, what the RFC's RC driver matches), class OTHERS, INTA. */
  readonly header?: Partial<PciEpfHeader>;
  /** The vhost device's attributes (queue size, buffer count and size, features). */
  readonly deviceConfig?: Partial<VhostDeviceConfig>;
  /** The transport's name for its device. Default `pci-epf-vhost`. */
  readonly name?: string;
  /** The BAR for the register block. Default: the first free BAR (rfc-protocol §2.1). */
  readonly barno?: number;
  /** `poll` (the RFC: a poller reads `cmd` every `pollPeriodMs`), `doorbell` (mainline), or `auto`: the doorbell when the controller has one. Default `auto`. */
  readonly notify?: PciEpfNotifyMode | 'auto';
  /** Poll period in ms. Default 1 (the RFC). */
  readonly pollPeriodMs?: number;
  /** How `read` / `write` reach RC memory: `map` (a window per access, the RFC) or `dma` (the controller's DMA engine). Default `map`. */
  readonly dataPath?: PciEpfDataPath;
  /** Keep per-access windows mapped until a window is needed elsewhere (not in the RFC; fewer map/unmap). Default false. */
  readonly cacheWindows?: boolean;
  /** MSI and MSI-X vectors to ask for. Default 9 (the RFC). */
  readonly irqVectors?: number;
  /** Bytes of device configuration the device defines (≤ 1024). Default 0 (rpmsg has none). */
  readonly configSize?: number;
  /** The endpoint's clock (the poller). Default `systemClock`. */
  readonly clock?: PciClock;
}

/** Counters of a {@link PciEpfVhost}. @public */
export interface PciEpfVhostStats {
  /** Device commands handled. */
  commands: number;
  /** Queue commands handled (ACTIVATE / DEACTIVATE). */
  queueCommands: number;
  /** Kicks (NOTIFY commands or doorbell kicks). */
  kicks: number;
  /** Poller runs. */
  polls: number;
  /** Interrupts raised to the host. */
  irqs: number;
  /** Interrupts that could not be raised (nothing enabled). */
  irqErrors: number;
  /** Commands refused (unknown, or the device said no). */
  refused: number;
}

function qreg(q: number, field: number): number {
  return EPF_VHOST_REG.QUEUE + EPF_VHOST_REG.QUEUE_STRIDE * q + field;
}

/** Where the doorbell sits in the block's BAR: a u32 in the extension's reserved space. */
const DOORBELL_OFFSET = EPF_VHOST_EXT.END;

/**
 * The RFC's endpoint function "pci-epf-vhost" (patch 19,
 * `drivers/pci/endpoint/functions/pci-epf-vhost.c`): a vhost device whose peer is the
 * root complex's `virtio_pci_epf` driver, speaking the RFC's BAR register block and
 * command protocol (rfc-protocol §2.1–2.4). It implements `VhostConfigOps` over the
 * block; the RC's commands reach `@x/vhost-core` as `VhostDevice.handleEvent` and
 * `VhostVirtqueue.attach` / `detach` / `kicked`.
 *
 * Binding (the constructor) does EP steps 2–3 of rfc-protocol §2.3: writes the header,
 * puts the block in the first free BAR with the MSI-X table after the device-config
 * area, sets up MSI and MSI-X (9 vectors each) where the controller has them, and
 * starts the command poller (or installs the doorbell). Register {@link PciEpfVhost.device}
 * on a `VhostBus`, then start the controller.
 *
 * The review's holes, closed: the command handshake is defined (the EP clears `cmd` when
 * it takes a command and writes `cmd_status` only for a command it took; the RC writes
 * NONE after reading the result), unknown commands answer ERROR, INTx works (the EP sets
 * `isr`), MSI is used where MSI-X is not enabled, the block is found by its signature,
 * the device-config area is defined, and a doorbell replaces polling when the controller
 * has one.
 *
 * @public
 */
export class PciEpfVhost implements VhostConfigOps {
  /** The controller. */
  readonly epc: PciEndpointController;
  /** The vhost device this function drives (register it on a `VhostBus`). */
  readonly device: VhostDevice;
  /** The BAR holding the register block. */
  readonly bar: PciEpfBar;
  /** How the RC reaches the function. */
  readonly notifyMode: PciEpfNotifyMode;
  /** The poll period, ms (polling mode). */
  readonly pollPeriodMs: number;
  /** How `read` / `write` reach RC memory. */
  readonly dataPath: PciEpfDataPath;
  /** Bytes of device configuration. */
  readonly configSize: number;
  /** Counters. */
  readonly stats: PciEpfVhostStats = { commands: 0, queueCommands: 0, kicks: 0, polls: 0, irqs: 0, irqErrors: 0, refused: 0 };
  /** The last error a command or an interrupt hit. */
  lastError: unknown = undefined;

  readonly #view: OutboundView;
  readonly #data: RcDataPath;
  readonly #clock: PciClock;
  readonly #lock = new Mutex();
  readonly #rings: Array<PciEpcMap | undefined> = new Array<PciEpcMap | undefined>(EPF_VHOST_MAX_VQS).fill(undefined);
  #vqs: VhostVirtqueue[] = [];
  #cancelPoll: (() => void) | undefined;
  #servicing = 0;
  #generation = 0;
  #closed = false;

  constructor(options: PciEpfVhostOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const epc = options.epc;
    if (typeof epc !== 'object' || epc === null || typeof epc.setBar !== 'function') throw new TypeError('options.epc must be a PciEndpointController');
    this.epc = epc;
    this.#clock = options.clock ?? systemClock;
    this.pollPeriodMs = options.pollPeriodMs ?? EPF_VHOST_POLL_PERIOD_MS;
    if (!(this.pollPeriodMs > 0 && this.pollPeriodMs <= 60_000)) throw new RangeError(`options.pollPeriodMs must be in (0, 60000], got ${this.pollPeriodMs}`);
    const notify = options.notify ?? 'auto';
    if (notify !== 'auto' && notify !== 'poll' && notify !== 'doorbell') throw new RangeError(`options.notify must be auto, poll or doorbell, got ${String(notify)}`);
    if (notify === 'doorbell' && !epc.features.doorbell) throw new PciEpfError('NOT_SUPPORTED', 'options.notify is doorbell but the controller has no doorbell');
    this.notifyMode = notify === 'auto' ? (epc.features.doorbell ? 'doorbell' : 'poll') : notify;
    this.dataPath = checkDataPath(epc, options.dataPath);
    this.configSize = checkInt('options.configSize', options.configSize ?? 0, 0, EPF_VHOST_DEVICE_CFG.SIZE);
    const vectors = checkInt('options.irqVectors', options.irqVectors ?? EPF_VHOST_IRQ_VECTORS, 1, 32);
    this.#view = new OutboundView(epc, { cache: options.cacheWindows ?? false });
    this.#data = new RcDataPath(epc, this.dataPath, this.#view);

    // rfc-protocol §2.3 EP step 3: header, BAR, MSI / MSI-X.
    const id = options.id;
    epc.writeHeader({
      vendorId: PCI_ID_TI.VENDOR,
      deviceId: PCI_ID_TI.DRA74X,
      baseClass: PCI_CFG.CLASS_OTHERS,
      subsysVendorId: id === undefined ? PCI_ANY_ID16 : id.vendor & 0xffff,
      subsysId: id === undefined ? 0 : id.device & 0xffff,
      ...options.header,
    });
    const tableEnd = EPF_VHOST_DEVICE_CFG.MSIX_TABLE + vectors * PCI_MSIX.ENTRY_SIZE;
    const pba = alignUp(tableEnd, 8);
    const size = pba + alignUp(vectors, 64) / 8;
    const barno = options.barno ?? epc.firstFreeBar();
    if (barno < 0) throw new PciEpfError('NO_FREE_BAR', 'the controller has no free BAR for the register block');
    this.bar = epc.setBar({ barno, size });
    if (epc.features.msi) epc.setMsi(vectors);
    if (epc.features.msix) epc.setMsix(vectors, barno, EPF_VHOST_DEVICE_CFG.MSIX_TABLE, pba);

    // The block: everything zero but our extension and the "no vector" registers.
    this.#w16(EPF_VHOST_REG.MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR);
    for (let q = 0; q < EPF_VHOST_MAX_VQS; q++) this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.MSIX_VECTOR), VIRTIO_MSI_NO_VECTOR);
    this.#w32(EPF_VHOST_EXT.MAGIC, EPF_VHOST_MAGIC);
    this.#w16(EPF_VHOST_EXT.VERSION, EPF_VHOST_EXT_VERSION);
    this.#w16(EPF_VHOST_EXT.FLAGS, (this.notifyMode === 'doorbell' ? EPF_VHOST_EXT_F.DOORBELL : 0) | EPF_VHOST_EXT_F.CMD_DONE_EVENT);
    this.#w8(EPF_VHOST_EXT.DB_BAR, this.notifyMode === 'doorbell' ? barno : 0);
    this.#w32(EPF_VHOST_EXT.DB_OFFSET, this.notifyMode === 'doorbell' ? DOORBELL_OFFSET : 0);
    this.#w32(EPF_VHOST_EXT.POLL_PERIOD_US, this.notifyMode === 'poll' ? Math.round(this.pollPeriodMs * 1000) : 0);
    this.#w32(EPF_VHOST_EXT.DEVICE_CFG_OFFSET, EPF_VHOST_DEVICE_CFG.OFFSET);
    this.#w32(EPF_VHOST_EXT.DEVICE_CFG_SIZE, this.configSize);
    this.#w16(EPF_VHOST_EXT.MAX_QUEUES, EPF_VHOST_MAX_VQS);

    this.device = new VhostDevice(this, {
      parent: options.name ?? 'pci-epf-vhost',
      ...(id === undefined ? {} : { id }),
      ...(options.deviceConfig === undefined ? {} : { config: options.deviceConfig }),
    });
    if (this.notifyMode === 'doorbell') epc.setDoorbell(barno, DOORBELL_OFFSET, 4, (events) => this.#onDoorbell(events));
    else this.#armPoll();
  }

  /** The block's BAR number. */
  get barno(): number {
    return this.bar.barno;
  }

  /** True while a command is pending in the block or being handled. */
  get busy(): boolean {
    if (this.#servicing > 0 || this.#r8(EPF_VHOST_REG.CMD) !== EPF_VHOST_HOST_CMD.NONE) return true;
    for (let q = 0; q < EPF_VHOST_MAX_VQS; q++) if (this.#r8(qreg(q, EPF_VHOST_QUEUE_REG.CMD)) !== EPF_VHOST_QUEUE_CMD.NONE) return true;
    return false;
  }

  /** Counters of the endpoint's accesses to RC memory. */
  get accessStats(): { readonly persistent: number; readonly perAccess: number; readonly cached: number } {
    return this.#view.stats;
  }

  // ---- register access (the EP's own view of its BAR) ----------------------------------------

  #r8(o: number): number {
    return this.bar.memory.read8(this.bar.phys + o);
  }
  #r16(o: number): number {
    return this.bar.memory.read16(this.bar.phys + o);
  }
  #r32(o: number): number {
    return this.bar.memory.read32(this.bar.phys + o);
  }
  #w8(o: number, v: number): void {
    this.bar.memory.write8(this.bar.phys + o, v);
  }
  #w16(o: number, v: number): void {
    this.bar.memory.write16(this.bar.phys + o, v);
  }
  #w32(o: number, v: number): void {
    this.bar.memory.write32(this.bar.phys + o, v);
  }

  // ---- the RC's commands -------------------------------------------------------------------------

  #armPoll(): void {
    if (this.#closed || this.#cancelPoll !== undefined) return;
    this.#cancelPoll = this.#clock.setTimer(this.pollPeriodMs, () => {
      this.#cancelPoll = undefined;
      this.stats.polls++;
      void this.#lock.run(() => this.#serviceAll()).finally(() => this.#armPoll());
    });
  }

  #onDoorbell(events: number): void {
    if (this.#closed) return;
    if ((events & ((1 << EPF_VHOST_DB.DEVICE_CMD) | (1 << EPF_VHOST_DB.QUEUE_CMD))) !== 0) void this.#lock.run(() => this.#serviceAll());
    for (let q = 0; q < this.#vqs.length; q++) {
      if ((events & (1 << (EPF_VHOST_DB.KICK + q))) !== 0) {
        this.stats.kicks++;
        this.#vqs[q]!.kicked();
      }
    }
  }

  async #serviceAll(): Promise<void> {
    if (this.#closed) return;
    this.#servicing++;
    try {
      await this.#serviceDevice();
      this.#serviceQueues();
    } catch (e) {
      this.lastError = e;
    } finally {
      this.#servicing--;
    }
  }

  /** The device work of rfc-protocol §2.2: take `cmd`, clear it, act, write `cmd_status`. */
  async #serviceDevice(): Promise<void> {
    const cmd = this.#r8(EPF_VHOST_REG.CMD);
    if (cmd === EPF_VHOST_HOST_CMD.NONE) return;
    // Clearing cmd first is what makes the EP act once per command (the handshake).
    this.#w8(EPF_VHOST_REG.CMD, EPF_VHOST_HOST_CMD.NONE);
    this.stats.commands++;
    let err: unknown;
    switch (cmd) {
      case EPF_VHOST_HOST_CMD.SET_STATUS:
        err = await this.device.handleEvent(VHOST_NOTIFY.SET_STATUS);
        break;
      case EPF_VHOST_HOST_CMD.FINALIZE_FEATURES:
        err = await this.device.handleEvent(
          VHOST_NOTIFY.FINALIZE_FEATURES,
          join64(this.#r32(EPF_VHOST_REG.GUEST_FEATURES), this.#r32(EPF_VHOST_REG.GUEST_FEATURES + 4)),
        );
        break;
      case EPF_VHOST_HOST_CMD.RESET: {
        const e = await this.device.handleEvent(VHOST_NOTIFY.RESET);
        if (e !== undefined) this.lastError = e;
        this.#afterReset();
        break;
      }
      default:
        // The RFC only logged an unknown command, so the RC timed out; answer it.
        err = new PciEpfError('COMMAND_FAILED', `unknown device command ${cmd}`);
    }
    if (err !== undefined) {
      this.lastError = err;
      this.stats.refused++;
    }
    this.#w8(EPF_VHOST_REG.CMD_STATUS, err === undefined ? EPF_VHOST_CMD_STATUS.OKAY : EPF_VHOST_CMD_STATUS.ERROR);
    this.epc.sendCommandDone();
  }

  #afterReset(): void {
    for (let q = 0; q < EPF_VHOST_MAX_VQS; q++) {
      this.#dropRing(q);
      this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.STATUS), 0);
      this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.NUM_BUFFERS), this.#vqs[q]?.num ?? 0);
    }
    this.#w8(EPF_VHOST_REG.ISR, 0);
    this.#view.flushCache();
  }

  /** The queue works of rfc-protocol §2.2. */
  #serviceQueues(): void {
    for (let q = 0; q < EPF_VHOST_MAX_VQS; q++) {
      const cmd = this.#r8(qreg(q, EPF_VHOST_QUEUE_REG.CMD));
      if (cmd === EPF_VHOST_QUEUE_CMD.NONE) continue;
      this.#w8(qreg(q, EPF_VHOST_QUEUE_REG.CMD), EPF_VHOST_QUEUE_CMD.NONE);
      if (cmd === EPF_VHOST_QUEUE_CMD.NOTIFY) {
        // Posted: the RC does not wait for a kick (its notify cannot), so no status.
        this.stats.kicks++;
        this.#vqs[q]?.kicked();
        continue;
      }
      this.stats.queueCommands++;
      let ok = false;
      try {
        if (cmd === EPF_VHOST_QUEUE_CMD.ACTIVATE) this.#activate(q);
        else if (cmd === EPF_VHOST_QUEUE_CMD.DEACTIVATE) this.#deactivate(q);
        else throw new PciEpfError('COMMAND_FAILED', `unknown queue command ${cmd}`);
        ok = true;
      } catch (e) {
        this.lastError = e;
        this.stats.refused++;
      }
      this.#w8(qreg(q, EPF_VHOST_QUEUE_REG.CMD_STATUS), ok ? EPF_VHOST_CMD_STATUS.OKAY : EPF_VHOST_CMD_STATUS.ERROR);
      this.epc.sendCommandDone();
    }
  }

  /** ACTIVATE: map the ring at `queue_addr` through a persistent window and attach it (vringh_init over the window). */
  #activate(q: number): void {
    const vq = this.#vqs[q];
    if (vq === undefined) throw new PciEpfError('COMMAND_FAILED', `queue ${q} does not exist`);
    if ((this.#r16(qreg(q, EPF_VHOST_QUEUE_REG.STATUS)) & EPF_VHOST_Q_STATUS_ENABLE) !== 0) throw new PciEpfError('BAD_STATE', `queue ${q} is already enabled`);
    const num = this.#r16(qreg(q, EPF_VHOST_QUEUE_REG.NUM_BUFFERS));
    if (!isPow2(num) || num > vq.num) throw new PciEpfError('COMMAND_FAILED', `queue ${q}: num_buffers ${num} is not a power of two ≤ ${vq.num}`);
    const addr = joinAddr(this.#r32(qreg(q, EPF_VHOST_QUEUE_REG.QUEUE_ADDR)), this.#r32(qreg(q, EPF_VHOST_QUEUE_REG.QUEUE_ADDR) + 4), `queue ${q} queue_addr`);
    const layout = vringLegacyLayout(addr, num, EPF_VHOST_VRING_ALIGN);
    const map = this.#view.mapPersistent(addr, vringSize(num, EPF_VHOST_VRING_ALIGN));
    try {
      vq.attach(this.#view, layout);
    } catch (e) {
      this.#view.unmapPersistent(map);
      throw e;
    }
    this.#rings[q] = map;
    this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.STATUS), EPF_VHOST_Q_STATUS_ENABLE);
  }

  /** DEACTIVATE: detach, unmap, clear ENABLE, publish the full size again. */
  #deactivate(q: number): void {
    this.#vqs[q]?.detach();
    this.#dropRing(q);
    this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.STATUS), 0);
    this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.NUM_BUFFERS), this.#vqs[q]?.num ?? 0);
  }

  #dropRing(q: number): void {
    const m = this.#rings[q];
    if (m === undefined) return;
    this.#rings[q] = undefined;
    this.#view.unmapPersistent(m);
  }

  // ---- interrupts to the host ----------------------------------------------------------------------

  /**
   * Raises the host's interrupt for a vector register (rfc-protocol §2.4: the RFC always
   * asked for MSI-X): MSI-X when the host enabled it, else MSI (the vector, or vector 1
   * when the host granted fewer), else INTx with `isr` set.
   */
  #raise(vectorReg: number, isrBit: number): boolean {
    const epc = this.epc;
    try {
      const vec = this.#r16(vectorReg);
      if (epc.getMsix() > 0) {
        if (vec === VIRTIO_MSI_NO_VECTOR) return false;
        epc.raiseIrq('msix', vec + 1);
      } else if (epc.getMsi() > 0) {
        const n = epc.getMsi();
        epc.raiseIrq('msi', vec !== VIRTIO_MSI_NO_VECTOR && vec < n ? vec + 1 : 1);
      } else {
        epc.orBarByte(this.bar.barno, EPF_VHOST_REG.ISR, isrBit);
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

  // ---- VhostConfigOps ------------------------------------------------------------------------------

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.createVqs} */
  createVqs(specs: readonly (VhostVqSpec & { readonly size: number })[]): VhostVirtqueue[] {
    if (specs.length > EPF_VHOST_MAX_VQS) throw new RangeError(`specs: the register block has ${EPF_VHOST_MAX_VQS} queues, ${specs.length} asked`);
    const vqs = specs.map(
      (s, index) =>
        new VhostVirtqueue({
          device: this.device,
          index,
          num: s.size,
          name: s.name,
          ...(s.callback === undefined ? {} : { callback: s.callback }),
          notify: (vq) => this.#raise(qreg(vq.index, EPF_VHOST_QUEUE_REG.MSIX_VECTOR), VIRTIO_PCI_ISR.QUEUE),
        }),
    );
    this.#vqs = vqs;
    // rfc-protocol §2.3 EP step 4: write num_buffers per queue (and, unlike the RFC, num_queues).
    for (let q = 0; q < EPF_VHOST_MAX_VQS; q++) {
      this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.NUM_BUFFERS), vqs[q]?.num ?? 0);
      this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.STATUS), 0);
    }
    this.#w16(EPF_VHOST_REG.NUM_QUEUES, vqs.length);
    return vqs;
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.delVqs} */
  delVqs(): void {
    for (const vq of this.#vqs) vq.detach();
    for (let q = 0; q < EPF_VHOST_MAX_VQS; q++) {
      this.#dropRing(q);
      this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.NUM_BUFFERS), 0);
      this.#w16(qreg(q, EPF_VHOST_QUEUE_REG.STATUS), 0);
    }
    this.#w16(EPF_VHOST_REG.NUM_QUEUES, 0);
    this.#vqs = [];
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.read} */
  read(dst: Uint8Array, peerAddr: number): void | Promise<void> {
    return this.#data.read(dst, peerAddr);
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.write} */
  write(peerAddr: number, src: Uint8Array): void | Promise<void> {
    return this.#data.write(peerAddr, src);
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.setFeatures} */
  setFeatures(features: bigint): void {
    const [lo, hi] = split64(features);
    this.#w32(EPF_VHOST_REG.HOST_FEATURES, lo);
    this.#w32(EPF_VHOST_REG.HOST_FEATURES + 4, hi);
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.getStatus} */
  getStatus(): number {
    return this.#r8(EPF_VHOST_REG.DEVICE_STATUS);
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.setStatus} */
  setStatus(status: number): void {
    this.#w8(EPF_VHOST_REG.DEVICE_STATUS, status);
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.readConfig} */
  readConfig(offset: number, dst: Uint8Array): void {
    if (offset + dst.length > this.configSize) throw new RangeError(`device config ${offset}+${dst.length} is beyond its ${this.configSize} bytes`);
    this.bar.memory.read(this.bar.phys + EPF_VHOST_DEVICE_CFG.OFFSET + offset, dst);
  }

  /**
   * Writes device configuration, moves `config_generation` on and raises the
   * configuration-change interrupt once the driver is ready (VIRTIO 1.2 §2.5.1, §4.1.4.3).
   */
  writeConfig(offset: number, src: Uint8Array): void {
    if (offset + src.length > this.configSize) throw new RangeError(`device config ${offset}+${src.length} is beyond its ${this.configSize} bytes`);
    this.bar.memory.write(this.bar.phys + EPF_VHOST_DEVICE_CFG.OFFSET + offset, src);
    this.#generation = (this.#generation + 1) & 0xff;
    this.#w8(EPF_VHOST_REG.CONFIG_GENERATION, this.#generation);
    if ((this.#r8(EPF_VHOST_REG.DEVICE_STATUS) & VIRTIO_CONFIG_S.DRIVER_OK) !== 0) this.#raise(EPF_VHOST_REG.MSIX_CONFIG, VIRTIO_PCI_ISR.CONFIG);
  }

  /** Unbinds: stops the poller, unmaps every ring, clears the BAR. The device stays (unregister it first). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelPoll?.();
    this.#cancelPoll = undefined;
    for (let q = 0; q < EPF_VHOST_MAX_VQS; q++) this.#dropRing(q);
    this.#view.flushCache();
  }
}
