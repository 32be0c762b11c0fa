import { Virtqueue, vringLegacyLayout, vringSize } from '@x/vring';
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
import {
  EPF_VHOST_CMD_STATUS,
  EPF_VHOST_CMD_TIMEOUT_MS,
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
  PCI_CFG,
  PCI_ID_TI,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_ISR,
} from '../constants.js';
import { PciEpfError } from '../errors.js';
import type { PciBarMmio, PciIrqType, PciRootComplex } from '../hw/root-complex.js';
import { Mutex, alignUp, checkInt, hex, split64 } from '../internal/util.js';

/** A PCI id pair a driver matches (`struct pci_device_id`, in part). @public */
export interface PciId {
  /** Vendor id. */
  readonly vendor: number;
  /** Device id. */
  readonly device: number;
}

/** Options of {@link VirtioPciEpf.probe}. @public */
export interface VirtioPciEpfOptions {
  /** How long a command may take before `TIMEOUT`, ms. Default 1000 (Kishon's 1 s). */
  readonly commandTimeoutMs?: number;
  /** PCI ids accepted. Default: TI DRA74x and DRA72x (the RFC's table). A class-OTHERS function with the block's signature is accepted too. */
  readonly idTable?: readonly PciId[];
  /** Interrupt types to try, in order. Default MSI-X, MSI, INTx. */
  readonly irqTypes?: readonly PciIrqType[];
  /** Ring the endpoint's doorbell when it has one. Default true. */
  readonly useDoorbell?: boolean;
  /** Bytes of RC memory kept for rings; the rest is the buffer region. Default 512 KiB. */
  readonly ringArea?: number;
  /** Indirect-table entries per buffer when INDIRECT_DESC is negotiated. Default 8. */
  readonly indirectSegments?: number;
}

/** Counters of a {@link VirtioPciEpf}. @public */
export interface VirtioPciEpfStats {
  /** Device commands sent. */
  commands: number;
  /** Queue commands sent (ACTIVATE / DEACTIVATE). */
  queueCommands: number;
  /** Kicks sent: doorbell writes or NOTIFY commands. */
  kicks: number;
  /** Kicks that found a NOTIFY still pending and merged with it. */
  kicksMerged: number;
  /** Interrupts handled. */
  interrupts: number;
}

interface QueueState {
  readonly vq: Virtqueue;
  readonly slot: number;
  readonly spec: VirtqueueSpec;
  vector: number;
  busy: boolean;
  kickPending: boolean;
}

function qreg(q: number, field: number): number {
  return EPF_VHOST_REG.QUEUE + EPF_VHOST_REG.QUEUE_STRIDE * q + field;
}

/**
 * The RFC's root-complex virtio driver `virtio_pci_epf` (patch 18,
 * `drivers/virtio/virtio_pci_epf.c`): a virtio transport over the endpoint's BAR
 * register block and command protocol (rfc-protocol §2.1–2.4). It implements
 * `VirtioConfigOps`; `@x/virtio-core` drives the §3.1 sequence through it, which comes
 * out as the RFC's RC bring-up (§2.3): RESET, ACKNOWLEDGE and DRIVER as status writes
 * plus SET_STATUS, host_features read, guest_features plus FINALIZE_FEATURES,
 * FEATURES_OK, per queue (ENABLE checked, num_buffers read, ring made, queue_addr,
 * ACTIVATE, vector), DRIVER_OK.
 *
 * A command follows the defined handshake: take the lock, clear a stale result, write
 * the command (and ring the doorbell when there is one), poll `cmd_status` until OKAY or
 * ERROR (woken early by the endpoint's completion message), write NONE, or fail with
 * `TIMEOUT` after `commandTimeoutMs` (the command is withdrawn).
 *
 * @public
 */
export class VirtioPciEpf implements VirtioConfigOps {
  /** The root complex. */
  readonly rc: PciRootComplex;
  /** The BAR the register block was found in. */
  readonly barno: number;
  /** The virtio device id, from the PCI subsystem ids (rfc-protocol §2.3). */
  readonly id: VirtioDeviceId;
  /** Command timeout, ms. */
  readonly commandTimeoutMs: number;
  /** True when kicks and commands ring the endpoint's doorbell. */
  readonly doorbell: boolean;
  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.dmaRegion} */
  readonly dmaRegion: VirtioDmaRegion;
  /** Bytes of device configuration the endpoint defines. */
  readonly configSize: number;
  /** The endpoint's poll period, µs (0 with a doorbell). */
  readonly pollPeriodUs: number;
  /** Counters. */
  readonly stats: VirtioPciEpfStats = { commands: 0, queueCommands: 0, kicks: 0, kicksMerged: 0, interrupts: 0 };

  readonly #regs: PciBarMmio;
  readonly #db: PciBarMmio | undefined;
  readonly #dbOffset: number;
  readonly #cfgOffset: number;
  readonly #lock = new Mutex();
  readonly #qlocks: Mutex[] = Array.from({ length: EPF_VHOST_MAX_VQS }, () => new Mutex());
  readonly #rings: GenPool;
  readonly #segs: number;
  readonly #vectors: number;
  readonly #irqType: PciIrqType;
  #queues: QueueState[] = [];
  #device: VirtioDevice | undefined;
  #generation = -1;
  #closed = false;

  private constructor(rc: PciRootComplex, barno: number, id: VirtioDeviceId, options: VirtioPciEpfOptions, irqType: PciIrqType, vectors: number) {
    this.rc = rc;
    this.barno = barno;
    this.id = id;
    this.commandTimeoutMs = options.commandTimeoutMs ?? EPF_VHOST_CMD_TIMEOUT_MS;
    this.#regs = rc.bar(barno);
    this.#irqType = irqType;
    this.#vectors = vectors;
    const r = this.#regs;
    const flags = r.read16(EPF_VHOST_EXT.FLAGS);
    this.doorbell = (options.useDoorbell ?? true) && (flags & EPF_VHOST_EXT_F.DOORBELL) !== 0;
    this.#db = this.doorbell ? rc.bar(r.read8(EPF_VHOST_EXT.DB_BAR)) : undefined;
    this.#dbOffset = r.read32(EPF_VHOST_EXT.DB_OFFSET);
    this.pollPeriodUs = r.read32(EPF_VHOST_EXT.POLL_PERIOD_US);
    this.#cfgOffset = r.read32(EPF_VHOST_EXT.DEVICE_CFG_OFFSET);
    this.configSize = Math.min(r.read32(EPF_VHOST_EXT.DEVICE_CFG_SIZE), Math.max(0, r.size - this.#cfgOffset));
    const mem = rc.memory;
    const ringArea = alignUp(options.ringArea ?? 512 * 1024, EPF_VHOST_VRING_ALIGN);
    if (ringArea >= mem.size) throw new PciEpfError('BAD_CONFIG', `ringArea ${ringArea} leaves no buffer memory in ${mem.size} bytes of RC memory`);
    this.#rings = new GenPool({ base: mem.base, size: ringArea, align: EPF_VHOST_VRING_ALIGN });
    this.dmaRegion = Object.freeze({ memory: mem, addr: mem.base + ringArea, size: mem.size - ringArea });
    this.#segs = options.indirectSegments ?? 8;
    this.#installIrqs();
  }

  /**
   * Probes the endpoint's function (Linux `virtio_pci_epf_probe`): enumerates it,
   * matches its ids (or class OTHERS), finds the register block by scanning every BAR
   * for its signature (the RFC assumed BAR 0), takes the virtio ids from the subsystem
   * ids and enables MSI-X, MSI or INTx. `NOT_FOUND` when no BAR holds the block.
   */
  static async probe(rc: PciRootComplex, options: VirtioPciEpfOptions = {}): Promise<VirtioPciEpf> {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    checkInt('options.commandTimeoutMs', options.commandTimeoutMs ?? EPF_VHOST_CMD_TIMEOUT_MS, 1, 3_600_000);
    const info = rc.info ?? rc.enumerate();
    const table = options.idTable ?? [
      { vendor: PCI_ID_TI.VENDOR, device: PCI_ID_TI.DRA74X },
      { vendor: PCI_ID_TI.VENDOR, device: PCI_ID_TI.DRA72X },
    ];
    const idMatch = table.some((t) => t.vendor === info.vendorId && t.device === info.deviceId);
    if (!idMatch && info.classCode >> 16 !== PCI_CFG.CLASS_OTHERS) {
      throw new PciEpfError('NOT_FOUND', `function ${hex(info.vendorId)}:${hex(info.deviceId)} class ${hex(info.classCode)} is not a pci-epf-vhost function`);
    }
    let barno = -1;
    for (const b of info.bars) {
      if (b.size < EPF_VHOST_EXT.END) continue;
      if (rc.bar(b.barno).read32(EPF_VHOST_EXT.MAGIC) === EPF_VHOST_MAGIC) {
        barno = b.barno;
        break;
      }
    }
    if (barno < 0) throw new PciEpfError('NOT_FOUND', `no BAR of ${hex(info.vendorId)}:${hex(info.deviceId)} holds the register block signature ${hex(EPF_VHOST_MAGIC)}`);
    const alloc = rc.allocIrqVectors(1 + EPF_VHOST_MAX_VQS, options.irqTypes ?? ['msix', 'msi', 'intx']);
    return new VirtioPciEpf(rc, barno, { device: info.subsysId, vendor: info.subsysVendorId }, options, alloc.type, alloc.vectors);
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

  // ---- interrupts --------------------------------------------------------------------------------

  #installIrqs(): void {
    const rc = this.rc;
    if (this.#irqType === 'intx') {
      rc.requestIrq(0, () => this.#intx());
      return;
    }
    // Vector 0: configuration changes; vector 1 + n: queue n. With fewer vectors, all share 0.
    rc.requestIrq(0, () => this.#shared());
    for (let v = 1; v < this.#vectors; v++) {
      const q = v - 1;
      rc.requestIrq(v, () => {
        this.stats.interrupts++;
        this.#queues[q]?.vq.interrupt();
      });
    }
  }

  #perQueueVectors(): boolean {
    return this.#irqType !== 'intx' && this.#vectors >= 1 + this.#queues.length;
  }

  /** Vector 0: the configuration vector, and every queue when vectors are shared. */
  #shared(): void {
    this.stats.interrupts++;
    if (!this.#perQueueVectors()) for (const q of this.#queues) q.vq.interrupt();
    this.#configCheck();
  }

  /** INTx: read `isr` (read-to-clear) and act on its bits (virtio_pci `vp_interrupt`). */
  #intx(): void {
    this.stats.interrupts++;
    const isr = this.#regs.read32(EPF_VHOST_REG.ISR);
    if ((isr & VIRTIO_PCI_ISR.QUEUE) !== 0) for (const q of this.#queues) q.vq.interrupt();
    if ((isr & VIRTIO_PCI_ISR.CONFIG) !== 0) this.#configCheck(true);
  }

  #configCheck(force = false): void {
    const g = this.#regs.read8(EPF_VHOST_REG.CONFIG_GENERATION);
    if (!force && g === this.#generation) return;
    this.#generation = g;
    const dev = this.#device;
    if (dev !== undefined && (dev.status & VIRTIO_CONFIG_S.DRIVER_OK) !== 0) void dev.notifyConfigChanged().catch(() => undefined);
  }

  // ---- commands (rfc-protocol §2.2) --------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new PciEpfError('BAD_STATE', 'the transport is closed');
  }

  async #command(cmdOff: number, statusOff: number, cmd: number, db: number, what: string): Promise<number> {
    this.#checkOpen();
    const r = this.#regs;
    if (!this.rc.linkUp) throw new PciEpfError('LINK_DOWN', `${what}: the link is down`);
    // A posted NOTIFY not yet taken by the EP's poller shares this byte: let it go first.
    if (r.read8(cmdOff) !== 0) {
      await this.rc.waitFor(() => r.read8(cmdOff) === 0, { timeoutMs: this.commandTimeoutMs, what: `${what}: the previous command` });
    }
    // A result left by a command that timed out is stale: clear it (the defined handshake).
    if (r.read8(statusOff) !== EPF_VHOST_CMD_STATUS.NONE) r.write8(statusOff, EPF_VHOST_CMD_STATUS.NONE);
    r.write8(cmdOff, cmd);
    if (this.#db !== undefined) this.#db.write32(this.#dbOffset, db);
    try {
      await this.rc.waitFor(() => r.read8(statusOff) !== EPF_VHOST_CMD_STATUS.NONE, { timeoutMs: this.commandTimeoutMs, what });
    } catch (e) {
      // Withdraw the command, so an endpoint that comes back does not act on it late.
      if (r.read8(cmdOff) === cmd) r.write8(cmdOff, 0);
      throw e;
    }
    const st = r.read8(statusOff);
    r.write8(statusOff, EPF_VHOST_CMD_STATUS.NONE);
    return st;
  }

  #deviceCmd(cmd: number, what: string): Promise<number> {
    return this.#lock.run(() => {
      this.stats.commands++;
      return this.#command(EPF_VHOST_REG.CMD, EPF_VHOST_REG.CMD_STATUS, cmd, EPF_VHOST_DB.DEVICE_CMD, what);
    });
  }

  #queueCmd(q: number, cmd: number, what: string): Promise<number> {
    return this.#qlocks[q]!.run(async () => {
      this.stats.queueCommands++;
      const st = this.#queues[q];
      if (st !== undefined) st.busy = true;
      try {
        return await this.#command(qreg(q, EPF_VHOST_QUEUE_REG.CMD), qreg(q, EPF_VHOST_QUEUE_REG.CMD_STATUS), cmd, EPF_VHOST_DB.QUEUE_CMD, what);
      } finally {
        if (st !== undefined) {
          st.busy = false;
          if (st.kickPending) {
            st.kickPending = false;
            this.#kick(q);
          }
        }
      }
    });
  }

  /** A kick (Virtqueue notify): a doorbell write, or a posted NOTIFY the EP's poller takes. */
  #kick(q: number): boolean {
    if (this.#closed || !this.rc.linkUp) return false;
    this.stats.kicks++;
    if (this.#db !== undefined) {
      this.#db.write32(this.#dbOffset, EPF_VHOST_DB.KICK + q);
      return true;
    }
    const st = this.#queues[q];
    if (st?.busy) {
      st.kickPending = true;
      return true;
    }
    const r = this.#regs;
    const off = qreg(q, EPF_VHOST_QUEUE_REG.CMD);
    if (r.read8(off) === EPF_VHOST_QUEUE_CMD.NOTIFY) this.stats.kicksMerged++;
    else r.write8(off, EPF_VHOST_QUEUE_CMD.NOTIFY);
    return true;
  }

  // ---- VirtioConfigOps ---------------------------------------------------------------------------

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.getFeatures} */
  getFeatures(): bigint {
    this.#checkOpen();
    const r = this.#regs;
    // rfc-protocol §2.1: the RC reads 0x00 (low), then 0x04 (high).
    const lo = r.read32(EPF_VHOST_REG.HOST_FEATURES);
    return (BigInt(r.read32(EPF_VHOST_REG.HOST_FEATURES + 4)) << 32n) | BigInt(lo);
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.finalizeFeatures} */
  async finalizeFeatures(driverFeatures: bigint): Promise<void> {
    const [lo, hi] = split64(driverFeatures);
    this.#regs.write32(EPF_VHOST_REG.GUEST_FEATURES, lo);
    this.#regs.write32(EPF_VHOST_REG.GUEST_FEATURES + 4, hi);
    const st = await this.#deviceCmd(EPF_VHOST_HOST_CMD.FINALIZE_FEATURES, 'FINALIZE_FEATURES');
    if (st !== EPF_VHOST_CMD_STATUS.OKAY) throw new PciEpfError('COMMAND_FAILED', `FINALIZE_FEATURES ${hex(driverFeatures)} answered ERROR`);
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.getStatus} */
  getStatus(): number {
    this.#checkOpen();
    return this.#regs.read8(EPF_VHOST_REG.DEVICE_STATUS);
  }

  /**
   * Writes `device_status` and sends SET_STATUS. An ERROR answer is not thrown: the
   * status the endpoint left tells what happened (FEATURES_OK not kept, §3.1.1 step 6).
   */
  async setStatus(status: number): Promise<void> {
    this.#regs.write8(EPF_VHOST_REG.DEVICE_STATUS, status);
    await this.#deviceCmd(EPF_VHOST_HOST_CMD.SET_STATUS, `SET_STATUS ${hex(status)}`);
  }

  /** Sends RESET (rfc-protocol §2.3 RC step 1); the endpoint clears the status and every queue. */
  async reset(): Promise<void> {
    const st = await this.#deviceCmd(EPF_VHOST_HOST_CMD.RESET, 'RESET');
    if (st !== EPF_VHOST_CMD_STATUS.OKAY) throw new PciEpfError('COMMAND_FAILED', 'RESET answered ERROR');
  }

  /** rfc-protocol §2.3 RC step 6, for each queue. */
  async findVqs(specs: readonly VirtqueueSpec[], ring: VirtioRingOptions): Promise<Virtqueue[]> {
    this.#checkOpen();
    if (specs.length > EPF_VHOST_MAX_VQS) throw new RangeError(`specs: the register block has ${EPF_VHOST_MAX_VQS} queues, ${specs.length} asked`);
    if (this.#queues.length > 0) throw new PciEpfError('BAD_STATE', 'queues exist; delVqs first');
    const r = this.#regs;
    // The configuration vector: write it, read it back (the RFC's RC does).
    const cfgVector = this.#irqType === 'intx' ? VIRTIO_MSI_NO_VECTOR : 0;
    r.write16(EPF_VHOST_REG.MSIX_CONFIG, cfgVector);
    r.read16(EPF_VHOST_REG.MSIX_CONFIG);
    this.#generation = r.read8(EPF_VHOST_REG.CONFIG_GENERATION);
    // Vector 1 + n per queue when there are enough (virtio_pci's per-vq vectors), else all on 0.
    const perQueue = this.#irqType !== 'intx' && this.#vectors >= 1 + specs.length;
    const made: QueueState[] = [];
    try {
      for (let i = 0; i < specs.length; i++) {
        const spec = specs[i]!;
        if ((r.read16(qreg(i, EPF_VHOST_QUEUE_REG.STATUS)) & EPF_VHOST_Q_STATUS_ENABLE) !== 0) {
          throw new PciEpfError('BAD_STATE', `queue ${i} is already enabled (rfc-protocol §2.3 step 6)`);
        }
        const max = r.read16(qreg(i, EPF_VHOST_QUEUE_REG.NUM_BUFFERS));
        if (max === 0) throw new PciEpfError('NOT_FOUND', `queue ${i} does not exist (num_buffers 0)`);
        let num = Math.min(spec.size ?? max, max);
        while ((num & (num - 1)) !== 0) num &= num - 1;
        const ringBytes = alignUp(vringSize(num, EPF_VHOST_VRING_ALIGN), 16);
        const indirect = ring.indirect && this.#segs >= 2;
        const slot = this.#rings.alloc(ringBytes + (indirect ? num * this.#segs * 16 : 0));
        if (slot < 0) throw new PciEpfError('BAD_CONFIG', `no RC memory left for the ring of queue ${i}`);
        this.rc.memory.view(slot, ringBytes).fill(0);
        const index = i;
        const vq = new Virtqueue({
          memory: this.rc.memory,
          layout: vringLegacyLayout(slot, num, EPF_VHOST_VRING_ALIGN),
          index,
          name: spec.name,
          eventIdx: ring.eventIdx,
          ...(indirect ? { indirect: { area: slot + ringBytes, maxSegments: this.#segs } } : {}),
          notify: () => this.#kick(index),
          ...(spec.callback === undefined ? {} : { callback: spec.callback }),
        });
        const st: QueueState = { vq, slot, spec, vector: VIRTIO_MSI_NO_VECTOR, busy: false, kickPending: false };
        made.push(st);
        this.#queues = made;
        if (num !== max) r.write16(qreg(i, EPF_VHOST_QUEUE_REG.NUM_BUFFERS), num);
        this.#writeAddr(i, slot);
        const res = await this.#queueCmd(i, EPF_VHOST_QUEUE_CMD.ACTIVATE, `ACTIVATE queue ${i}`);
        if (res !== EPF_VHOST_CMD_STATUS.OKAY) throw new PciEpfError('COMMAND_FAILED', `ACTIVATE of queue ${i} (ring at ${hex(slot)}, ${num} entries) answered ERROR`);
        // Then the vector (the RFC writes it after ACTIVATE).
        st.vector = this.#irqType === 'intx' ? VIRTIO_MSI_NO_VECTOR : perQueue ? 1 + i : 0;
        r.write16(qreg(i, EPF_VHOST_QUEUE_REG.MSIX_VECTOR), st.vector);
      }
    } catch (e) {
      await this.#teardown();
      throw e;
    }
    return made.map((s) => s.vq);
  }

  #writeAddr(q: number, addr: number): void {
    this.#regs.write32(qreg(q, EPF_VHOST_QUEUE_REG.QUEUE_ADDR), addr % 0x1_0000_0000);
    this.#regs.write32(qreg(q, EPF_VHOST_QUEUE_REG.QUEUE_ADDR) + 4, Math.floor(addr / 0x1_0000_0000));
  }

  /** Teardown (rfc-protocol §2.3): NO_VECTOR, then DEACTIVATE for an enabled queue; ring memory freed. */
  async delVqs(): Promise<void> {
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    const r = this.#regs;
    const queues = this.#queues;
    this.#queues = [];
    for (let i = 0; i < queues.length; i++) {
      if (this.rc.linkUp && !this.#closed) {
        r.write16(qreg(i, EPF_VHOST_QUEUE_REG.MSIX_VECTOR), VIRTIO_MSI_NO_VECTOR);
        if ((r.read16(qreg(i, EPF_VHOST_QUEUE_REG.STATUS)) & EPF_VHOST_Q_STATUS_ENABLE) !== 0) {
          try {
            await this.#queueCmd(i, EPF_VHOST_QUEUE_CMD.DEACTIVATE, `DEACTIVATE queue ${i}`);
          } catch {
            // Teardown goes on: a dead endpoint must not keep the driver from letting go.
          }
        }
      }
      this.#rings.free(queues[i]!.slot);
    }
  }

  /**
   * Deactivates queue `index` (DEACTIVATE): the endpoint stops using its ring. The
   * driver keeps its `Virtqueue`; {@link VirtioPciEpf.reactivateQueue} brings it back.
   */
  async deactivateQueue(index: number): Promise<void> {
    const st = this.#queues[index];
    if (st === undefined) throw new RangeError(`index ${index}: no such queue`);
    const res = await this.#queueCmd(index, EPF_VHOST_QUEUE_CMD.DEACTIVATE, `DEACTIVATE queue ${index}`);
    if (res !== EPF_VHOST_CMD_STATUS.OKAY) throw new PciEpfError('COMMAND_FAILED', `DEACTIVATE of queue ${index} answered ERROR`);
  }

  /**
   * Activates a deactivated queue again on a fresh ring: buffers still in it are detached
   * (returned in order), the `Virtqueue` is reset and re-published at the same address.
   */
  async reactivateQueue(index: number): Promise<unknown[]> {
    const st = this.#queues[index];
    if (st === undefined) throw new RangeError(`index ${index}: no such queue`);
    const r = this.#regs;
    if ((r.read16(qreg(index, EPF_VHOST_QUEUE_REG.STATUS)) & EPF_VHOST_Q_STATUS_ENABLE) !== 0) throw new PciEpfError('BAD_STATE', `queue ${index} is enabled`);
    const detached: unknown[] = [];
    for (let t = st.vq.detachUnusedBuf(); t !== undefined; t = st.vq.detachUnusedBuf()) detached.push(t);
    st.vq.reset();
    const max = r.read16(qreg(index, EPF_VHOST_QUEUE_REG.NUM_BUFFERS));
    if (st.vq.num !== max) r.write16(qreg(index, EPF_VHOST_QUEUE_REG.NUM_BUFFERS), st.vq.num);
    this.#writeAddr(index, st.slot);
    const res = await this.#queueCmd(index, EPF_VHOST_QUEUE_CMD.ACTIVATE, `ACTIVATE queue ${index}`);
    if (res !== EPF_VHOST_CMD_STATUS.OKAY) throw new PciEpfError('COMMAND_FAILED', `ACTIVATE of queue ${index} answered ERROR`);
    r.write16(qreg(index, EPF_VHOST_QUEUE_REG.MSIX_VECTOR), st.vector);
    return detached;
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.getConfig} */
  getConfig(offset: number, dst: Uint8Array): void {
    this.#checkOpen();
    if (offset + dst.length > this.configSize) throw new RangeError(`config ${offset}+${dst.length} is beyond the ${this.configSize} bytes the endpoint defines`);
    this.#regs.readBytes(this.#cfgOffset + offset, dst);
  }

  /** {@inheritDoc @x/virtio-core#VirtioConfigOps.setConfig} */
  setConfig(offset: number, src: Uint8Array): void {
    this.#checkOpen();
    if (offset + src.length > this.configSize) throw new RangeError(`config ${offset}+${src.length} is beyond the ${this.configSize} bytes the endpoint defines`);
    this.#regs.writeBytes(this.#cfgOffset + offset, src);
  }

  /** `config_generation` (unused by the RFC; the endpoint moves it on every config change). */
  generation(): number {
    this.#checkOpen();
    return this.#regs.read8(EPF_VHOST_REG.CONFIG_GENERATION);
  }

  /** Stops using the link (interrupt vectors freed). Queues are dropped without commands. */
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
