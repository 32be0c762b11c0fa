// The root-complex (RC) side: VirtioConfigOps over the BAR. This is the half of the
// template a transport author writes for the driver role: every op moves values to and
// from the device through the wire and nothing else; virtio-core does the §3.1
// sequence. Compare RFC patch 18 (virtio_pci_epf) and rfc-protocol §2.2–2.3.
import { ArrayBufferMemory, Virtqueue, layoutSpan, vringLegacyLayout } from '@x/vring';
import {
  GenPool,
  VirtioDevice,
  VirtioError,
  type VirtioBus,
  type VirtioConfigOps,
  type VirtioDeviceId,
  type VirtioRingOptions,
  type VirtqueueSpec,
} from '@x/virtio-core';
import { BAR, CMD, CMD_STATUS, DB, QCMD, QREG, Q_ENABLE, RING_ALIGN, qreg, type BarLink } from './bar.js';
import { BarPort, turn } from './port.js';

/** Options of {@link openRc}. */
export interface RcOptions {
  /** Command timeout in ms (the RFC: 1 s, rfc-protocol §2.2). Default 1000. */
  timeoutMs?: number;
  /** How long to wait for an EP to appear, in ms. Default 5000. */
  attachTimeoutMs?: number;
  /** Wait for the EP's queues (num_queues > 0) before resolving. Default true. */
  requireQueues?: boolean;
  /** Ring the doorbell after each command. Default true; false gives the RFC's pure polling. */
  doorbell?: boolean;
  /** Bytes of RC memory for rings; the rest is the buffer region core allocates from. Default 256 KiB. */
  ringArea?: number;
}

/** Indirect descriptors per buffer when INDIRECT_DESC is negotiated. */
const INDIRECT_SEGMENTS = 8;

/** The RC driver of one EP function. Create it with {@link openRc} or {@link attachRc}. */
export class RcTransport {
  readonly link: BarLink;
  /** RC memory at its bus addresses (rings and buffers). */
  readonly memory: ArrayBufferMemory;
  readonly ops: VirtioConfigOps;
  readonly #bar: BarPort;
  readonly #timeoutMs: number;
  readonly #doorbell: boolean;
  readonly #rings: GenPool;
  #vqs: Array<{ vq: Virtqueue; alloc: number } | undefined> = [];
  #device: VirtioDevice | undefined;
  #bus: VirtioBus | undefined;
  #lock: Promise<void> = Promise.resolve();
  #closed = false;
  #msiSeen: number[];
  readonly #irq: Promise<void>;

  constructor(link: BarLink, bar: BarPort, options: RcOptions) {
    this.link = link;
    this.#bar = bar;
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#doorbell = options.doorbell ?? true;
    const ringArea = options.ringArea ?? 256 * 1024;
    this.memory = new ArrayBufferMemory(link.memory, { base: link.rcBase, name: 'RC memory' });
    this.#rings = new GenPool({ base: link.rcBase, size: ringArea, align: 16 });
    // Buffers come from core's own allocator over this region (no allocBuffer op): the
    // other way VirtioConfigOps offers, `dmaRegion` (Linux dma_alloc_coherent).
    const dmaRegion = Object.freeze({ memory: this.memory, addr: link.rcBase + ringArea, size: link.memory.byteLength - ringArea });
    this.ops = this.#makeOps(dmaRegion);
    this.#msiSeen = Array.from({ length: DB.VECTORS }, (_, v) => bar.db(DB.MSI_VECTOR + v));
    this.#irq = this.#run();
  }

  /** The device's identity from the PCI config header (the RFC takes it from the subsystem ids). */
  get id(): VirtioDeviceId {
    return { device: this.#bar.db(DB.SUBSYS_ID) >>> 0, vendor: this.#bar.db(DB.SUBSYS_VENDOR) >>> 0 };
  }

  /** A VirtioDevice over these ops that receives configuration interrupts. */
  createDevice(): VirtioDevice {
    this.#device = new VirtioDevice({ id: this.id, ops: this.ops });
    return this.#device;
  }

  /** The RC's view of queue `q`'s ring size (num_buffers; 0 = no queue). */
  numBuffers(q: number): number {
    return this.#bar.r16(qreg(q, QREG.NUM_BUFFERS));
  }

  /** Sets up queue `q` (RFC bring-up step 6); used by findVqs and by a raw peer. */
  setupVq<T>(q: number, spec: VirtqueueSpec, ring: VirtioRingOptions): Promise<Virtqueue<T>> {
    return this.#locked(() => this.#setupVq<T>(q, spec, ring));
  }

  /** Sends a device command and returns whether the EP answered OKAY. */
  command(cmd: number): Promise<boolean> {
    return this.#locked(() => this.#command(BAR.CMD, BAR.CMD_STATUS, cmd));
  }

  /** Waits until the EP has no command or kick pending and every MSI was handled. */
  async settle(): Promise<void> {
    const bar = this.#bar;
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      let busy = bar.r8(BAR.CMD) !== CMD.NONE;
      for (let q = 0; q < BAR.MAX_QUEUES; q++) if (bar.r8(qreg(q, QREG.CMD)) !== QCMD.NONE) busy = true;
      for (let v = 0; v < DB.VECTORS; v++) if (bar.db(DB.MSI_VECTOR + v) !== this.#msiSeen[v]) busy = true;
      if (!busy || bar.db(DB.EP_ATTACHED) !== 1) return;
      if (Date.now() > deadline) throw new VirtioError('TIMEOUT', `the link did not settle in ${this.#timeoutMs} ms`);
      await turn();
    }
  }

  /** Unregisters the device ({@link attachRc}) and detaches. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#bus !== undefined && this.#device?.bus === this.#bus) await this.#bus.unregisterDevice(this.#device);
    this.#closed = true;
    this.#bar.dbSet(DB.RC_ATTACHED, 0);
    this.#bar.ring(DB.MSI);
    await this.#irq;
  }

  /** @internal */
  setBus(bus: VirtioBus): void {
    this.#bus = bus;
  }

  // ---- the command protocol (rfc-protocol §2.2, with the handshake fixed) -------------

  #locked<T>(f: () => Promise<T>): Promise<T> {
    const r = this.#lock.then(f);
    this.#lock = r.then(
      () => undefined,
      () => undefined,
    );
    return r;
  }

  async #command(cmdOff: number, statusOff: number, cmd: number): Promise<boolean> {
    const bar = this.#bar;
    if (this.#closed) throw new VirtioError('TRANSPORT', 'the RC side is closed');
    // The fix for the review's question "who resets cmd_status?": the RC clears it
    // before every command, so a stale OKAY can never be taken for this one's answer.
    bar.w8(statusOff, CMD_STATUS.NONE);
    bar.w8(cmdOff, cmd);
    if (this.#doorbell) bar.ring(DB.DOORBELL);
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const seen = bar.db(DB.ACK);
      const st = bar.r8(statusOff);
      if (st !== CMD_STATUS.NONE) {
        bar.w8(statusOff, CMD_STATUS.NONE); // RFC step 4
        return st === CMD_STATUS.OKAY;
      }
      if (bar.db(DB.EP_ATTACHED) !== 1) throw new VirtioError('TRANSPORT', `command ${cmd}: the EP is gone`);
      const left = deadline - Date.now();
      if (left <= 0) {
        bar.cas8(cmdOff, cmd, 0); // withdraw it, so a late EP does not act on it
        throw new VirtioError('TIMEOUT', `the EP did not answer command ${cmd} within ${this.#timeoutMs} ms`);
      }
      await bar.wait(DB.ACK, seen, Math.min(left, 50));
    }
  }

  async #setupVq<T>(q: number, spec: VirtqueueSpec, ring: VirtioRingOptions): Promise<Virtqueue<T>> {
    const bar = this.#bar;
    if (q < 0 || q >= BAR.MAX_QUEUES) throw new RangeError(`q must be in 0..${BAR.MAX_QUEUES - 1}, got ${q}`);
    // RFC step 6: fail if ENABLE is already set.
    if ((bar.r16(qreg(q, QREG.STATUS)) & Q_ENABLE) !== 0) throw new VirtioError('TRANSPORT', `queue ${q} is already enabled`);
    const max = bar.r16(qreg(q, QREG.NUM_BUFFERS));
    if (max === 0) throw new VirtioError('TRANSPORT', `queue ${q} does not exist (num_buffers 0)`);
    let num = Math.min(spec.size ?? max, max);
    while ((num & (num - 1)) !== 0) num &= num - 1;
    // One contiguous legacy ring at 4096 alignment (the RFC's single queue_addr), then its indirect tables.
    const ringBytes = layoutSpan(vringLegacyLayout(0, num, RING_ALIGN)).end;
    const segs = ring.indirect ? INDIRECT_SEGMENTS : 0;
    const alloc = this.#rings.alloc(RING_ALIGN + ringBytes + num * segs * 16);
    if (alloc < 0) throw new VirtioError('NO_BUFFER_SPACE', `no room for queue ${q}'s ring`);
    try {
      const addr = Math.ceil(alloc / RING_ALIGN) * RING_ALIGN;
      this.memory.write(addr, new Uint8Array(ringBytes)); // zeroed (§2.7.10.1)
      const layout = vringLegacyLayout(addr, num, RING_ALIGN);
      const vq = new Virtqueue<T>({
        memory: this.memory,
        layout,
        index: q,
        name: spec.name,
        eventIdx: ring.eventIdx,
        ...(segs > 0 ? { indirect: { area: Math.ceil((addr + ringBytes) / 16) * 16, maxSegments: segs } } : {}),
        notify: () => this.#kick(q),
        ...(spec.callback ? { callback: spec.callback } : {}),
      });
      bar.w16(qreg(q, QREG.NUM_BUFFERS), num); // the size chosen (see README)
      bar.w32(qreg(q, QREG.QUEUE_ADDR), addr % 0x1_0000_0000);
      bar.w32(qreg(q, QREG.QUEUE_ADDR) + 4, Math.floor(addr / 0x1_0000_0000));
      bar.w16(qreg(q, QREG.MSIX_VECTOR), q + 1); // vector 0 is the configuration vector
      if (!(await this.#command(qreg(q, QREG.CMD), qreg(q, QREG.CMD_STATUS), QCMD.ACTIVATE))) {
        throw new VirtioError('TRANSPORT', `the EP refused to activate queue ${q}`);
      }
      this.#vqs[q] = { vq: vq as Virtqueue, alloc };
      return vq;
    } catch (e) {
      this.#rings.free(alloc);
      throw e;
    }
  }

  /** A kick: the NOTIFY queue command, not awaited (a second kick before the EP saw the first is the same kick). */
  #kick(q: number): boolean {
    if (this.#closed) return false;
    this.#bar.cas8(qreg(q, QREG.CMD), QCMD.NONE, QCMD.NOTIFY);
    if (this.#doorbell) this.#bar.ring(DB.DOORBELL);
    return true;
  }

  async #delVqs(): Promise<void> {
    for (let q = 0; q < this.#vqs.length; q++) {
      const e = this.#vqs[q];
      if (e === undefined) continue;
      // RFC teardown: DEACTIVATE (here awaited, bounded, so the EP has let go of the ring).
      if (this.#bar.db(DB.EP_ATTACHED) === 1) await this.#command(qreg(q, QREG.CMD), qreg(q, QREG.CMD_STATUS), QCMD.DEACTIVATE).catch(() => false);
      this.#rings.free(e.alloc);
    }
    this.#vqs = [];
  }

  // ---- MSI-X (EP → RC) -------------------------------------------------------------

  async #run(): Promise<void> {
    const bar = this.#bar;
    while (!this.#closed) {
      const seen = bar.db(DB.MSI);
      for (let v = 0; v < DB.VECTORS; v++) {
        const n = bar.db(DB.MSI_VECTOR + v);
        if (n === this.#msiSeen[v]) continue;
        this.#msiSeen[v] = n;
        this.#vector(v);
      }
      if (bar.db(DB.MSI) !== seen) {
        await turn();
        continue;
      }
      await bar.wait(DB.MSI, seen, 1000);
    }
  }

  #vector(v: number): void {
    if (v === this.#bar.r16(BAR.MSIX_CONFIG)) {
      void this.#device?.notifyConfigChanged().catch(() => undefined);
      return;
    }
    for (const e of this.#vqs) {
      if (e === undefined || this.#bar.r16(qreg(e.vq.index, QREG.MSIX_VECTOR)) !== v) continue;
      try {
        e.vq.interrupt();
      } catch {
        // A broken queue stays broken; its driver sees it on the next call.
      }
    }
  }

  // ---- VirtioConfigOps ---------------------------------------------------------------

  #makeOps(dmaRegion: VirtioConfigOps['dmaRegion']): VirtioConfigOps {
    const bar = this.#bar;
    const cmd = (c: number) => this.#command(BAR.CMD, BAR.CMD_STATUS, c);
    const checkConfig = (offset: number, len: number): void => {
      if (offset + len > BAR.CONFIG_SIZE) throw new RangeError(`offset: ${offset}+${len} is beyond the ${BAR.CONFIG_SIZE}-byte config space`);
    };
    return {
      getFeatures: () => bar.r64(BAR.HOST_FEATURES),
      finalizeFeatures: (f: bigint) =>
        this.#locked(async () => {
          bar.w64(BAR.GUEST_FEATURES, f);
          // An ERROR here is the device refusing the features: FEATURES_OK will not
          // stick, which virtio core reads back (§3.1.1 step 6).
          await cmd(CMD.FINALIZE_FEATURES);
        }),
      getStatus: () => bar.r8(BAR.DEVICE_STATUS),
      setStatus: (s: number) =>
        this.#locked(async () => {
          bar.w8(BAR.DEVICE_STATUS, s);
          await cmd(CMD.SET_STATUS); // ERROR: the device corrected the status; core reads it back
        }),
      reset: () =>
        this.#locked(async () => {
          // Bring-up step 1: the RESET command; the fixed EP clears the status registers.
          if (!(await cmd(CMD.RESET))) throw new VirtioError('TRANSPORT', 'the EP refused RESET');
        }),
      findVqs: (specs: readonly VirtqueueSpec[], ring: VirtioRingOptions) =>
        this.#locked(async () => {
          bar.w16(BAR.MSIX_CONFIG, 0);
          const vqs: Virtqueue[] = [];
          try {
            for (let q = 0; q < specs.length; q++) vqs.push(await this.#setupVq(q, specs[q]!, ring));
          } catch (e) {
            await this.#delVqs();
            throw e;
          }
          return vqs;
        }),
      delVqs: () => this.#locked(() => this.#delVqs()),
      getConfig: (offset: number, dst: Uint8Array) => {
        checkConfig(offset, dst.length);
        for (let i = 0; i < dst.length; i++) dst[i] = bar.r8(BAR.CONFIG + offset + i);
      },
      setConfig: (offset: number, src: Uint8Array) => {
        checkConfig(offset, src.length);
        for (let i = 0; i < src.length; i++) bar.w8(BAR.CONFIG + offset + i, src[i]!);
      },
      generation: async () => {
        // Odd: the EP is rewriting the config space (a seqlock); wait, bounded.
        for (const deadline = Date.now() + this.#timeoutMs; ; ) {
          const g = bar.r8(BAR.CONFIG_GENERATION);
          if ((g & 1) === 0 || Date.now() > deadline) return g;
          await turn();
        }
      },
      dmaRegion,
    };
  }
}

/**
 * Opens the RC side of a link: waits (bounded) for an EP to be bound and, unless
 * `requireQueues` is false, for its queues; the RFC's probe maps BAR 0 and takes the ids
 * from the config header.
 */
export async function openRc(link: BarLink, options: RcOptions = {}): Promise<RcTransport> {
  const bar = new BarPort(link.bar);
  if (bar.db(DB.RC_ATTACHED) !== 0) throw new VirtioError('TRANSPORT', 'the link already has an RC driver');
  bar.dbSet(DB.RC_ATTACHED, 1);
  try {
    const deadline = Date.now() + (options.attachTimeoutMs ?? 5000);
    for (;;) {
      const seen = bar.db(DB.ACK);
      if (bar.db(DB.EP_ATTACHED) === 1 && (options.requireQueues === false || bar.r16(BAR.NUM_QUEUES) > 0)) break;
      if (Date.now() > deadline) throw new VirtioError('TIMEOUT', 'no EP function with queues appeared on the link');
      await bar.wait(DB.ACK, seen, 20);
    }
    return new RcTransport(link, bar, options);
  } catch (e) {
    bar.dbSet(DB.RC_ATTACHED, 0);
    throw e;
  }
}

/** Opens the RC side and registers a VirtioDevice over it on `bus` (Linux: the RC driver's probe). */
export async function attachRc(link: BarLink, bus: VirtioBus, options: RcOptions = {}): Promise<RcTransport> {
  const rc = await openRc(link, options);
  rc.setBus(bus);
  try {
    await bus.registerDevice(rc.createDevice());
  } catch (e) {
    await rc.close();
    throw e;
  }
  return rc;
}
