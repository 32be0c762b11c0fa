import { GenPool, VIRTIO_BUFFER_ALIGN, VirtioDevice, VirtioError, type VirtioBuffer, type VirtioBus, type VirtioConfigOps, type VirtioDeviceId, type VirtioRingOptions, type VirtqueueSpec } from '@x/virtio-core';
import { Virtqueue, VringError, vringLegacyLayout, type GuestMemory } from '@x/vring';
import {
  NTB_HOST_CMD,
  NTB_HOST_CMD_STATUS,
  NTB_VIRTIO_BUFFER_OFFSET,
  NTB_VIRTIO_COMMAND_TIMEOUT_MS,
  NTB_VIRTIO_DB,
  NTB_VIRTIO_LINK_RETRY_MS,
  NTB_VIRTIO_MAX_VQS,
  NTB_VIRTIO_SPAD as SP,
  NTB_VIRTIO_TYPE,
  NTB_VIRTIO_VRING_ALIGN,
  ntbVirtioQueueOffset,
  ntbVirtioRingSpan,
} from './constants.js';
import { NtbError, isNtbError } from './errors.js';
import { NTB_DEF_PEER_IDX as PEER, type NtbDev } from './ntb-dev.js';
import { WorkQueue, alignUp, hex, join64, lo32, hi32 } from './internal/util.js';
import { clockSleep, systemClock, type NtbClock } from './wire.js';

/** Where an {@link NtbVirtio} is in its life. @public */
export type NtbVirtioState =
  /** Not started, or the link is down. */
  | 'down'
  /** The link is up; waiting for the vhost host's TYPE_VHOST (rfc-protocol §2.6). */
  | 'waiting'
  /** The handshake is done: a session (and its virtio device) is live. */
  | 'ready'
  /** Closed. */
  | 'closed';

/** What an {@link NtbVirtio} reports. @public */
export type NtbVirtioEvent =
  | { readonly type: 'link-up' }
  | { readonly type: 'handshake'; readonly session: number; readonly id: VirtioDeviceId; readonly mwAddr: number; readonly mwSize: number }
  | { readonly type: 'registered'; readonly session: number; readonly device: VirtioDevice }
  | { readonly type: 'link-down'; readonly session: number | undefined; readonly error: NtbError }
  | { readonly type: 'unregistered'; readonly session: number; readonly device: VirtioDevice }
  | { readonly type: 'error'; readonly error: unknown };

/** Options of {@link NtbVirtio}. @public */
export interface NtbVirtioOptions {
  /** The NTB device of this (the virtio) host. */
  readonly dev: NtbDev;
  /** Registers a virtio device here at each handshake (the RFC's `register_virtio_device`). Without it, use {@link NtbVirtio.ops}. */
  readonly bus?: VirtioBus;
  /** The host's clock. Default `systemClock`. */
  readonly clock?: NtbClock;
  /** Name of the virtio devices it registers. */
  readonly name?: string;
  /** How long a command waits for the vhost host's status, ms. Default 1000 (`COMMAND_TIMEOUT`). */
  readonly commandTimeoutMs?: number;
  /** How often a command re-reads the status when no doorbell wakes it, ms. Default 1. */
  readonly commandPollMs?: number;
  /** The handshake's retry period, ms. Default 10 (`NTB_LINK_DOWN_TIMEOUT`). */
  readonly linkRetryMs?: number;
  /** Descriptors per indirect table when INDIRECT_DESC is negotiated (0: never indirect). Default 8. */
  readonly indirectSegments?: number;
  /** Receives {@link NtbVirtioEvent}s. */
  readonly onEvent?: (event: NtbVirtioEvent) => void;
}

const S_DRIVER_OK = 4;

/** One link session: the ops of the virtio device registered for it. Dead once the link goes down. */
class Session implements VirtioConfigOps {
  readonly id: number;
  readonly deviceId: VirtioDeviceId;
  readonly mwAddr: number;
  readonly mwSize: number;
  readonly pool: GenPool;
  readonly vqs: Array<Virtqueue | undefined> = [];
  readonly #indirect: Array<number | undefined> = [];
  /** The queue sizes the vhost host published, read at the first findVqs after a reset. */
  #qmax: number[] | undefined;
  device: VirtioDevice | undefined;
  ended: NtbError | undefined;
  readonly #owner: NtbVirtio;
  readonly #dev: NtbDev;
  readonly #mem: GuestMemory;
  readonly #cmd = new WorkQueue();
  #wake: (() => void) | undefined;

  constructor(owner: NtbVirtio, id: number, deviceId: VirtioDeviceId, mwAddr: number, mwSize: number) {
    this.#owner = owner;
    this.#dev = owner.dev;
    this.id = id;
    this.deviceId = deviceId;
    this.mwAddr = mwAddr;
    this.mwSize = mwSize;
    // The window's backing is this host's RAM: reach it directly (ioremap), not through the bus dispatch.
    this.#mem = owner.dev.ioremap(mwAddr, mwSize);
    this.pool = new GenPool({ base: mwAddr + NTB_VIRTIO_BUFFER_OFFSET, size: mwSize - NTB_VIRTIO_BUFFER_OFFSET, align: VIRTIO_BUFFER_ALIGN });
  }

  /** The link went down: every later op fails with `error`, queues break with it as cause, waits end. */
  end(error: NtbError): void {
    if (this.ended !== undefined) return;
    this.ended = error;
    for (const vq of this.vqs) {
      if (vq !== undefined && vq.brokenBy === undefined) vq.brokenBy = new VringError('BROKEN', `${vq.name}: ${error.message}`, { cause: error });
    }
    this.wake();
  }

  /** Wakes a command waiting for its status (the vhost host rang the COMMAND doorbell). */
  wake(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #check(): void {
    if (this.ended !== undefined) throw this.ended;
  }

  /** `ntb_virtio_send_command`: write the command, wait for the status, reset the status to NONE. */
  #command(cmd: number, what: string): Promise<void> {
    return this.#cmd.run(async () => {
      this.#check();
      const dev = this.#dev;
      const o = this.#owner;
      dev.peerSpadWrite(PEER, SP.VHOST_COMMAND, cmd);
      if ((dev.dbValidMask() & (1 << NTB_VIRTIO_DB.COMMAND)) !== 0) dev.peerDbSet(1 << NTB_VIRTIO_DB.COMMAND);
      const deadline = o.clock.now() + o.commandTimeoutMs;
      let error: NtbError | undefined;
      for (;;) {
        this.#check();
        const st = dev.peerSpadRead(PEER, SP.VHOST_COMMAND_STATUS);
        if (st === NTB_HOST_CMD_STATUS.OKAY) break;
        if (st === NTB_HOST_CMD_STATUS.ERROR) {
          error = new NtbError('COMMAND_FAILED', `${dev.name}: the vhost host answered ${what} with ERROR`);
          break;
        }
        if (o.clock.now() >= deadline) {
          error = new NtbError('TIMEOUT', `${dev.name}: no status for ${what} within ${o.commandTimeoutMs} ms`);
          break;
        }
        await new Promise<void>((resolve) => {
          const cancel = o.clock.setTimer(o.commandPollMs, () => {
            this.#wake = undefined;
            resolve();
          });
          this.#wake = () => {
            cancel();
            resolve();
          };
        });
      }
      this.#check();
      dev.peerSpadWrite(PEER, SP.VHOST_COMMAND_STATUS, NTB_HOST_CMD_STATUS.NONE);
      if (error !== undefined) throw error;
    });
  }

  // ---- VirtioConfigOps ----

  getFeatures(): bigint {
    this.#check();
    const hi = this.#dev.peerSpadRead(PEER, SP.VHOST_FEATURES_UPPER);
    const lo = this.#dev.peerSpadRead(PEER, SP.VHOST_FEATURES_LOWER);
    this.#check();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  async finalizeFeatures(driverFeatures: bigint): Promise<void> {
    this.#check();
    this.#dev.peerSpadWrite(PEER, SP.VIRTIO_FEATURES_LOWER, Number(driverFeatures & 0xffff_ffffn));
    this.#dev.peerSpadWrite(PEER, SP.VIRTIO_FEATURES_UPPER, Number((driverFeatures >> 32n) & 0xffff_ffffn));
    await this.#command(NTB_HOST_CMD.FINALIZE_FEATURES, 'FINALIZE_FEATURES');
  }

  getStatus(): number {
    // After the link went down the device is gone: it reads as reset.
    if (this.ended !== undefined) return 0;
    const s = this.#dev.peerSpadRead(PEER, SP.VHOST_DEVICE_STATUS);
    return this.ended !== undefined ? 0 : s & 0xff;
  }

  async setStatus(status: number): Promise<void> {
    this.#check();
    this.#dev.peerSpadWrite(PEER, SP.VHOST_DEVICE_STATUS, status & 0xff);
    await this.#command(NTB_HOST_CMD.SET_STATUS, `SET_STATUS 0x${status.toString(16)}`);
  }

  async reset(): Promise<void> {
    // Nothing to reset across a link that is down; the vhost host resets itself on link down.
    if (this.ended !== undefined) return;
    this.#qmax = undefined;
    await this.#command(NTB_HOST_CMD.RESET, 'RESET');
  }

  findVqs(specs: readonly VirtqueueSpec[], ring: VirtioRingOptions): Virtqueue[] {
    this.#check();
    if (specs.length > NTB_VIRTIO_MAX_VQS) throw new RangeError(`specs: at most ${NTB_VIRTIO_MAX_VQS} queues (MAX_VQS), got ${specs.length}`);
    const vqs: Virtqueue[] = [];
    try {
      for (let i = 0; i < specs.length; i++) vqs.push(this.findVq(i, specs[i]!, ring));
      // Queues the driver did not ask for: tell the vhost host not to attach them.
      for (let i = specs.length; i < NTB_VIRTIO_MAX_VQS; i++) {
        if (this.#advertised()[i] !== 0) this.#dev.peerSpadWrite(PEER, SP.VHOST_QUEUE_BASE + i, 0);
      }
    } catch (e) {
      this.delVqs();
      throw e;
    }
    return vqs;
  }

  /** The queue sizes the vhost host published (spads 15–22), cached until the next reset. */
  #advertised(): number[] {
    if (this.#qmax === undefined) {
      const q: number[] = [];
      for (let i = 0; i < NTB_VIRTIO_MAX_VQS; i++) q.push(this.#dev.peerSpadRead(PEER, SP.VHOST_QUEUE_BASE + i));
      this.#check();
      this.#qmax = q;
    }
    return this.#qmax;
  }

  /** `ntb_virtio_find_vq`: queue `index` in the memory window, below BUFFER_OFFSET. */
  findVq(index: number, spec: VirtqueueSpec, ring: VirtioRingOptions): Virtqueue {
    this.#check();
    if (this.vqs[index] !== undefined) throw new VirtioError('BAD_STATE', `queue ${index} already exists`);
    const q = this.#advertised();
    const max = q[index]!;
    if (max === 0 || max > 32768 || (max & (max - 1)) !== 0) {
      throw new NtbError('PROTOCOL', `queue ${index}: the vhost host publishes ${max} buffers (VHOST_QUEUE_NUM_BUFFERS(${index})); need a power of two in 1..32768`);
    }
    // Queue i sits after the rings of queues 0..i-1 at their published sizes, each rounded
    // up to 4096 (the RFC's i·vring_size(num, 4096) left queue 1 misaligned).
    const offset = ntbVirtioQueueOffset(q.map((n) => (validNum(n) ? n : 0)), index);
    const span = ntbVirtioRingSpan(max);
    if (offset + span > NTB_VIRTIO_BUFFER_OFFSET) {
      throw new NtbError('NO_MEMORY', `queue ${index}: its ring would end at ${hex(offset + span)}, past BUFFER_OFFSET ${hex(NTB_VIRTIO_BUFFER_OFFSET)}`);
    }
    let num = max;
    if (spec.size !== undefined) {
      if (!(Number.isInteger(spec.size) && spec.size >= 1)) throw new RangeError(`spec.size must be a positive integer, got ${spec.size}`);
      while (num > spec.size) num >>>= 1;
    }
    const base = this.mwAddr + offset;
    // dma_alloc_coherent memory is zeroed; a previous session's ring must not show through.
    const view = this.#mem.view?.(base, span);
    if (view !== undefined) view.fill(0);
    else this.#mem.write(base, new Uint8Array(span));
    const segs = this.#owner.indirectSegments;
    let area = -1;
    if (ring.indirect && segs > 0) area = this.pool.alloc(num * segs * 16);
    const o = this.#owner;
    const bits = 1 << (NTB_VIRTIO_DB.QUEUE0 + index);
    const vq = new Virtqueue({
      memory: this.#mem,
      layout: vringLegacyLayout(base, num, NTB_VIRTIO_VRING_ALIGN),
      index,
      name: spec.name,
      eventIdx: ring.eventIdx,
      ...(area >= 0 ? { indirect: { area, maxSegments: segs } } : {}),
      ...(spec.callback === undefined ? {} : { callback: spec.callback }),
      notify: () => {
        if (this.ended !== undefined) return false;
        o.dev.peerDbSet(bits);
        return true;
      },
    });
    if (area >= 0) this.#indirect[index] = area;
    // Tell the vhost host the size the driver chose (virtio-pci's queue_size rule).
    this.#dev.peerSpadWrite(PEER, SP.VHOST_QUEUE_BASE + index, num);
    this.vqs[index] = vq;
    return vq;
  }

  delVqs(): void {
    for (let i = 0; i < this.vqs.length; i++) {
      const a = this.#indirect[i];
      if (a !== undefined && this.pool.owns(a)) this.pool.free(a);
    }
    this.vqs.length = 0;
    this.#indirect.length = 0;
  }

  /** Bytes of device configuration: the scratchpads from VHOST_DEVICE_CFG_SPACE on. */
  get configSize(): number {
    return Math.max(0, (this.#dev.spadCount() - SP.VHOST_DEVICE_CFG_SPACE) * 4);
  }

  #checkConfig(offset: number, len: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + len > this.configSize) {
      throw new RangeError(`config range ${offset}+${len} is outside the ${this.configSize} bytes of device configuration (spads ${SP.VHOST_DEVICE_CFG_SPACE}…)`);
    }
  }

  getConfig(offset: number, dst: Uint8Array): void {
    this.#check();
    this.#checkConfig(offset, dst.length);
    // Byte k of the configuration is byte k % 4 (little-endian) of scratchpad 23 + k / 4.
    let word = -1;
    let w = 0;
    for (let k = 0; k < dst.length; k++) {
      const at = offset + k;
      if (at >> 2 !== word) {
        word = at >> 2;
        w = this.#dev.peerSpadRead(PEER, SP.VHOST_DEVICE_CFG_SPACE + word);
      }
      dst[k] = (w >>> (8 * (at & 3))) & 0xff;
    }
    this.#check();
  }

  setConfig(offset: number, src: Uint8Array): void {
    this.#check();
    this.#checkConfig(offset, src.length);
    for (let k = 0; k < src.length; ) {
      const at = offset + k;
      const word = at >> 2;
      let w = this.#dev.peerSpadRead(PEER, SP.VHOST_DEVICE_CFG_SPACE + word);
      for (; k < src.length && (offset + k) >> 2 === word; k++) {
        const sh = 8 * ((offset + k) & 3);
        w = ((w & ~(0xff << sh)) | (src[k]! << sh)) >>> 0;
      }
      this.#dev.peerSpadWrite(PEER, SP.VHOST_DEVICE_CFG_SPACE + word, w);
    }
  }

  generation(): number {
    this.#check();
    // The vhost host holds the generation odd while it rewrites the configuration
    // (another thread): wait for an even value, bounded; core compares two reads.
    let g = this.#dev.peerSpadRead(PEER, SP.VHOST_CONFIG_GENERATION);
    for (let i = 0; i < 1000 && (g & 1) === 1; i++) g = this.#dev.peerSpadRead(PEER, SP.VHOST_CONFIG_GENERATION);
    return g;
  }

  allocBuffer(size: number): VirtioBuffer {
    this.#check();
    const addr = this.pool.alloc(size);
    if (addr < 0) {
      throw new VirtioError('NO_BUFFER_SPACE', `no ${size}-byte block in the memory window's pool (${this.pool.avail} of ${this.pool.size} bytes free)`);
    }
    const view = this.#mem.view?.(addr, size);
    if (view === undefined) {
      this.pool.free(addr);
      throw new NtbError('NO_MEMORY', `the host memory gives no view of ${hex(addr)}+${size}`);
    }
    return { addr, size, view };
  }

  freeBuffer(buf: VirtioBuffer): void {
    this.pool.free(buf.addr);
  }
}

function validNum(n: number): boolean {
  return n > 0 && n <= 32768 && (n & (n - 1)) === 0;
}

/**
 * The virtio host of the RFC's NTB use case (HOST1; `drivers/ntb/ntb_virtio.c`, RFC
 * patch 20): an NTB client that, at each link-up, completes the scratchpad handshake
 * with the vhost host (rfc-protocol §2.6), allocates the memory window's backing
 * (`dma_alloc_coherent`), translates inbound window 0 onto it, and registers a virtio
 * device whose {@link @x/virtio-core#VirtioConfigOps} speak the scratchpad protocol: the
 * commands SET_STATUS / FINALIZE_FEATURES / RESET, features and status in scratchpads,
 * rings in the window below BUFFER_OFFSET, buffers from the window's pool above it
 * (`allocBuffer`, RFC patch 12), and one doorbell bit per queue.
 *
 * Gaps of the RFC closed here: on link down the virtio device is unregistered, its
 * queues break with a `LINK_DOWN` cause and commands fail with `LINK_DOWN`; the
 * translation and the memory are released; the handshake scratchpad is cleared; on the
 * next link-up the whole handshake runs again. See the package README.
 *
 * @public
 */
export class NtbVirtio {
  /** The NTB device. */
  readonly dev: NtbDev;
  /** The clock. */
  readonly clock: NtbClock;
  /** Command timeout, ms. */
  readonly commandTimeoutMs: number;
  /** Command status poll period, ms. */
  readonly commandPollMs: number;
  /** Handshake retry period, ms. */
  readonly linkRetryMs: number;
  /** Indirect table size. */
  readonly indirectSegments: number;
  readonly #bus: VirtioBus | undefined;
  readonly #name: string | undefined;
  readonly #onEvent: ((event: NtbVirtioEvent) => void) | undefined;
  readonly #work = new WorkQueue();
  readonly #waiters = new Set<{ resolve: (s: Session) => void; reject: (e: unknown) => void }>();
  #session: Session | undefined;
  #sessions = 0;
  #linkUp = false;
  #abort: AbortController | undefined;
  #state: NtbVirtioState = 'down';
  #started = false;

  constructor(options: NtbVirtioOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    if (typeof options.dev !== 'object' || options.dev === null) throw new TypeError('options.dev must be an NtbDev');
    this.dev = options.dev;
    this.#bus = options.bus;
    this.clock = options.clock ?? systemClock;
    this.#name = options.name;
    this.commandTimeoutMs = positive('options.commandTimeoutMs', options.commandTimeoutMs ?? NTB_VIRTIO_COMMAND_TIMEOUT_MS);
    this.commandPollMs = positive('options.commandPollMs', options.commandPollMs ?? 1);
    this.linkRetryMs = positive('options.linkRetryMs', options.linkRetryMs ?? NTB_VIRTIO_LINK_RETRY_MS);
    const segs = options.indirectSegments ?? 8;
    if (!Number.isInteger(segs) || segs < 0 || segs > 64) throw new RangeError(`options.indirectSegments must be an integer in 0..64, got ${segs}`);
    this.indirectSegments = segs;
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new TypeError('options.onEvent must be a function');
    this.#onEvent = options.onEvent;
  }

  /** Where it is in its life. */
  get state(): NtbVirtioState {
    return this.#state;
  }

  /** Link sessions completed so far (the number of the current one). */
  get sessions(): number {
    return this.#sessions;
  }

  /** The virtio device of the current session, when it registered one. */
  get device(): VirtioDevice | undefined {
    return this.#session?.device;
  }

  /** The current session's ops (a `VirtioConfigOps` that fails with `LINK_DOWN` once its link is gone), or undefined. */
  get ops(): VirtioConfigOps | undefined {
    return this.#session;
  }

  /** The ids the vhost host published in the current session. */
  get id(): VirtioDeviceId | undefined {
    return this.#session?.deviceId;
  }

  /** The current session's memory window backing: its DMA address and size. */
  get window(): { readonly addr: number; readonly size: number } | undefined {
    const s = this.#session;
    return s === undefined ? undefined : { addr: s.mwAddr, size: s.mwSize };
  }

  /**
   * Builds queue `index` of the current session alone (`ntb_virtio_find_vq`); `findVqs`
   * is this for each spec. For a far-end test driver that activates queues one by one.
   */
  findVq(index: number, spec: VirtqueueSpec, ring: VirtioRingOptions): Virtqueue {
    const s = this.#session;
    if (s === undefined) throw new NtbError('LINK_DOWN', `${this.dev.name}: no session`);
    if (!Number.isInteger(index) || index < 0 || index >= NTB_VIRTIO_MAX_VQS) throw new RangeError(`index must be an integer in 0..${NTB_VIRTIO_MAX_VQS - 1}, got ${index}`);
    return s.findVq(index, spec, ring);
  }

  /** The queues of the current session, by index. */
  get vqs(): ReadonlyArray<Virtqueue | undefined> {
    return this.#session?.vqs ?? [];
  }

  /**
   * `ntb_virtio_probe`: attach to the NTB device (`ntb_set_ctx`) and enable the link.
   * The handshake runs at each link-up.
   */
  async start(): Promise<void> {
    if (this.#started) throw new NtbError('BUSY', 'start() was already called');
    this.#started = true;
    this.dev.setCtx({ linkEvent: () => this.#onLinkEvent(), dbEvent: (v) => this.#onDbEvent(v) });
    await this.dev.linkEnable();
    // A link that was already up reported nothing new: look once.
    if (this.dev.linkIsUp().up && !this.#linkUp) this.#onLinkEvent();
  }

  /**
   * Resolves with the next (or current) live session once the handshake completed and,
   * with a bus, the device registered. Rejects with `TIMEOUT`, `ABORTED` or `CLOSED`.
   */
  ready(options: { readonly timeoutMs?: number; readonly signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new NtbError('CLOSED', `${this.dev.name} is closed`));
    const s = this.#session;
    if (s !== undefined && s.ended === undefined && (this.#bus === undefined || s.device !== undefined)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        resolve: () => {
          done();
          resolve();
        },
        reject: (e: unknown) => {
          done();
          reject(e);
        },
      };
      const timeoutMs = options.timeoutMs;
      const cancel = timeoutMs === undefined ? undefined : this.clock.setTimer(timeoutMs, () => w.reject(new NtbError('TIMEOUT', `${this.dev.name}: no session within ${timeoutMs} ms`)));
      const onAbort = (): void => w.reject(new NtbError('ABORTED', 'aborted', { cause: options.signal?.reason }));
      const done = (): void => {
        this.#waiters.delete(w);
        cancel?.();
        options.signal?.removeEventListener('abort', onAbort);
      };
      if (options.signal?.aborted === true) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(w);
    });
  }

  /** `ntb_virtio_free`: unregister the device, release the window, disable the link. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#linkUp = false;
    this.#abort?.abort(new NtbError('CLOSED', 'closed'));
    this.dev.clearCtx();
    const s = this.#session;
    s?.end(new NtbError('LINK_DOWN', `${this.dev.name} is closing`));
    for (const w of [...this.#waiters]) w.reject(new NtbError('CLOSED', `${this.dev.name} closed`));
    await this.#work.run(() => this.#cleanup(s));
    try {
      await this.dev.linkDisable();
    } catch (e) {
      this.#emit({ type: 'error', error: e });
    }
  }

  #emit(event: NtbVirtioEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // An observer's failure is not the transport's.
    }
  }

  #onLinkEvent(): void {
    if (this.#state === 'closed') return;
    const up = this.dev.linkIsUp().up;
    if (up === this.#linkUp) return;
    this.#linkUp = up;
    if (up) {
      const abort = new AbortController();
      this.#abort = abort;
      this.#state = 'waiting';
      this.#emit({ type: 'link-up' });
      void this.#work.run(() => this.#linkWork(abort.signal)).catch((e: unknown) => this.#emit({ type: 'error', error: e }));
      return;
    }
    // Link down: everything of the session stops now; the teardown follows in order.
    const cause = this.dev.linkDownCause;
    const error = new NtbError('LINK_DOWN', `${this.dev.name}: the NTB link went down`, cause === undefined ? undefined : { cause });
    this.#abort?.abort(error);
    this.#abort = undefined;
    this.#state = 'down';
    const s = this.#session;
    s?.end(error);
    // Close the gap: the stale TYPE_VHOST must not start the next handshake early.
    this.#spadWrite(SP.VIRTIO_TYPE, 0);
    this.#emit({ type: 'link-down', session: s?.id, error: isNtbError(cause) ? cause : error });
    void this.#work.run(() => this.#cleanup(s)).catch((e: unknown) => this.#emit({ type: 'error', error: e }));
  }

  #spadWrite(i: number, v: number): void {
    try {
      this.dev.spadWrite(i, v);
    } catch (e) {
      this.#emit({ type: 'error', error: e });
    }
  }

  #onDbEvent(vector: number): void {
    const dev = this.dev;
    const bits = dev.dbRead() & dev.dbVectorMask(vector);
    if (bits === 0) return;
    // Acknowledge first: a ring that comes while we work raises a new interrupt.
    dev.dbClear(bits);
    const s = this.#session;
    if (s === undefined || s.ended !== undefined) return;
    let b = bits;
    while (b !== 0) {
      const low = b & -b;
      b &= b - 1;
      const bit = 31 - Math.clz32(low);
      try {
        if (bit < NTB_VIRTIO_DB.QUEUE0 + NTB_VIRTIO_MAX_VQS) s.vqs[bit - NTB_VIRTIO_DB.QUEUE0]?.interrupt();
        else if (bit === NTB_VIRTIO_DB.COMMAND) s.wake();
        else if (bit === NTB_VIRTIO_DB.CONFIG) {
          const d = s.device;
          if (d !== undefined && (d.status & S_DRIVER_OK) !== 0) void d.notifyConfigChanged().catch((e: unknown) => this.#emit({ type: 'error', error: e }));
        }
      } catch (e) {
        this.#emit({ type: 'error', error: e });
      }
    }
  }

  /** `ntb_virtio_link_work`. */
  async #linkWork(signal: AbortSignal): Promise<void> {
    const dev = this.dev;
    // 1. Wait until our spad 0 says TYPE_VHOST, retrying every 10 ms while the link is up.
    while (dev.spadRead(SP.VIRTIO_TYPE) !== NTB_VIRTIO_TYPE.VHOST) {
      if (signal.aborted) return;
      try {
        await clockSleep(this.clock, this.linkRetryMs, signal);
      } catch {
        return;
      }
    }
    if (signal.aborted) return;
    // 2. The window size the vhost host published.
    const mwSize = join64(dev.peerSpadRead(PEER, SP.VHOST_MW0_SIZE_LOWER), dev.peerSpadRead(PEER, SP.VHOST_MW0_SIZE_UPPER));
    if (signal.aborted) return;
    const align = dev.mwGetAlign(PEER, 0);
    if (!(mwSize >= NTB_VIRTIO_BUFFER_OFFSET * 2 && mwSize <= align.sizeMax && mwSize % align.sizeAlign === 0)) {
      this.#emit({
        type: 'error',
        error: new NtbError('PROTOCOL', `${dev.name}: the vhost host publishes a ${hex(mwSize)}-byte window; this host's MW0 takes ≥ ${hex(NTB_VIRTIO_BUFFER_OFFSET * 2)}, ≤ ${hex(align.sizeMax)}, in ${align.sizeAlign}-byte units`),
      });
      return;
    }
    // dma_alloc_coherent(mw_size), aligned as the window's translation needs.
    const mwAddr = alignUp(dev.dma.addr, Math.max(align.addrAlign, 4096));
    if (mwAddr + mwSize > dev.dma.addr + dev.dma.size) {
      this.#emit({ type: 'error', error: new NtbError('NO_MEMORY', `${dev.name}: no ${hex(mwSize)} bytes of DMA memory for the window`) });
      return;
    }
    // 3./4. The pool is made with the session; translate inbound MW0 onto the memory.
    try {
      await dev.mwSetTrans(PEER, 0, mwAddr, mwSize);
    } catch (e) {
      if (!signal.aborted) this.#emit({ type: 'error', error: e });
      return;
    }
    if (signal.aborted) {
      await this.#clearTrans();
      return;
    }
    // 5. The DMA address into peer spads 9/10, then TYPE_VIRTIO into peer spad 0.
    dev.peerSpadWrite(PEER, SP.VIRTIO_MW0_LOWER_ADDR, lo32(mwAddr));
    dev.peerSpadWrite(PEER, SP.VIRTIO_MW0_UPPER_ADDR, hi32(mwAddr));
    dev.peerSpadWrite(PEER, SP.VIRTIO_TYPE, NTB_VIRTIO_TYPE.VIRTIO);
    // 6. The ids, then register the virtio device.
    const id = { device: dev.peerSpadRead(PEER, SP.VHOST_DEVICEID), vendor: dev.peerSpadRead(PEER, SP.VHOST_VENDORID) };
    if (signal.aborted) {
      await this.#clearTrans();
      return;
    }
    const session = new Session(this, ++this.#sessions, id, mwAddr, mwSize);
    this.#session = session;
    this.#emit({ type: 'handshake', session: session.id, id, mwAddr, mwSize });
    const bus = this.#bus;
    if (bus !== undefined) {
      const device = new VirtioDevice({ id, ops: session, ...(this.#name === undefined ? {} : { name: this.#name }) });
      session.device = device;
      try {
        await bus.registerDevice(device);
        if (session.ended === undefined) this.#emit({ type: 'registered', session: session.id, device });
      } catch (e) {
        session.device = undefined;
        if (session.ended === undefined) this.#emit({ type: 'error', error: e });
      }
    }
    if (session.ended === undefined && this.#session === session) {
      this.#state = 'ready';
      for (const w of [...this.#waiters]) w.resolve(session);
    }
  }

  async #clearTrans(): Promise<void> {
    try {
      await this.dev.mwClearTrans(PEER, 0);
    } catch (e) {
      this.#emit({ type: 'error', error: e });
    }
  }

  /** `ntb_virtio_link_cleanup`, plus what the RFC left out: unregister the device. */
  async #cleanup(s: Session | undefined): Promise<void> {
    if (s === undefined) return;
    const d = s.device;
    const bus = this.#bus;
    if (d !== undefined && bus !== undefined && d.bus === bus) {
      try {
        await bus.unregisterDevice(d);
      } catch (e) {
        this.#emit({ type: 'error', error: e });
      }
      this.#emit({ type: 'unregistered', session: s.id, device: d });
    }
    s.delVqs();
    if (this.#session === s) this.#session = undefined;
    await this.#clearTrans();
    s.pool.reset();
  }
}

function positive(name: string, v: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
}
