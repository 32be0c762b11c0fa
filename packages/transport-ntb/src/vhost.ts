import {
  VHOST_NOTIFY,
  VhostDevice,
  VhostError,
  VhostVirtqueue,
  type ConfigItem,
  type VhostBus,
  type VhostConfigFs,
  type VhostConfigOps,
  type VhostDeviceConfig,
  type VhostDeviceId,
  type VhostVqSpec,
} from '@x/vhost-core';
import { RegionMemory, isVringError, vringLegacyLayout } from '@x/vring';
import {
  NTB_HOST_CMD,
  NTB_HOST_CMD_STATUS,
  NTB_VHOST_COMMAND_POLL_MS,
  NTB_VIRTIO_BUFFER_OFFSET,
  NTB_VIRTIO_DB,
  NTB_VIRTIO_LINK_RETRY_MS,
  NTB_VIRTIO_MAX_VQS,
  NTB_VIRTIO_SPAD as SP,
  NTB_VIRTIO_TYPE,
  NTB_VIRTIO_VRING_ALIGN,
  ntbVirtioRingSpan,
} from './constants.js';
import { NtbError, isNtbError } from './errors.js';
import { NTB_DEF_PEER_IDX as PEER, type NtbDev } from './ntb-dev.js';
import { WorkQueue, hex, hi32, join64, lo32 } from './internal/util.js';
import { clockSleep, systemClock, type NtbClock } from './wire.js';

/** Where an {@link NtbVhost} is in its life. @public */
export type NtbVhostState =
  /** Not started, or the link is down. */
  | 'down'
  /** The link is up; waiting for a registered device and the virtio host's TYPE_VIRTIO. */
  | 'waiting'
  /** The handshake is done: commands are served, rings attach at DRIVER_OK. */
  | 'ready'
  /** Closed. */
  | 'closed';

/** What an {@link NtbVhost} reports. @public */
export type NtbVhostEvent =
  | { readonly type: 'link-up' }
  | { readonly type: 'handshake'; readonly session: number; readonly virtioAddr: number; readonly mwSize: number }
  | { readonly type: 'command'; readonly session: number; readonly command: number; readonly status: number }
  | { readonly type: 'link-down'; readonly session: number | undefined; readonly error: NtbError }
  | { readonly type: 'unregistered'; readonly device: VhostDevice }
  | { readonly type: 'reregistered'; readonly device: VhostDevice }
  | { readonly type: 'error'; readonly error: unknown };

/** Options of {@link NtbVhost}. @public */
export interface NtbVhostOptions {
  /** The NTB device of this (the vhost) host. */
  readonly dev: NtbDev;
  /** The host's clock. Default `systemClock`. */
  readonly clock?: NtbClock;
  /** Name of the `vhost-transport/<name>` item and the device's parent. Default: the NTB device's name. */
  readonly name?: string;
  /** Adds `vhost-transport/<name>` here at start (RFC `vhost_cfs_add_device_item`); linking it registers the device. */
  readonly configFs?: VhostConfigFs;
  /** The device's ids, when it is registered by code rather than through the configuration tree. */
  readonly id?: VhostDeviceId;
  /** The device's attributes, when it is registered by code. */
  readonly deviceConfig?: Partial<VhostDeviceConfig>;
  /** Bytes of device configuration space (scratchpads from 23 on). Default: all of them. */
  readonly configSize?: number;
  /** Command poll period, ms (`ntb_vhost_cmd_handler`). Default 1. */
  readonly commandPollMs?: number;
  /** Handshake retry period, ms. Default 10. */
  readonly linkRetryMs?: number;
  /**
   * Take part in the handshake only once the device is registered on a bus (the RFC's
   * rule: a registered device has a driver that published its features and queues).
   * `false`: as soon as the device has ids — for a rig whose far end drives the device
   * by hand and registers it after the link is up. Default true.
   */
  readonly requireRegistration?: boolean;
  /** Receives {@link NtbVhostEvent}s. */
  readonly onEvent?: (event: NtbVhostEvent) => void;
}

const S_DRIVER_OK = 4;
const S_NEEDS_RESET = 64;
/** Scratchpads the virtio host writes into ours: cleared at link down so the next session starts clean. */
const PEER_WRITTEN = [
  SP.VIRTIO_TYPE,
  SP.VIRTIO_FEATURES_UPPER,
  SP.VIRTIO_FEATURES_LOWER,
  SP.VIRTIO_MW0_LOWER_ADDR,
  SP.VIRTIO_MW0_UPPER_ADDR,
  SP.VHOST_DEVICE_STATUS,
  SP.VHOST_COMMAND,
  SP.VHOST_COMMAND_STATUS,
];

interface VhostSession {
  readonly id: number;
  readonly virtioAddr: number;
  readonly mwSize: number;
  readonly view: RegionMemory;
  ended: boolean;
}

/**
 * The vhost host of the RFC's NTB use case (HOST2; `drivers/ntb/ntb_vhost.c`, RFC patch
 * 21): an NTB client that owns one {@link @x/vhost-core#VhostDevice} and implements its
 * {@link @x/vhost-core#VhostConfigOps} over the scratchpad protocol (rfc-protocol §2.6).
 * At start it publishes the size of peer window 0, adds `vhost-transport/<name>` to the
 * configuration tree and enables the link; at each link-up, once the device is
 * registered, it publishes the ids and waits for the virtio host's TYPE_VIRTIO, then
 * serves the virtio host's commands (SET_STATUS, FINALIZE_FEATURES, RESET) from its
 * scratchpads, reaches the virtio host's rings and buffers through window 0, and rings
 * one doorbell bit per queue.
 *
 * Gaps of the RFC closed here: rings attach at DRIVER_OK with the sizes the virtio host
 * chose, at the same 4096 alignment; unknown commands answer ERROR; device
 * configuration lives in scratchpads 23… with a generation and a config doorbell; on
 * link down the device is reset and unregistered (re-registered at the next link-up while
 * its configuration link stands), scratchpads the peer wrote are cleared, and the
 * handshake runs again. See the package README.
 *
 * @public
 */
export class NtbVhost implements VhostConfigOps {
  /** The NTB device. */
  readonly dev: NtbDev;
  /** The vhost device. */
  readonly device: VhostDevice;
  /** The clock. */
  readonly clock: NtbClock;
  /** Name of the transport item. */
  readonly name: string;
  /** Bytes of device configuration space. */
  readonly configSize: number;
  readonly #cfs: VhostConfigFs | undefined;
  #item: ConfigItem | undefined;
  readonly #pollMs: number;
  readonly #retryMs: number;
  readonly #onEvent: ((event: NtbVhostEvent) => void) | undefined;
  readonly #work = new WorkQueue();
  readonly #cmdQueue = new WorkQueue();
  #session: VhostSession | undefined;
  #sessions = 0;
  #linkUp = false;
  #abort: AbortController | undefined;
  #state: NtbVhostState = 'down';
  #started = false;
  #mwSize = 0;
  #mwBase = 0;
  /** The bus we unregistered the device from at link down, to register it again. */
  #reregister: VhostBus | undefined;
  #pollCancel: (() => void) | undefined;
  #cmdBusy = false;
  #cmdAgain = false;
  readonly #requireRegistration: boolean;

  constructor(options: NtbVhostOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    if (typeof options.dev !== 'object' || options.dev === null) throw new TypeError('options.dev must be an NtbDev');
    this.dev = options.dev;
    this.clock = options.clock ?? systemClock;
    this.name = options.name ?? this.dev.name;
    this.#cfs = options.configFs;
    const all = Math.max(0, (this.dev.spadCount() - SP.VHOST_DEVICE_CFG_SPACE) * 4);
    const cs = options.configSize ?? all;
    if (!Number.isInteger(cs) || cs < 0 || cs > all) throw new RangeError(`options.configSize must be an integer in 0..${all} (scratchpads ${SP.VHOST_DEVICE_CFG_SPACE}… of ${this.dev.spadCount()}), got ${cs}`);
    this.configSize = cs;
    this.#pollMs = options.commandPollMs ?? NTB_VHOST_COMMAND_POLL_MS;
    this.#retryMs = options.linkRetryMs ?? NTB_VIRTIO_LINK_RETRY_MS;
    if (!(this.#pollMs > 0) || !(this.#retryMs > 0)) throw new RangeError('options.commandPollMs and options.linkRetryMs must be positive');
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new TypeError('options.onEvent must be a function');
    this.#onEvent = options.onEvent;
    this.#requireRegistration = options.requireRegistration ?? true;
    this.device = new VhostDevice(this, {
      parent: this.name,
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.deviceConfig === undefined ? {} : { config: options.deviceConfig }),
    });
  }

  /** Where it is in its life. */
  get state(): NtbVhostState {
    return this.#state;
  }

  /** Link sessions completed so far. */
  get sessions(): number {
    return this.#sessions;
  }

  /** The configuration item `vhost-transport/<name>`, when a tree was given. */
  get item(): ConfigItem | undefined {
    return this.#item;
  }

  /**
   * `ntb_vhost_probe`: read peer window 0 (`ntb_peer_mw_get_addr`), publish its size in
   * scratchpads 7/8, add the configuration item, attach (`ntb_set_ctx`) and enable the link.
   */
  async start(): Promise<void> {
    if (this.#started) throw new NtbError('BUSY', 'start() was already called');
    this.#started = true;
    const mw = this.dev.peerMwGetAddr(0);
    this.#mwBase = mw.base;
    this.#mwSize = mw.size;
    if (mw.size < 2 * NTB_VIRTIO_BUFFER_OFFSET) throw new NtbError('NO_MEMORY', `${this.dev.name}: peer window 0 is ${hex(mw.size)} bytes; the protocol needs ≥ ${hex(2 * NTB_VIRTIO_BUFFER_OFFSET)}`);
    this.dev.spadWrite(SP.VHOST_MW0_SIZE_LOWER, lo32(mw.size));
    this.dev.spadWrite(SP.VHOST_MW0_SIZE_UPPER, hi32(mw.size));
    if (this.#cfs !== undefined) this.#item = this.#cfs.addTransport(this.device, this.name);
    this.dev.setCtx({ linkEvent: () => this.#onLinkEvent(), dbEvent: (v) => this.#onDbEvent(v) });
    await this.dev.linkEnable();
    if (this.dev.linkIsUp().up && !this.#linkUp) this.#onLinkEvent();
  }

  /** `ntb_vhost_free`: stop, reset and unregister the device, remove the item, disable the link. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#linkUp = false;
    this.#abort?.abort(new NtbError('CLOSED', 'closed'));
    this.dev.clearCtx();
    const s = this.#session;
    this.#endSession();
    this.#reregister = undefined;
    await this.#work.run(() => this.#teardown(s, false));
    if (this.#cfs !== undefined && this.#item !== undefined) {
      try {
        await this.#cfs.removeTransport(this.name);
      } catch (e) {
        this.#emit({ type: 'error', error: e });
      }
    }
    try {
      await this.dev.linkDisable();
    } catch (e) {
      this.#emit({ type: 'error', error: e });
    }
  }

  /** Resolves when a session is live; rejects with `TIMEOUT`. For tests and examples. */
  async ready(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    const deadline = this.clock.now() + (options.timeoutMs ?? 5000);
    while (this.#state !== 'ready') {
      if (this.#state === 'closed') throw new NtbError('CLOSED', `${this.name} is closed`);
      if (this.clock.now() >= deadline) throw new NtbError('TIMEOUT', `${this.name}: no session within ${options.timeoutMs ?? 5000} ms`);
      await clockSleep(this.clock, 1);
    }
  }

  #emit(event: NtbVhostEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // An observer's failure is not the transport's.
    }
  }

  // ---- link ----

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
    const cause = this.dev.linkDownCause;
    const error = new NtbError('LINK_DOWN', `${this.dev.name}: the NTB link went down`, cause === undefined ? undefined : { cause });
    this.#abort?.abort(error);
    this.#abort = undefined;
    this.#state = 'down';
    const s = this.#session;
    this.#endSession(error);
    this.#emit({ type: 'link-down', session: s?.id, error: isNtbError(cause) ? cause : error });
    void this.#work.run(() => this.#teardown(s, true)).catch((e: unknown) => this.#emit({ type: 'error', error: e }));
  }

  /** Synchronous part of a link down: no ring, window or command is touched from here on. */
  #endSession(lost?: NtbError): void {
    const s = this.#session;
    if (s !== undefined) s.ended = true;
    this.#session = undefined;
    this.#pollCancel?.();
    this.#pollCancel = undefined;
    // The rings are gone with the link: the reason lets drivers fail pending work with LINK_DOWN.
    for (const vq of this.device.vqs) if (vq.isAttached) vq.detach(lost);
    for (const i of PEER_WRITTEN) this.#spadWrite(i, 0);
  }

  #spadWrite(i: number, v: number): void {
    try {
      this.dev.spadWrite(i, v);
    } catch (e) {
      this.#emit({ type: 'error', error: e });
    }
  }

  /** After a link down (or at close): reset the device, and unregister it (link down: to register it again later). */
  async #teardown(_s: VhostSession | undefined, remember: boolean): Promise<void> {
    const d = this.device;
    if (d.status !== 0) {
      const err = await d.handleEvent(VHOST_NOTIFY.RESET);
      if (err !== undefined) this.#emit({ type: 'error', error: err });
    }
    const bus = d.bus;
    if (bus !== undefined) {
      try {
        await bus.unregisterDevice(d);
        if (remember) this.#reregister = bus;
        this.#emit({ type: 'unregistered', device: d });
      } catch (e) {
        this.#emit({ type: 'error', error: e });
      }
    }
  }

  /** `ntb_vhost_link_work`. */
  async #linkWork(signal: AbortSignal): Promise<void> {
    const dev = this.dev;
    for (;;) {
      if (signal.aborted) return;
      await this.#maybeReregister();
      if (signal.aborted) return;
      const d = this.device;
      const id = d.id;
      // 1. Only a registered device (configfs link) with ids takes part.
      if ((d.bus !== undefined || !this.#requireRegistration) && id !== undefined && !(id.device === 0 && id.vendor === 0)) {
        // 2. Ids (and everything else the virtio host reads), then TYPE_VHOST into the peer's spad 0.
        dev.spadWrite(SP.VHOST_VENDORID, id.vendor >>> 0);
        dev.spadWrite(SP.VHOST_DEVICEID, id.device >>> 0);
        dev.spadWrite(SP.VHOST_MW0_SIZE_LOWER, lo32(this.#mwSize));
        dev.spadWrite(SP.VHOST_MW0_SIZE_UPPER, hi32(this.#mwSize));
        this.#publishFeatures(d.offeredFeatures);
        this.#publishQueues();
        dev.peerSpadWrite(PEER, SP.VIRTIO_TYPE, NTB_VIRTIO_TYPE.VHOST);
        // 3. Until our spad 0 says TYPE_VIRTIO, retry every 10 ms while the link is up.
        if (dev.spadRead(SP.VIRTIO_TYPE) === NTB_VIRTIO_TYPE.VIRTIO) break;
      }
      try {
        await clockSleep(this.clock, this.#retryMs, signal);
      } catch {
        return;
      }
    }
    // 4. The virtio host's DMA address of window 0.
    const virtioAddr = join64(dev.spadRead(SP.VIRTIO_MW0_LOWER_ADDR), dev.spadRead(SP.VIRTIO_MW0_UPPER_ADDR));
    const view = new RegionMemory({ name: `${this.name}: HOST1 memory through MW0` });
    try {
      // Descriptors carry the virtio host's addresses: [virtioAddr, +size) → the aperture.
      view.map({ busAddr: virtioAddr, size: this.#mwSize, target: dev.ioremap(this.#mwBase, this.#mwSize), targetAddr: this.#mwBase, name: 'MW0' });
    } catch (e) {
      this.#emit({ type: 'error', error: new NtbError('PROTOCOL', `${this.name}: window 0 is not translated onto ${hex(virtioAddr)}+${hex(this.#mwSize)}`, { cause: e }) });
      return;
    }
    if (signal.aborted) return;
    const session: VhostSession = { id: ++this.#sessions, virtioAddr, mwSize: this.#mwSize, view, ended: false };
    this.#session = session;
    this.#state = 'ready';
    this.#emit({ type: 'handshake', session: session.id, virtioAddr, mwSize: this.#mwSize });
    // 5. Serve commands: a doorbell wakes us at once; the RFC's 1 ms poll stays as a fallback.
    this.#schedulePoll();
  }

  async #maybeReregister(): Promise<void> {
    const bus = this.#reregister;
    const d = this.device;
    if (bus === undefined || d.bus !== undefined) return;
    // Only while the configuration still links the transport to a client (or no tree is used).
    if (this.#item !== undefined && this.#item.links.size === 0) {
      this.#reregister = undefined;
      return;
    }
    this.#reregister = undefined;
    try {
      await bus.registerDevice(d);
      this.#emit({ type: 'reregistered', device: d });
    } catch (e) {
      this.#emit({ type: 'error', error: e });
    }
  }

  #publishFeatures(f: bigint): void {
    this.dev.spadWrite(SP.VHOST_FEATURES_LOWER, Number(f & 0xffff_ffffn));
    this.dev.spadWrite(SP.VHOST_FEATURES_UPPER, Number((f >> 32n) & 0xffff_ffffn));
  }

  /** VHOST_QUEUE_NUM_BUFFERS(i) = queue i's size (0 = no queue); the virtio host may have overwritten them with its choice. */
  #publishQueues(): void {
    const vqs = this.device.vqs;
    for (let i = 0; i < NTB_VIRTIO_MAX_VQS; i++) this.dev.spadWrite(SP.VHOST_QUEUE_BASE + i, vqs[i]?.num ?? 0);
  }

  // ---- commands ----

  #schedulePoll(): void {
    if (this.#session === undefined || this.#pollCancel !== undefined) return;
    this.#pollCancel = this.clock.setTimer(this.#pollMs, () => {
      this.#pollCancel = undefined;
      void this.#serviceCommands().finally(() => this.#schedulePoll());
    });
  }

  /** `ntb_vhost_cmd_handler`: take the command (write 0), act, write the status; ring the COMMAND doorbell back. */
  #serviceCommands(): Promise<void> {
    if (this.#cmdBusy) {
      this.#cmdAgain = true;
      return Promise.resolve();
    }
    this.#cmdBusy = true;
    return this.#cmdQueue
      .run(async () => {
        do {
          this.#cmdAgain = false;
          for (;;) {
            const s = this.#session;
            if (s === undefined || s.ended) return;
            const cmd = this.dev.spadRead(SP.VHOST_COMMAND);
            if (cmd === NTB_HOST_CMD.NONE) break;
            this.dev.spadWrite(SP.VHOST_COMMAND, NTB_HOST_CMD.NONE);
            const status = await this.#handle(cmd, s);
            if (s.ended) return;
            this.dev.spadWrite(SP.VHOST_COMMAND_STATUS, status);
            if ((this.dev.dbValidMask() & (1 << NTB_VIRTIO_DB.COMMAND)) !== 0) this.dev.peerDbSet(1 << NTB_VIRTIO_DB.COMMAND);
            this.#emit({ type: 'command', session: s.id, command: cmd, status });
          }
        } while (this.#cmdAgain);
      })
      .catch((e: unknown) => this.#emit({ type: 'error', error: e }))
      .finally(() => {
        this.#cmdBusy = false;
      });
  }

  async #handle(cmd: number, s: VhostSession): Promise<number> {
    const d = this.device;
    switch (cmd) {
      case NTB_HOST_CMD.SET_STATUS: {
        const status = this.dev.spadRead(SP.VHOST_DEVICE_STATUS) & 0xff;
        // The rings go live at DRIVER_OK: attach them first, at the sizes the driver chose.
        if ((status & S_DRIVER_OK) !== 0) this.#attachQueues(s);
        await d.handleEvent(VHOST_NOTIFY.SET_STATUS);
        // Problems are in the status the peer reads back (FEATURES_OK cleared, NEEDS_RESET), as in VIRTIO.
        return NTB_HOST_CMD_STATUS.OKAY;
      }
      case NTB_HOST_CMD.FINALIZE_FEATURES: {
        const hi = BigInt(this.dev.spadRead(SP.VIRTIO_FEATURES_UPPER));
        const lo = BigInt(this.dev.spadRead(SP.VIRTIO_FEATURES_LOWER));
        await d.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, (hi << 32n) | lo);
        return NTB_HOST_CMD_STATUS.OKAY;
      }
      case NTB_HOST_CMD.RESET: {
        for (const vq of d.vqs) if (vq.isAttached) vq.detach();
        await d.handleEvent(VHOST_NOTIFY.RESET);
        this.#publishQueues();
        return NTB_HOST_CMD_STATUS.OKAY;
      }
      default:
        // The RFC only logged an unknown command, so the virtio host timed out.
        this.#emit({ type: 'error', error: new NtbError('PROTOCOL', `${this.name}: unknown command ${cmd}`) });
        return NTB_HOST_CMD_STATUS.ERROR;
    }
  }

  /** Queue i lives at the virtio host's window + {@link ntbVirtioQueueOffset} of the sizes this device published. */
  #attachQueues(s: VhostSession): void {
    const vqs = this.device.vqs;
    let offset = 0;
    for (let i = 0; i < vqs.length; i++) {
      const vq = vqs[i]!;
      const span = ntbVirtioRingSpan(vq.num);
      const at = offset;
      offset += span;
      if (vq.isAttached) continue;
      const chosen = this.dev.spadRead(SP.VHOST_QUEUE_BASE + i);
      if (chosen === 0) continue;
      if (chosen > vq.num || (chosen & (chosen - 1)) !== 0 || at + span > NTB_VIRTIO_BUFFER_OFFSET) {
        this.#emit({ type: 'error', error: new NtbError('PROTOCOL', `${this.name}: queue ${i}: the virtio host chose ${chosen} entries (published ${vq.num})`) });
        continue;
      }
      try {
        vq.attach(s.view, vringLegacyLayout(s.virtioAddr + at, chosen, NTB_VIRTIO_VRING_ALIGN));
      } catch (e) {
        this.#emit({ type: 'error', error: e });
      }
    }
  }

  // ---- doorbells ----

  #onDbEvent(vector: number): void {
    const dev = this.dev;
    const bits = dev.dbRead() & dev.dbVectorMask(vector);
    if (bits === 0) return;
    dev.dbClear(bits);
    if (this.#session === undefined) return;
    const vqs = this.device.vqs;
    let b = bits;
    while (b !== 0) {
      const low = b & -b;
      b &= b - 1;
      const bit = 31 - Math.clz32(low);
      if (bit < NTB_VIRTIO_DB.QUEUE0 + NTB_VIRTIO_MAX_VQS) vqs[bit - NTB_VIRTIO_DB.QUEUE0]?.kicked();
      else if (bit === NTB_VIRTIO_DB.COMMAND) void this.#serviceCommands();
    }
  }

  // ---- VhostConfigOps ----

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.createVqs} */
  createVqs(specs: readonly (VhostVqSpec & { readonly size: number })[]): VhostVirtqueue[] {
    if (specs.length > NTB_VIRTIO_MAX_VQS) throw new RangeError(`specs: at most ${NTB_VIRTIO_MAX_VQS} queues (MAX_VQS), got ${specs.length}`);
    let total = 0;
    for (const s of specs) total += ntbVirtioRingSpan(s.size);
    if (total > NTB_VIRTIO_BUFFER_OFFSET) {
      throw new NtbError('NO_MEMORY', `${specs.length} rings of ${specs.map((s) => s.size).join('/')} entries need ${hex(total)} bytes, more than BUFFER_OFFSET ${hex(NTB_VIRTIO_BUFFER_OFFSET)}`);
    }
    const vqs = specs.map(
      (spec, i) =>
        new VhostVirtqueue({
          device: this.device,
          index: i,
          num: spec.size,
          name: spec.name,
          ...(spec.callback === undefined ? {} : { callback: spec.callback }),
          notify: () => {
            if (this.#session === undefined) return false;
            this.dev.peerDbSet(1 << (NTB_VIRTIO_DB.QUEUE0 + i));
            return true;
          },
        }),
    );
    for (let i = 0; i < NTB_VIRTIO_MAX_VQS; i++) this.dev.spadWrite(SP.VHOST_QUEUE_BASE + i, specs[i]?.size ?? 0);
    return vqs;
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.delVqs} */
  delVqs(): void {
    for (const vq of this.device.vqs) if (vq.isAttached) vq.detach();
    for (let i = 0; i < NTB_VIRTIO_MAX_VQS; i++) this.dev.spadWrite(SP.VHOST_QUEUE_BASE + i, 0);
  }

  #view(peerAddr: number, len: number, what: string): RegionMemory {
    const s = this.#session;
    if (s === undefined) throw new VhostError('BUS_ERROR', `${this.name}: ${what} of ${hex(peerAddr)}+${len}: no session (the link is down or the handshake is not done)`);
    if (!s.view.contains(peerAddr, len)) {
      throw new VhostError('BUS_ERROR', `${this.name}: ${what} of ${hex(peerAddr)}+${len} is outside the virtio host's window ${hex(s.virtioAddr)}+${hex(s.mwSize)}`);
    }
    return s.view;
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.read} */
  read(dst: Uint8Array, peerAddr: number): void {
    const v = this.#view(peerAddr, dst.length, 'read');
    try {
      v.read(peerAddr, dst);
    } catch (e) {
      if (isVringError(e, 'BUS_ERROR')) throw new VhostError('BUS_ERROR', `${this.name}: read of ${hex(peerAddr)}+${dst.length} failed`, { cause: e });
      throw e;
    }
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.write} */
  write(peerAddr: number, src: Uint8Array): void {
    const v = this.#view(peerAddr, src.length, 'write');
    try {
      v.write(peerAddr, src);
    } catch (e) {
      if (isVringError(e, 'BUS_ERROR')) throw new VhostError('BUS_ERROR', `${this.name}: write of ${hex(peerAddr)}+${src.length} failed`, { cause: e });
      throw e;
    }
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.setFeatures} */
  setFeatures(features: bigint): void {
    this.#publishFeatures(features);
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.getStatus} */
  getStatus(): number {
    return this.dev.spadRead(SP.VHOST_DEVICE_STATUS) & 0xff;
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.setStatus} */
  setStatus(status: number): void {
    const before = this.dev.spadRead(SP.VHOST_DEVICE_STATUS);
    this.dev.spadWrite(SP.VHOST_DEVICE_STATUS, status & 0xff);
    // DEVICE_NEEDS_RESET is announced with a configuration-change interrupt (VIRTIO 1.2 §2.1.2).
    if ((status & S_NEEDS_RESET) !== 0 && (before & S_NEEDS_RESET) === 0) this.#configInterrupt();
  }

  #configInterrupt(): void {
    if (this.#session !== undefined && (this.dev.dbValidMask() & (1 << NTB_VIRTIO_DB.CONFIG)) !== 0) this.dev.peerDbSet(1 << NTB_VIRTIO_DB.CONFIG);
  }

  #checkConfig(offset: number, len: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + len > this.configSize) {
      throw new RangeError(`config range ${offset}+${len} is outside the ${this.configSize} bytes of device configuration`);
    }
  }

  /** {@inheritDoc @x/vhost-core#VhostConfigOps.readConfig} */
  readConfig(offset: number, dst: Uint8Array): void {
    this.#checkConfig(offset, dst.length);
    for (let k = 0; k < dst.length; k++) {
      const at = offset + k;
      dst[k] = (this.dev.spadRead(SP.VHOST_DEVICE_CFG_SPACE + (at >> 2)) >>> (8 * (at & 3))) & 0xff;
    }
  }

  /** Writes device configuration into scratchpads 23…; bumps the generation around the write (odd while writing), then raises the config interrupt. */
  writeConfig(offset: number, src: Uint8Array): void {
    this.#checkConfig(offset, src.length);
    const gen = this.dev.spadRead(SP.VHOST_CONFIG_GENERATION);
    // Odd while writing: a reader that sees the same generation before and after read a stable copy.
    this.dev.spadWrite(SP.VHOST_CONFIG_GENERATION, (gen + 1) >>> 0);
    for (let k = 0; k < src.length; ) {
      const word = (offset + k) >> 2;
      let w = this.dev.spadRead(SP.VHOST_DEVICE_CFG_SPACE + word);
      for (; k < src.length && (offset + k) >> 2 === word; k++) {
        const sh = 8 * ((offset + k) & 3);
        w = ((w & ~(0xff << sh)) | (src[k]! << sh)) >>> 0;
      }
      this.dev.spadWrite(SP.VHOST_DEVICE_CFG_SPACE + word, w);
    }
    this.dev.spadWrite(SP.VHOST_CONFIG_GENERATION, (gen + 2) >>> 0);
    if ((this.device.status & S_DRIVER_OK) !== 0) this.#configInterrupt();
  }
}
