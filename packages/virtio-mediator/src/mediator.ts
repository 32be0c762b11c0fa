import { ArrayBufferMemory, VIRTQUEUE_MAX_SIZE, Virtqueue, VringIov, Vringh, layoutSpan, vringModernLayout } from '@x/vring';
import {
  GenPool,
  VIRTIO_BUFFER_ALIGN,
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VirtioDevice,
  VirtioError,
  type VirtioBus,
  type VirtioConfigOps,
  type VirtioRingOptions,
  type VirtqueueSpec,
} from '@x/virtio-core';
import { VHOST_DEV_ANY_ID, VHOST_NOTIFY, type VhostDevice, type VhostDeviceId, type VhostDriver, type VhostEventInfo } from '@x/vhost-core';
import { MediatorError, type MediatorSide } from './errors.js';
import { MEDIATOR_RING_FEATURES, TRANSPORT_FEATURES_MASK, deviceFeatures } from './features.js';
import { LocalEnd, RemoteEnd, type LocalQueue, type QueueEnd } from './internal/ends.js';

const S = VIRTIO_CONFIG_S;
/** Copy rounds per pump before the rest is left for a later turn (bounded work per kick). */
const MAX_ROUNDS = 64;
/** Segments a chain may have on either side. */
const IOV_SEGMENTS = 256;

/**
 * One copy route of a mediated device: the device-readable chains of queue `fromQueue`
 * on side `from` are copied into the device-writable chains of queue `toQueue` on the
 * other side.
 *
 * @public
 */
export interface MediatorRoute {
  /** The side whose driver sends (its queue holds device-readable buffers). */
  readonly from: MediatorSide;
  /** The sending queue on side `from`. */
  readonly fromQueue: number;
  /** The receiving queue on the other side (its driver posts device-writable buffers). */
  readonly toQueue: number;
}

/**
 * A device type the mediator serves (Jason Wang: "a hard-coded set X per device ID").
 *
 * @public
 */
export interface MediatedDeviceType {
  /** The virtio device ID (VIRTIO 1.2 §5), matched on the remote vhost device and used for the local device. */
  readonly deviceId: number;
  /**
   * X: every feature the device may offer, to either side. Device-specific bits are
   * mediated (only Y ∩ Z is in use); transport bits may only be INDIRECT_DESC (28),
   * EVENT_IDX (29) and VERSION_1 (32), which each side negotiates for its own ring.
   */
  readonly features: bigint;
  /** Queues on each side. Default 2. */
  readonly queues?: number;
  /**
   * How bytes cross. Default, for queues 2k (receive) and 2k + 1 (send) on both sides —
   * rpmsg's vq0 "input" / vq1 "output", virtio-net's rx / tx: the local send queue
   * 2k + 1 into the remote receive queue 2k, and the remote send queue 2k + 1 into the
   * local receive queue 2k.
   */
  readonly routes?: readonly MediatorRoute[];
  /** `VendorID` of the local device. Default: the remote device's vendor. */
  readonly vendorId?: number;
  /** Device configuration space of the local device (and, where the transport has one, the remote). Default empty. */
  readonly config?: Uint8Array;
}

/**
 * The features of one mediated device (Jason's X / Y / Z).
 *
 * @public
 */
export interface MediatedFeatures {
  /** X: what the device type may offer. */
  readonly offered: bigint;
  /** Y: what the local driver accepted (0 until it set FEATURES_OK). */
  readonly local: bigint;
  /** Z: what the remote driver accepted (0 until it set FEATURES_OK). */
  readonly remote: bigint;
  /**
   * The device-specific features in use: Y ∩ Z outside the transport range, once both
   * sides set FEATURES_OK; 0 before.
   */
  readonly device: bigint;
  /**
   * The device-specific bits either side may still be offered: X narrowed by every
   * side that accepted less since both sides were last reset.
   */
  readonly ceiling: bigint;
}

/** Bytes and buffers copied in one direction. @public */
export interface MediatorFlowStats {
  /** Buffers copied. */
  buffers: number;
  /** Bytes copied. */
  bytes: number;
  /** Buffers that did not fit the receiving buffer and were cut. */
  truncated: number;
}

/** Counters of one mediated device. @public */
export interface MediatorStats {
  /** Local driver → remote driver. */
  readonly toRemote: MediatorFlowStats;
  /** Remote driver → local driver. */
  readonly toLocal: MediatorFlowStats;
  /** Times a side was told DEVICE_NEEDS_RESET (feature mediation or a broken ring). */
  needsReset: number;
}

/** A side's negotiation finished (FEATURES_OK): the features of the device now. @public */
export interface MediatorFeaturesEvent {
  /** Discriminant. */
  readonly type: 'features';
  /** The remote vhost device. */
  readonly device: VhostDevice;
  /** The side that set FEATURES_OK. */
  readonly side: MediatorSide;
  /** X, Y, Z and what is in use. */
  readonly features: MediatedFeatures;
}

/** The mediator set DEVICE_NEEDS_RESET on one side (§2.1.2). @public */
export interface MediatorNeedsResetEvent {
  /** Discriminant. */
  readonly type: 'needs-reset';
  /** The remote vhost device. */
  readonly device: VhostDevice;
  /** The side told to reset. */
  readonly side: MediatorSide;
  /** Why, in words. */
  readonly reason: string;
}

/** Something failed that no caller awaits (a ring fault, a failed registration). @public */
export interface MediatorErrorEvent {
  /** Discriminant. */
  readonly type: 'error';
  /** The remote vhost device. */
  readonly device: VhostDevice;
  /** What failed. */
  readonly error: MediatorError;
}

/** Reports of {@link VirtioMediatorOptions.onEvent}. @public */
export type MediatorEvent = MediatorFeaturesEvent | MediatorNeedsResetEvent | MediatorErrorEvent;

/** Options of {@link VirtioMediator}. @public */
export interface VirtioMediatorOptions {
  /** The local bus the mediated devices are registered on, for local virtio drivers. */
  readonly bus: VirtioBus;
  /** The device types served, one per device ID. */
  readonly devices: readonly MediatedDeviceType[];
  /** Queue size on both sides (a power of two ≤ 32768; the local driver may ask for less). Default 256, Jason's figure. */
  readonly queueSize?: number;
  /** Bytes of local memory per device for the local driver's buffers (core's dmaRegion allocator). Default 1 MiB. */
  readonly bufferMemory?: number;
  /** Indirect table entries per local buffer when the local driver negotiates INDIRECT_DESC. Default 8. */
  readonly indirectSegments?: number;
  /** The vhost driver's name. Default `virtio-mediator`. */
  readonly name?: string;
  /** Receives reports. Exceptions it throws are ignored. */
  readonly onEvent?: (event: MediatorEvent) => void;
}

function checkFeatureWord(name: string, v: unknown): bigint {
  if (typeof v !== 'bigint') throw new TypeError(`${name} must be a bigint, got ${typeof v}`);
  if (v < 0n || v >= 1n << 64n) throw new RangeError(`${name} must be in [0, 2^64), got 0x${v.toString(16)}`);
  return v;
}

function checkType(t: MediatedDeviceType, i: number): Required<Omit<MediatedDeviceType, 'vendorId'>> & { vendorId: number | undefined } {
  const name = `options.devices[${i}]`;
  if (typeof t !== 'object' || t === null) throw new TypeError(`${name} must be an object`);
  if (typeof t.deviceId !== 'number' || !Number.isInteger(t.deviceId) || t.deviceId < 1 || t.deviceId >= VIRTIO_DEV_ANY_ID) {
    throw new RangeError(`${name}.deviceId must be an integer in 1..0xfffffffe, got ${String(t.deviceId)}`);
  }
  const features = checkFeatureWord(`${name}.features`, t.features);
  const badRing = features & TRANSPORT_FEATURES_MASK & ~MEDIATOR_RING_FEATURES;
  if (badRing !== 0n) {
    throw new RangeError(`${name}.features has transport bits 0x${badRing.toString(16)} the mediator does not implement (only INDIRECT_DESC, EVENT_IDX, VERSION_1)`);
  }
  const queues = t.queues ?? 2;
  if (!Number.isInteger(queues) || queues < 1 || queues > 64) throw new RangeError(`${name}.queues must be an integer in 1..64, got ${queues}`);
  let routes = t.routes;
  if (routes === undefined) {
    if (queues % 2 !== 0) throw new RangeError(`${name}.routes must be given for an odd number of queues (${queues})`);
    const r: MediatorRoute[] = [];
    for (let k = 0; k < queues; k += 2) {
      r.push({ from: 'local', fromQueue: k + 1, toQueue: k }, { from: 'remote', fromQueue: k + 1, toQueue: k });
    }
    routes = r;
  }
  if (!Array.isArray(routes)) throw new TypeError(`${name}.routes must be an array`);
  const used = new Set<string>();
  routes.forEach((r, j) => {
    const rn = `${name}.routes[${j}]`;
    if (r.from !== 'local' && r.from !== 'remote') throw new TypeError(`${rn}.from must be 'local' or 'remote'`);
    for (const [k, q] of [['fromQueue', r.fromQueue], ['toQueue', r.toQueue]] as const) {
      if (!Number.isInteger(q) || q < 0 || q >= queues) throw new RangeError(`${rn}.${k} must be a queue index in 0..${queues - 1}, got ${String(q)}`);
    }
    const to = r.from === 'local' ? 'remote' : 'local';
    // Each queue end is driven by one route: two routes on one ring would race for its chains.
    for (const key of [`${r.from}:${r.fromQueue}`, `${to}:${r.toQueue}`]) {
      if (used.has(key)) throw new RangeError(`${rn}: queue ${key} is already used by another route`);
      used.add(key);
    }
  });
  const config = t.config ?? new Uint8Array(0);
  if (!(config instanceof Uint8Array)) throw new TypeError(`${name}.config must be a Uint8Array`);
  if (t.vendorId !== undefined && (!Number.isInteger(t.vendorId) || t.vendorId < 0 || t.vendorId > 0xffffffff)) {
    throw new RangeError(`${name}.vendorId must be a u32, got ${t.vendorId}`);
  }
  return { deviceId: t.deviceId, features, queues, routes: routes.map((r) => ({ ...r })), config, vendorId: t.vendorId };
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

interface Route {
  readonly spec: MediatorRoute;
  readonly from: QueueEnd;
  readonly to: QueueEnd;
  readonly riov: VringIov;
  readonly wiov: VringIov;
  readonly flow: MediatorFlowStats;
  /** A chain taken from `from` that waits for a buffer on `to`. */
  head: number;
}

let closeMediation: (m: Mediation) => void;
let reportTo: (owner: VirtioMediator, event: MediatorEvent) => void;

/**
 * One mediated device: the remote vhost device, the local virtio device the mediator
 * presents for it, the two rings per queue pair and the copy routes between them.
 */
class Mediation {
  readonly owner: VirtioMediator;
  readonly remote: VhostDevice;
  readonly type: ReturnType<typeof checkType>;
  readonly offered: bigint;
  readonly stats: MediatorStats = {
    toRemote: { buffers: 0, bytes: 0, truncated: 0 },
    toLocal: { buffers: 0, bytes: 0, truncated: 0 },
    needsReset: 0,
  };
  local: VirtioDevice | undefined = undefined;
  ceiling: bigint;
  readonly ops: VirtioConfigOps;
  readonly #memory: ArrayBufferMemory;
  readonly #ringPool: GenPool;
  readonly #config: Uint8Array;
  readonly #queueSize: number;
  readonly #segs: number;
  // Local device state (the mediated virtio device's registers, in effect).
  #lStatus = 0;
  #lNeedsReset = false;
  #lPending = 0n;
  #lFeatures = 0n;
  #lq: Array<LocalQueue | undefined> = [];
  // Remote state as the mediator last saw it.
  #rStatus = 0;
  #routes: Route[] = [];
  #scheduled = false;
  #running = false;
  #closed = false;
  readonly #scratch = new Uint8Array(4096);

  static {
    closeMediation = (m) => {
      m.#closed = true;
    };
  }

  constructor(owner: VirtioMediator, remote: VhostDevice, type: ReturnType<typeof checkType>, queueSize: number, bufferMemory: number, segs: number) {
    this.owner = owner;
    this.remote = remote;
    this.type = type;
    this.offered = type.features;
    this.ceiling = deviceFeatures(type.features);
    this.#queueSize = queueSize;
    this.#segs = segs;
    this.#config = new Uint8Array(type.config);
    // Local memory: one ring slot per queue (ring + indirect tables), then the buffers.
    const ringSlot = alignUp(layoutSpan(vringModernLayout(queueSize, { desc: 0 })).end, 64) + queueSize * segs * 16;
    const ringArea = alignUp(type.queues * ringSlot, 4096);
    const base = 0x1000_0000;
    this.#memory = new ArrayBufferMemory(new ArrayBuffer(ringArea + bufferMemory), { base, name: `mediator local memory (device ${type.deviceId})` });
    this.#ringPool = new GenPool({ base, size: ringArea, align: 64 });
    this.ops = this.#makeOps({ memory: this.#memory, addr: base + ringArea, size: bufferMemory });
  }

  get features(): MediatedFeatures {
    const y = this.#localFeaturesOk() ? this.#lFeatures : 0n;
    const z = this.#remoteFeaturesOk() ? this.remote.features : 0n;
    return Object.freeze({
      offered: this.offered,
      local: y,
      remote: z,
      device: this.#localFeaturesOk() && this.#remoteFeaturesOk() ? deviceFeatures(y & z) : 0n,
      ceiling: this.ceiling,
    });
  }

  /** What either side is offered now: X's ring bits, and X's device bits under the ceiling. */
  offer(): bigint {
    return (this.offered & TRANSPORT_FEATURES_MASK) | (this.offered & this.ceiling);
  }

  /** Builds the remote queues' routes once createVqs made them. */
  wire(): void {
    const rq = this.remote.vqs;
    this.#routes = this.type.routes.map((spec) => {
      const localEnd = (i: number): QueueEnd =>
        new LocalEnd(
          i,
          () => this.#lq[i],
          () => this.#localLive(),
        );
      const remoteEnd = (i: number): QueueEnd => new RemoteEnd(rq[i]!);
      const from = spec.from === 'local' ? localEnd(spec.fromQueue) : remoteEnd(spec.fromQueue);
      const to = spec.from === 'local' ? remoteEnd(spec.toQueue) : localEnd(spec.toQueue);
      return {
        spec,
        from,
        to,
        riov: new VringIov(IOV_SEGMENTS),
        wiov: new VringIov(IOV_SEGMENTS),
        flow: spec.from === 'local' ? this.stats.toRemote : this.stats.toLocal,
        head: -1,
      };
    });
  }

  // ---- feature mediation ------------------------------------------------------------

  #localFeaturesOk(): boolean {
    return (this.#lStatus & S.FEATURES_OK) !== 0 && !this.#lNeedsReset && (this.#lStatus & S.FAILED) === 0;
  }

  #remoteFeaturesOk(): boolean {
    const st = this.remote.status;
    return (st & S.FEATURES_OK) !== 0 && (st & (S.NEEDS_RESET | S.FAILED)) === 0;
  }

  /**
   * A side set FEATURES_OK with `accepted`. The device bits in use must be the same on
   * both sides (Y ∩ Z): the ceiling drops to what this side accepted; a side that holds
   * a device bit above the ceiling is told to reset and negotiates again (§2.1.2).
   */
  featuresOk(side: MediatorSide, accepted: bigint): void {
    const mine = deviceFeatures(accepted);
    const before = this.ceiling;
    this.ceiling = before & mine;
    if ((mine & ~before) !== 0n) {
      this.needsReset(side, `it accepted device features ${hex(mine & ~before)} that the other side refused`);
    }
    const other: MediatorSide = side === 'local' ? 'remote' : 'local';
    const otherOk = other === 'local' ? this.#localFeaturesOk() : this.#remoteFeaturesOk();
    if (otherOk) {
      const theirs = deviceFeatures(other === 'local' ? this.#lFeatures : this.remote.features);
      if ((theirs & ~this.ceiling) !== 0n) {
        this.needsReset(other, `it holds device features ${hex(theirs & ~this.ceiling)} that the ${side} side refused`);
      }
    } else if (other === 'remote') {
      this.#reofferRemote();
    }
    reportTo(this.owner, { type: 'features', device: this.remote, side, features: this.features });
  }

  /** When neither side holds negotiated features, the ceiling goes back to X. */
  #relaxCeiling(): void {
    if (!this.#localFeaturesOk() && !this.#remoteFeaturesOk()) this.ceiling = deviceFeatures(this.offered);
  }

  #reofferRemote(): void {
    if ((this.remote.status & S.FEATURES_OK) !== 0 || this.#closed) return;
    this.remote.setFeatures(this.offer()).catch((e: unknown) => this.#fail(new MediatorError('RING_ERROR', `remote: could not publish the offer: ${String(e)}`, { cause: e, side: 'remote' })));
  }

  needsReset(side: MediatorSide, reason: string): void {
    this.stats.needsReset++;
    reportTo(this.owner, { type: 'needs-reset', device: this.remote, side, reason });
    if (side === 'local') {
      if (this.#lNeedsReset) return;
      this.#lNeedsReset = true;
      this.#stopLocal();
      const dev = this.local;
      // A configuration-change interrupt, after the current operation (§2.1.2).
      if (dev !== undefined) queueMicrotask(() => void dev.notifyConfigChanged().catch(() => undefined));
    } else {
      this.#dropHeads('remote');
      const st = this.remote.status;
      if ((st & S.NEEDS_RESET) !== 0) return;
      this.remote.setStatus((st | S.NEEDS_RESET) & 0xff).catch((e: unknown) => this.#fail(new MediatorError('RING_ERROR', `remote: could not set NEEDS_RESET: ${String(e)}`, { cause: e, side: 'remote' })));
    }
  }

  // ---- remote events ---------------------------------------------------------------

  onRemoteEvent(info: VhostEventInfo): void {
    if (info.event === VHOST_NOTIFY.RESET) {
      this.#rStatus = 0;
      this.#dropHeads('remote');
      this.#relaxCeiling();
      this.#reofferRemote();
      return;
    }
    if (info.event !== VHOST_NOTIFY.SET_STATUS) return;
    const newly = info.status & ~this.#rStatus;
    this.#rStatus = info.status;
    if ((newly & S.FEATURES_OK) !== 0 && this.#remoteFeaturesOk()) this.featuresOk('remote', info.features);
    if ((newly & S.DRIVER_OK) !== 0) this.schedule();
    if ((newly & S.FAILED) !== 0) this.#dropHeads('remote');
  }

  // ---- the local device (its VirtioConfigOps) ---------------------------------------

  #localLive(): boolean {
    return (this.#lStatus & S.DRIVER_OK) !== 0 && (this.#lStatus & S.FAILED) === 0 && !this.#lNeedsReset;
  }

  #makeOps(dmaRegion: { memory: ArrayBufferMemory; addr: number; size: number }): VirtioConfigOps {
    const checkConfig = (offset: number, len: number): void => {
      if (!Number.isInteger(offset) || offset < 0 || offset + len > this.#config.length) {
        throw new RangeError(`offset: config access ${offset}+${len} is beyond the ${this.#config.length}-byte configuration space`);
      }
    };
    return {
      getFeatures: () => this.offer(),
      finalizeFeatures: (f: bigint) => {
        this.#lPending = f;
      },
      getStatus: () => this.#lStatus | (this.#lNeedsReset ? S.NEEDS_RESET : 0),
      setStatus: (s: number) => this.#localSetStatus(s),
      reset: () => this.#localReset(),
      findVqs: (specs: readonly VirtqueueSpec[], ring: VirtioRingOptions) => this.#localFindVqs(specs, ring),
      delVqs: () => this.#localDelVqs(),
      getConfig: (offset: number, dst: Uint8Array) => {
        checkConfig(offset, dst.length);
        dst.set(this.#config.subarray(offset, offset + dst.length));
      },
      setConfig: (offset: number, src: Uint8Array) => {
        checkConfig(offset, src.length);
        this.#config.set(src, offset);
      },
      dmaRegion: Object.freeze(dmaRegion),
    };
  }

  #localSetStatus(s: number): void {
    const newly = s & ~this.#lStatus;
    this.#lStatus = s & ~S.NEEDS_RESET;
    if ((newly & S.FEATURES_OK) !== 0) {
      // §3.1.1 step 6: FEATURES_OK sticks only for features that were offered.
      if ((this.#lPending & ~this.offer()) !== 0n) {
        this.#lStatus &= ~S.FEATURES_OK;
        return;
      }
      this.#lFeatures = this.#lPending;
      if (!this.#lNeedsReset) this.featuresOk('local', this.#lFeatures);
    }
    if ((newly & S.DRIVER_OK) !== 0 && this.#localLive()) this.#startLocal();
    if ((newly & S.FAILED) !== 0) this.#stopLocal();
  }

  #localReset(): void {
    this.#stopLocal();
    this.#lStatus = 0;
    this.#lNeedsReset = false;
    this.#lPending = 0n;
    this.#lFeatures = 0n;
    this.#relaxCeiling();
    this.#reofferRemote();
  }

  #localFindVqs(specs: readonly VirtqueueSpec[], ring: VirtioRingOptions): Virtqueue[] {
    if (this.#lq.some((q) => q !== undefined)) throw new MediatorError('BAD_STATE', 'local queues exist; delete them first', { side: 'local' });
    if (specs.length > this.type.queues) {
      throw new MediatorError('NO_QUEUE', `device ${this.type.deviceId} has ${this.type.queues} queues, the local driver asked for ${specs.length}`, { side: 'local' });
    }
    const made: LocalQueue[] = [];
    try {
      specs.forEach((spec, i) => {
        let num = Math.min(spec.size ?? this.#queueSize, this.#queueSize);
        while ((num & (num - 1)) !== 0) num &= num - 1;
        const ringBytes = alignUp(layoutSpan(vringModernLayout(num, { desc: 0 })).end, 64);
        const segs = ring.indirect && this.#segs >= 2 ? this.#segs : 0;
        const total = ringBytes + num * segs * 16;
        const addr = this.#ringPool.alloc(total);
        if (addr < 0) throw new VirtioError('NO_BUFFER_SPACE', `local queue ${i}: no room for a ring of ${num}`);
        // The driver's ring starts zeroed (§2.7.10.1); the pool may hand back old bytes.
        this.#memory.write(addr, new Uint8Array(total));
        const vq = new Virtqueue({
          memory: this.#memory,
          layout: vringModernLayout(num, { desc: addr }),
          index: i,
          name: spec.name,
          eventIdx: ring.eventIdx,
          ...(segs > 0 ? { indirect: { area: addr + ringBytes, maxSegments: segs } } : {}),
          // The local driver's kick: the mediator's doorbell.
          notify: () => {
            this.schedule();
            return true;
          },
          ...(spec.callback === undefined ? {} : { callback: spec.callback }),
        });
        made.push({ vq, ringAddr: addr, eventIdx: ring.eventIdx, indirect: ring.indirect, vrh: undefined, irqQueued: false });
      });
    } catch (e) {
      for (const q of made) this.#ringPool.free(q.ringAddr);
      throw e;
    }
    this.#lq = made;
    if (this.#localLive()) this.#startLocal();
    return made.map((q) => q.vq);
  }

  #localDelVqs(): void {
    this.#stopLocal();
    for (const q of this.#lq) if (q !== undefined) this.#ringPool.free(q.ringAddr);
    this.#lq = [];
  }

  /** DRIVER_OK on the local side: the mediator's device halves go live (no ring is touched before). */
  #startLocal(): void {
    for (const q of this.#lq) {
      if (q === undefined || q.vrh !== undefined) continue;
      q.vrh = new Vringh({ memory: this.#memory, layout: q.vq.layout, eventIdx: q.eventIdx, indirect: q.indirect });
    }
    this.schedule();
  }

  #stopLocal(): void {
    for (const q of this.#lq) if (q !== undefined) q.vrh = undefined;
    this.#dropHeads('local');
  }

  /** Chains taken from a side's ring belong to that ring's session: after its reset they are gone. */
  #dropHeads(side: MediatorSide): void {
    for (const r of this.#routes) if (r.from.side === side) r.head = -1;
  }

  // ---- copying ---------------------------------------------------------------------

  schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    let again = false;
    try {
      for (let rounds = 0; rounds < MAX_ROUNDS; rounds++) {
        again = false;
        for (const r of this.#routes) {
          if (!r.from.ready() || !r.to.ready()) continue;
          try {
            if (this.#route(r)) again = true;
          } catch (e) {
            this.#fail(e);
          }
        }
        if (!again) break;
      }
    } finally {
      this.#running = false;
    }
    // Bounded work per turn: what is left runs after other tasks.
    if (again && !this.#closed) setImmediate(() => this.schedule());
  }

  /** One batch on one route; true when both ends still have work for another batch. */
  #route(r: Route): boolean {
    const { from, to } = r;
    from.disable();
    to.disable();
    let moved = 0;
    const budget = Math.max(from.num, 1);
    while (moved < budget) {
      if (r.head < 0) {
        r.head = from.takeReadable(r.riov);
        if (r.head < 0) break;
      }
      const out = to.takeWritable(r.wiov);
      if (out < 0) break;
      let len = 0;
      let cut = false;
      for (;;) {
        const n = from.pull(r.riov, this.#scratch);
        if (n === 0) break;
        const m = to.push(r.wiov, this.#scratch, 0, n);
        len += m;
        if (m < n) {
          cut = true;
          break;
        }
      }
      to.complete(out, len);
      from.complete(r.head, 0);
      r.head = -1;
      moved++;
      r.flow.buffers++;
      r.flow.bytes += len;
      if (cut) r.flow.truncated++;
    }
    if (moved > 0) {
      to.notify();
      from.notify();
    }
    // Ask for kicks again, then look again (Linux vhost handle_* loops): true = empty.
    const fromEmpty = from.enable();
    const toEmpty = to.enable();
    return (r.head >= 0 || !fromEmpty) && !toEmpty;
  }

  #fail(e: unknown): void {
    const err = e instanceof MediatorError ? e : new MediatorError('RING_ERROR', String(e), { cause: e });
    reportTo(this.owner, { type: 'error', device: this.remote, error: err });
    this.owner.lastError = err;
    if (err.side !== undefined) this.needsReset(err.side, err.message);
  }
}

/**
 * Jason Wang's alternative to the RFC's vhost bus (rfc-protocol §3): a transport-neutral
 * **mediator**. It is a {@link @x/vhost-core#VhostDriver} that binds to a remote-facing
 * `VhostDevice` of any transport and, on probe, registers a **local** `VirtioDevice` —
 * with its own `VirtioConfigOps` and rings in local memory — on a local `VirtioBus`, so
 * unmodified local virtio drivers run on it. It is the device of both rings and copies
 * between them: the local driver's send queue into the remote driver's receive buffers,
 * the remote driver's send queue into the local receive buffers.
 *
 * **Feature mediation.** X is configured per device ID. The local driver negotiates
 * Y ⊆ X through the local device, the remote driver Z ⊆ X through the vhost device.
 * Transport bits (INDIRECT_DESC, EVENT_IDX, VERSION_1) are per side: each ring runs
 * with what its own driver accepted, because the mediator terminates both rings.
 * Device-specific bits describe the bytes that cross, so only Y ∩ Z may be in use: the
 * side that negotiates later is offered only what the other accepted, and a side holding
 * a device bit the other refused is told DEVICE_NEEDS_RESET and negotiates again.
 *
 * @public
 */
export class VirtioMediator implements VhostDriver {
  /** {@inheritDoc @x/vhost-core#VhostDriver.name} */
  readonly name: string;
  /** {@inheritDoc @x/vhost-core#VhostDriver.idTable} */
  readonly idTable: readonly VhostDeviceId[];
  /** {@inheritDoc @x/vhost-core#VhostDriver.features} */
  readonly features: bigint;
  /** The local bus. */
  readonly bus: VirtioBus;
  /** Queue size on both sides. */
  readonly queueSize: number;
  /** The last error reported through `onEvent`. */
  lastError: unknown = undefined;
  readonly #types = new Map<number, ReturnType<typeof checkType>>();
  readonly #mediations = new Map<VhostDevice, Mediation>();
  readonly #bufferMemory: number;
  readonly #segs: number;
  readonly #onEvent: ((e: MediatorEvent) => void) | undefined;

  constructor(options: VirtioMediatorOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const bus = options.bus;
    if (typeof bus !== 'object' || bus === null || typeof bus.registerDevice !== 'function') throw new TypeError('options.bus must be a VirtioBus');
    if (!Array.isArray(options.devices) || options.devices.length === 0) throw new TypeError('options.devices must be a non-empty array');
    options.devices.forEach((t, i) => {
      const c = checkType(t, i);
      if (this.#types.has(c.deviceId)) throw new RangeError(`options.devices[${i}].deviceId ${c.deviceId} is listed twice`);
      this.#types.set(c.deviceId, c);
    });
    const queueSize = options.queueSize ?? 256;
    if (typeof queueSize !== 'number' || !Number.isInteger(queueSize) || queueSize < 1 || queueSize > VIRTQUEUE_MAX_SIZE || (queueSize & (queueSize - 1)) !== 0) {
      throw new RangeError(`options.queueSize must be a power of two in 1..${VIRTQUEUE_MAX_SIZE}, got ${String(queueSize)}`);
    }
    const bufferMemory = options.bufferMemory ?? 1 << 20;
    if (!Number.isInteger(bufferMemory) || bufferMemory < 4096 || bufferMemory > 1 << 30 || bufferMemory % VIRTIO_BUFFER_ALIGN !== 0) {
      throw new RangeError(`options.bufferMemory must be a multiple of 16 in 4096..2^30, got ${bufferMemory}`);
    }
    const segs = options.indirectSegments ?? 8;
    if (!Number.isInteger(segs) || segs < 0 || segs > 1024) throw new RangeError(`options.indirectSegments must be an integer in 0..1024, got ${segs}`);
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new TypeError('options.onEvent must be a function');
    this.name = options.name ?? 'virtio-mediator';
    this.bus = bus;
    this.queueSize = queueSize;
    this.#bufferMemory = bufferMemory;
    this.#segs = segs;
    this.#onEvent = options.onEvent;
    this.idTable = [...this.#types.keys()].map((device) => ({ vendor: VHOST_DEV_ANY_ID, device }));
    let all = 0n;
    for (const t of this.#types.values()) all |= t.features;
    this.features = all;
  }

  /** The remote vhost devices the mediator is bound to. */
  get remotes(): readonly VhostDevice[] {
    return [...this.#mediations.keys()];
  }

  /** The local virtio device presented for `remote`. */
  localDevice(remote: VhostDevice): VirtioDevice | undefined {
    return this.#mediations.get(remote)?.local;
  }

  /** X, Y, Z and the features in use for `remote`'s device. */
  mediated(remote: VhostDevice): MediatedFeatures | undefined {
    return this.#mediations.get(remote)?.features;
  }

  /** Counters of `remote`'s device. */
  stats(remote: VhostDevice): MediatorStats | undefined {
    return this.#mediations.get(remote)?.stats;
  }

  static {
    reportTo = (owner, event) => owner.#report(event);
  }

  #report(event: MediatorEvent): void {
    if (event.type === 'error') this.lastError = event.error;
    try {
      this.#onEvent?.(event);
    } catch {
      // A listener does not break the mediator.
    }
  }

  /**
   * Binds a remote vhost device (RFC patch 2 `probe`): offers X, creates the remote
   * queues (`queueSize` each) and registers the local virtio device on the local bus.
   */
  async probe(dev: VhostDevice): Promise<void> {
    const type = this.#types.get(dev.id!.device);
    if (type === undefined) throw new MediatorError('NO_QUEUE', `${dev.name}: no device type for device ID ${dev.id!.device}`);
    const m = new Mediation(this, dev, type, this.queueSize, this.#bufferMemory, this.#segs);
    this.#mediations.set(dev, m);
    try {
      if (type.config.length > 0) {
        // Both drivers see one configuration space where the transport has one.
        await dev.writeConfig(0, type.config).catch(() => undefined);
      }
      await dev.setFeatures(m.offer());
      await dev.createVqs(Array.from({ length: type.queues }, (_, i) => ({ name: `mediated${i}`, size: this.queueSize, callback: () => m.schedule() })));
      m.wire();
      const local = new VirtioDevice({ id: { device: type.deviceId, vendor: type.vendorId ?? dev.id!.vendor }, ops: m.ops, name: `mediated-${dev.name}` });
      m.local = local;
      await this.bus.registerDevice(local);
    } catch (e) {
      closeMediation(m);
      this.#mediations.delete(dev);
      const err = e instanceof MediatorError ? e : new MediatorError('LOCAL_REGISTRATION', `${dev.name}: ${String(e)}`, { cause: e });
      this.#report({ type: 'error', device: dev, error: err });
      throw err;
    }
  }

  /** Unbinds a remote device: unregisters the local device (its driver's remove runs), then deletes the remote queues. */
  async remove(dev: VhostDevice): Promise<void> {
    const m = this.#mediations.get(dev);
    this.#mediations.delete(dev);
    if (m !== undefined) {
      closeMediation(m);
      const local = m.local;
      if (local !== undefined && local.bus === this.bus) {
        try {
          await this.bus.unregisterDevice(local);
        } catch (e) {
          this.#report({ type: 'error', device: dev, error: new MediatorError('LOCAL_REGISTRATION', `${dev.name}: unregistering the local device failed`, { cause: e }) });
        }
      }
    }
    await dev.delVqs();
  }

  /** The remote driver's SET_STATUS / FINALIZE_FEATURES / RESET (RFC patch 3 notifier events). */
  event(dev: VhostDevice, info: VhostEventInfo): void {
    this.#mediations.get(dev)?.onRemoteEvent(info);
  }
}
