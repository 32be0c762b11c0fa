// The endpoint (EP) side: a vhost device whose VhostConfigOps live in the BAR. This is
// the half of the template a transport author writes for the device role: implement
// VhostConfigOps, report what the peer did with device.handleEvent, attach / detach
// rings, and call vq.kicked() on a doorbell. Compare RFC patch 19 (pci-epf-vhost).
import { ArrayBufferMemory, RegionMemory, vringLegacyLayout } from '@x/vring';
import {
  VHOST_NOTIFY,
  VIRTIO_CONFIG_S,
  VhostDevice,
  VhostError,
  VhostVirtqueue,
  type VhostBus,
  type VhostConfigOps,
  type VhostDeviceConfig,
  type VhostVqSpec,
} from '@x/vhost-core';
import { BAR, CMD, CMD_STATUS, DB, QCMD, QREG, Q_ENABLE, RING_ALIGN, qreg, type BarLink } from './bar.js';
import { BarPort, turn } from './port.js';

const S = VIRTIO_CONFIG_S;

/** Options of {@link EpTransport}. */
export interface EpOptions {
  /**
   * How often the EP looks at the command bytes without a doorbell, in ms. The RFC
   * polls every 1 ms (its only mechanism); here the doorbell wakes the EP at once and
   * the poll is the fallback. Default 1000.
   */
  pollMs?: number;
  /** EP-local address of its outbound window onto RC memory. Default 0x1_0000_0000. */
  windowBase?: number;
  /** Device attributes (queue size etc.). */
  config?: Partial<VhostDeviceConfig>;
}

/**
 * The EP function: one `VhostDevice` over the BAR. Create it, register `device` on a
 * `VhostBus` (or use {@link attachEp}), `close()` when done.
 */
export class EpTransport {
  readonly device: VhostDevice;
  /** The EP's outbound window: RC bus addresses → its local mapping of RC memory. */
  readonly window: RegionMemory;
  /** The last command the EP refused, for diagnostics. */
  lastError: unknown;
  readonly #bar: BarPort;
  readonly #pollMs: number;
  #vqs: VhostVirtqueue[] = [];
  #closed = false;
  readonly #loop: Promise<void>;
  #bus: VhostBus | undefined;

  constructor(link: BarLink, options: EpOptions = {}) {
    this.#bar = new BarPort(link.bar);
    this.#pollMs = options.pollMs ?? 1000;
    const windowBase = options.windowBase ?? 0x1_0000_0000;
    const local = new ArrayBufferMemory(link.memory, { base: windowBase, name: 'EP mapping of RC memory' });
    this.window = new RegionMemory({ name: 'EP outbound window' });
    this.window.map({ busAddr: link.rcBase, size: link.memory.byteLength, target: local, targetAddr: windowBase });
    this.device = new VhostDevice(this.#ops(), { id: { vendor: link.vendorId, device: link.deviceId }, parent: 'pci-epf-bar', ...(options.config ? { config: options.config } : {}) });
    const bar = this.#bar;
    if (bar.db(DB.EP_ATTACHED) !== 0) throw new VhostError('BUSY', 'the link already has an EP');
    // Bind: write the PCI config header, clear the BAR, then appear on the bus.
    for (let off = 0; off < BAR.CONFIG; off += 2) bar.w16(off, 0);
    bar.dbSet(DB.SUBSYS_VENDOR, link.vendorId);
    bar.dbSet(DB.SUBSYS_ID, link.deviceId);
    bar.dbSet(DB.EP_ATTACHED, 1);
    bar.ring(DB.ACK);
    this.#loop = this.#run().catch((e: unknown) => {
      this.lastError = e;
    });
  }

  /** Unregisters the device (if {@link attachEp} registered it) and stops the EP. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#bus !== undefined && this.device.bus === this.#bus) await this.#bus.unregisterDevice(this.device);
    this.#closed = true;
    this.#bar.dbSet(DB.EP_ATTACHED, 0);
    this.#bar.ring(DB.DOORBELL);
    this.#bar.ring(DB.ACK);
    await this.#loop;
  }

  /** @internal */
  setBus(bus: VhostBus): void {
    this.#bus = bus;
  }

  // The RFC's pollers, driven by the doorbell (and by the poll period as a fallback).
  async #run(): Promise<void> {
    const bar = this.#bar;
    while (!this.#closed) {
      const seen = bar.db(DB.DOORBELL);
      await this.#commands();
      if (this.#closed) break;
      if (bar.db(DB.DOORBELL) !== seen) {
        await turn();
        continue;
      }
      await bar.wait(DB.DOORBELL, seen, this.#pollMs);
    }
  }

  async #commands(): Promise<void> {
    const bar = this.#bar;
    const cmd = bar.r8(BAR.CMD);
    if (cmd !== CMD.NONE) {
      // RFC [ML19]: write 0 to cmd, act, write cmd_status.
      bar.w8(BAR.CMD, CMD.NONE);
      const err = await this.#device(cmd);
      if (err !== undefined) this.lastError = err;
      bar.w8(BAR.CMD_STATUS, err === undefined ? CMD_STATUS.OKAY : CMD_STATUS.ERROR);
      bar.ring(DB.ACK);
    }
    for (let q = 0; q < BAR.MAX_QUEUES; q++) {
      const qc = bar.r8(qreg(q, QREG.CMD));
      if (qc === QCMD.NONE) continue;
      bar.w8(qreg(q, QREG.CMD), QCMD.NONE);
      if (qc === QCMD.NOTIFY) {
        // A kick: no result is awaited (the RFC's RC waited ~1 ms here; this one does not).
        this.#vqs[q]?.kicked();
        continue;
      }
      let ok = false;
      try {
        ok = this.#queue(q, qc);
      } catch (e) {
        this.lastError = e;
      }
      bar.w8(qreg(q, QREG.CMD_STATUS), ok ? CMD_STATUS.OKAY : CMD_STATUS.ERROR);
      bar.ring(DB.ACK);
    }
  }

  async #device(cmd: number): Promise<VhostError | undefined> {
    const bar = this.#bar;
    switch (cmd) {
      case CMD.SET_STATUS:
        return this.device.handleEvent(VHOST_NOTIFY.SET_STATUS);
      case CMD.FINALIZE_FEATURES:
        return this.device.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, bar.r64(BAR.GUEST_FEATURES));
      case CMD.RESET: {
        const err = await this.device.handleEvent(VHOST_NOTIFY.RESET);
        // Fix (review of the RFC): the status registers are reset too.
        for (let q = 0; q < BAR.MAX_QUEUES; q++) {
          bar.w16(qreg(q, QREG.STATUS), 0);
          // Back to the size the EP allows (the RC may have written a smaller one).
          bar.w16(qreg(q, QREG.NUM_BUFFERS), this.#vqs[q]?.num ?? 0);
        }
        bar.w32(BAR.ISR, 0);
        return err;
      }
      default:
        // Fix: the RFC's EP only logged an unknown command, so the RC timed out.
        return new VhostError('NOT_SUPPORTED', `unknown command ${cmd}`);
    }
  }

  #queue(q: number, qc: number): boolean {
    const bar = this.#bar;
    const vq = this.#vqs[q];
    if (vq === undefined) return false;
    if (qc === QCMD.ACTIVATE) {
      const hi = bar.r32(qreg(q, QREG.QUEUE_ADDR) + 4);
      if (hi > 0x1f_ffff) return false; // above 2^53 - 1
      const addr = hi * 0x1_0000_0000 + bar.r32(qreg(q, QREG.QUEUE_ADDR));
      // The RC wrote back the size it chose (≤ what the EP published).
      vq.attach(this.window, vringLegacyLayout(addr, bar.r16(qreg(q, QREG.NUM_BUFFERS)), RING_ALIGN));
      bar.w16(qreg(q, QREG.STATUS), Q_ENABLE);
      return true;
    }
    if (qc === QCMD.DEACTIVATE) {
      vq.detach();
      bar.w16(qreg(q, QREG.STATUS), 0);
      bar.w16(qreg(q, QREG.NUM_BUFFERS), vq.num);
      return true;
    }
    return false;
  }

  /** Raises MSI-X vector `v` (and the ISR bit, so an INTx driver could work too). */
  #msi(v: number, isr: number): void {
    const bar = this.#bar;
    bar.orIsr(BAR.ISR, isr);
    if (v >= 0 && v < DB.VECTORS) bar.ring(DB.MSI_VECTOR + v);
    bar.ring(DB.MSI);
  }

  #ops(): VhostConfigOps {
    const bar = this.#bar;
    return {
      createVqs: (specs: readonly (VhostVqSpec & { readonly size: number })[]) => {
        if (specs.length > BAR.MAX_QUEUES) throw new RangeError(`specs: the BAR has ${BAR.MAX_QUEUES} queue blocks, ${specs.length} asked`);
        const vqs = specs.map(
          (s, index) =>
            new VhostVirtqueue({
              device: this.device,
              index,
              num: s.size,
              name: s.name,
              ...(s.callback ? { callback: s.callback } : {}),
              notify: (vq) => this.#msi(bar.r16(qreg(vq.index, QREG.MSIX_VECTOR)), 1),
            }),
        );
        vqs.forEach((vq, i) => bar.w16(qreg(i, QREG.NUM_BUFFERS), vq.num));
        bar.w16(BAR.NUM_QUEUES, vqs.length);
        this.#vqs = vqs;
        bar.ring(DB.ACK); // an RC waiting for the function's queues looks again
        return vqs;
      },
      delVqs: () => {
        for (const vq of this.#vqs) vq.detach();
        for (let q = 0; q < BAR.MAX_QUEUES; q++) {
          bar.w16(qreg(q, QREG.NUM_BUFFERS), 0);
          bar.w16(qreg(q, QREG.STATUS), 0);
        }
        bar.w16(BAR.NUM_QUEUES, 0);
        this.#vqs = [];
      },
      read: (dst, addr) => this.window.read(addr, dst),
      write: (addr, src) => this.window.write(addr, src),
      setFeatures: (f) => bar.w64(BAR.HOST_FEATURES, f),
      getStatus: () => bar.r8(BAR.DEVICE_STATUS),
      setStatus: (s) => {
        const wasLive = (bar.r8(BAR.DEVICE_STATUS) & S.DRIVER_OK) !== 0;
        bar.w8(BAR.DEVICE_STATUS, s);
        // §2.1.2: NEEDS_RESET on a live device comes with a configuration interrupt.
        if ((s & S.NEEDS_RESET) !== 0 && wasLive) this.#msi(bar.r16(BAR.MSIX_CONFIG), 2);
      },
      readConfig: (offset, dst) => {
        if (offset + dst.length > BAR.CONFIG_SIZE) throw new RangeError(`offset: ${offset}+${dst.length} is beyond the ${BAR.CONFIG_SIZE}-byte config space`);
        for (let i = 0; i < dst.length; i++) dst[i] = bar.r8(BAR.CONFIG + offset + i);
      },
      writeConfig: (offset, src) => {
        if (offset + src.length > BAR.CONFIG_SIZE) throw new RangeError(`offset: ${offset}+${src.length} is beyond the ${BAR.CONFIG_SIZE}-byte config space`);
        // config_generation as a seqlock: odd while the bytes change, so the RC retries a
        // read that overlaps this write even from another thread (§2.5.1).
        const g = bar.r8(BAR.CONFIG_GENERATION) | 1;
        bar.w8(BAR.CONFIG_GENERATION, g);
        for (let i = 0; i < src.length; i++) bar.w8(BAR.CONFIG + offset + i, src[i]!);
        bar.w8(BAR.CONFIG_GENERATION, (g + 1) & 0xff);
        if ((bar.r8(BAR.DEVICE_STATUS) & S.DRIVER_OK) !== 0) this.#msi(bar.r16(BAR.MSIX_CONFIG), 2);
      },
    };
  }
}

/** Creates the EP and registers its device on `bus` (the RFC's bind: `vhost_register_device`). */
export async function attachEp(link: BarLink, bus: VhostBus, options: EpOptions = {}): Promise<EpTransport> {
  const ep = new EpTransport(link, options);
  ep.setBus(bus);
  try {
    await bus.registerDevice(ep.device);
  } catch (e) {
    await ep.close();
    throw e;
  }
  return ep;
}
