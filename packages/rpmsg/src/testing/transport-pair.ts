import { setImmediate } from 'node:timers';
import {
  ArrayBufferMemory,
  RegionMemory,
  VRING_LEGACY_ALIGN,
  Virtqueue,
  Vringh,
  vringLegacyLayout,
  vringSize,
  type GuestMemory,
  type SplitRingLayout,
} from '@x/vring';
import {
  RPMSG_BUF_SIZE,
  RPMSG_NUM_BUFS,
  RPMSG_RX_QUEUE,
  RPMSG_TX_QUEUE,
  RpmsgVirtqueueTransport,
  RpmsgVirtproc,
  RpmsgVringhTransport,
  VIRTIO_RPMSG_F,
  vringhDeviceQueue,
  type RpmsgVirtprocOptions,
} from '@x/rpmsg';

/** Options of {@link createRpmsgTransportPair}. @public */
export interface RpmsgTransportPairOptions {
  /** Size of each of the two rings. Default 256. */
  queueSize?: number;
  /** Bytes per buffer, header included. Default 512. */
  bufSize?: number;
  /** The device side's largest buffer (it drops longer messages). Default `bufSize`. */
  deviceBufSize?: number;
  /** Buffers per direction. Default min(256, queueSize). */
  numBufs?: number;
  /** Negotiated feature bits. Default F_NS | F_AS (0b11). */
  features?: number;
  /** Negotiate EVENT_IDX on both rings. Default false. */
  eventIdx?: boolean;
  /** Back the memory with a SharedArrayBuffer. Default false. */
  shared?: boolean;
  /** Deliver doorbells and interrupts as microtasks (default) or as macrotasks (setImmediate). */
  schedule?: 'microtask' | 'macrotask';
  /** The device transport's `stableViews` (the window here is never remapped). Default false. */
  stableViews?: boolean;
  /** The device transport's `busyTurns`. Default 0. */
  busyTurns?: number;
}

/** Doorbell and interrupt counters of a {@link RpmsgTransportPair}. @public */
export interface RpmsgTransportPairStats {
  /** Driver → device notifications delivered. */
  doorbells: number;
  /** Device → driver interrupts delivered. */
  interrupts: number;
}

/** What {@link createRpmsgTransportPair} returns. @public */
export interface RpmsgTransportPair {
  /** The driver (virtio) side. Call `start()` once the device side is attached. */
  readonly driver: RpmsgVirtqueueTransport;
  /** The device (vhost) side. */
  readonly device: RpmsgVringhTransport;
  /** The only thing the two sides share: rings and buffers. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** The driver's memory (bus addresses from 0x1000_0000). */
  readonly driverMemory: ArrayBufferMemory;
  /** The device's memory: a window onto its own mapping of the same bytes. */
  readonly deviceMemory: GuestMemory;
  /** The two rings in driver bus addresses: vq0 (driver RX) and vq1 (driver TX). */
  readonly layouts: readonly [SplitRingLayout, SplitRingLayout];
  /** Counters. */
  readonly stats: RpmsgTransportPairStats;
  /** Holds every doorbell and interrupt until {@link RpmsgTransportPair.resume} (the rings keep working). */
  pause(): void;
  /** Delivers what was held and lets new signals through. */
  resume(): void;
  /**
   * Sends raw bytes as one buffer from one side, bypassing its rpmsg core (hostile-peer
   * tests). `usedLen` (default `bytes.length`) is the length the ring reports. Returns
   * false when that side has no free TX buffer.
   */
  inject(from: 'driver' | 'device', bytes: Uint8Array, usedLen?: number): boolean;
  /** Resolves once no doorbell or interrupt is pending (a few event-loop turns). */
  settle(): Promise<void>;
}

const DRIVER_BASE = 0x1000_0000;
const DEVICE_BASE = 0x8_0000_0000;

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/**
 * Two rpmsg transports joined the way the RFC joins two SoCs, in one thread: the
 * driver's memory holds vq0, vq1 (legacy layout, align 4096) and the buffer block; the
 * device reaches it through a window onto its own mapping at another address.
 * Doorbells and interrupts are queued tasks carrying a queue index. Nothing but bytes
 * and those indices crosses.
 *
 * @public
 */
export function createRpmsgTransportPair(options: RpmsgTransportPairOptions = {}): RpmsgTransportPair {
  const num = options.queueSize ?? 256;
  const bufSize = options.bufSize ?? RPMSG_BUF_SIZE;
  const numBufs = options.numBufs ?? Math.min(RPMSG_NUM_BUFS, num);
  const features = options.features ?? ((1 << VIRTIO_RPMSG_F.NS) | (1 << VIRTIO_RPMSG_F.AS));
  const eventIdx = options.eventIdx ?? false;
  const macrotask = options.schedule === 'macrotask';
  const ringBytes = alignUp(vringSize(num, VRING_LEGACY_ALIGN), VRING_LEGACY_ALIGN);
  const vq0Addr = DRIVER_BASE;
  const vq1Addr = DRIVER_BASE + ringBytes;
  const bufferBase = DRIVER_BASE + 2 * ringBytes;
  const total = 2 * ringBytes + 2 * numBufs * bufSize;
  const buffer = options.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total);
  const driverMemory = new ArrayBufferMemory(buffer, { base: DRIVER_BASE, name: 'driver memory' });
  const local = new ArrayBufferMemory(buffer, { base: DEVICE_BASE, name: 'device mapping' });
  const deviceMemory = new RegionMemory({ name: 'device window' });
  deviceMemory.map({ busAddr: DRIVER_BASE, size: total, target: local, targetAddr: DEVICE_BASE, name: 'window' });

  // Signals: one pending flag per (direction, queue), like a doorbell register.
  const stats: RpmsgTransportPairStats = { doorbells: 0, interrupts: 0 };
  const pending = [false, false, false, false];
  const tasks: Array<() => void> = [];
  let paused = false;
  let scheduled = false;
  const run = (): void => {
    scheduled = false;
    while (!paused && tasks.length > 0) tasks.shift()!();
  };
  const schedule = (): void => {
    if (scheduled || paused) return;
    scheduled = true;
    if (macrotask) setImmediate(run);
    else queueMicrotask(run);
  };
  const post = (slot: number, fn: () => void): void => {
    if (pending[slot]) return;
    pending[slot] = true;
    tasks.push(() => {
      pending[slot] = false;
      fn();
    });
    schedule();
  };

  let device: RpmsgVringhTransport | undefined;
  let driver: RpmsgVirtqueueTransport | undefined;
  const rvq = new Virtqueue<number>({
    memory: driverMemory,
    layout: vringLegacyLayout(vq0Addr, num, VRING_LEGACY_ALIGN),
    index: RPMSG_RX_QUEUE,
    name: 'rvq',
    eventIdx,
    callback: () => driver?.rxDone(),
    notify: () => {
      post(0, () => {
        stats.doorbells++;
        device?.kick(RPMSG_RX_QUEUE);
      });
    },
  });
  const svq = new Virtqueue<number>({
    memory: driverMemory,
    layout: vringLegacyLayout(vq1Addr, num, VRING_LEGACY_ALIGN),
    index: RPMSG_TX_QUEUE,
    name: 'svq',
    eventIdx,
    callback: () => driver?.txDone(),
    notify: () => {
      post(1, () => {
        stats.doorbells++;
        device?.kick(RPMSG_TX_QUEUE);
      });
    },
  });
  const drv = new RpmsgVirtqueueTransport({ rvq, svq, memory: driverMemory, bufferBase, bufSize, numRxBufs: numBufs, numTxBufs: numBufs, features });
  driver = drv;
  const interrupt = (index: number) => () => {
    post(2 + index, () => {
      stats.interrupts++;
      (index === RPMSG_RX_QUEUE ? rvq : svq).interrupt();
    });
  };
  device = new RpmsgVringhTransport({
    txQueue: vringhDeviceQueue(new Vringh({ memory: deviceMemory, layout: vringLegacyLayout(vq0Addr, num, VRING_LEGACY_ALIGN), eventIdx }), interrupt(RPMSG_RX_QUEUE)),
    rxQueue: vringhDeviceQueue(new Vringh({ memory: deviceMemory, layout: vringLegacyLayout(vq1Addr, num, VRING_LEGACY_ALIGN), eventIdx }), interrupt(RPMSG_TX_QUEUE)),
    view: (addr, len) => deviceMemory.view(addr, len),
    bufSize: options.deviceBufSize ?? bufSize,
    stableViews: options.stableViews ?? false,
    busyTurns: options.busyTurns ?? 0,
    features,
  });
  const dev = device;

  return {
    driver: drv,
    device: dev,
    buffer,
    driverMemory,
    deviceMemory,
    layouts: [vringLegacyLayout(vq0Addr, num, VRING_LEGACY_ALIGN), vringLegacyLayout(vq1Addr, num, VRING_LEGACY_ALIGN)],
    stats,
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      schedule();
    },
    inject(from, bytes, usedLen = bytes.length) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes must be a Uint8Array');
      const t = from === 'driver' ? drv : dev;
      const buf = t.getTxBuffer();
      if (buf === undefined) return false;
      if (bytes.length > buf.bytes.length) {
        t.releaseTxBuffer(buf);
        throw new RangeError(`bytes: ${bytes.length} bytes do not fit a ${buf.bytes.length}-byte buffer`);
      }
      if (!Number.isInteger(usedLen) || usedLen < 0 || (from === 'driver' && usedLen > buf.bytes.length) || usedLen > 0xffffffff) {
        t.releaseTxBuffer(buf);
        throw new RangeError(`usedLen ${usedLen} out of range`);
      }
      buf.bytes.set(bytes);
      t.sendTxBuffer(buf, usedLen);
      return true;
    },
    async settle() {
      for (let i = 0; i < 1000; i++) {
        await new Promise<void>((r) => setImmediate(r));
        if (tasks.length === 0 || paused) {
          await new Promise<void>((r) => setImmediate(r));
          if (tasks.length === 0 || paused) return;
        }
      }
    },
  };
}

/** Options of {@link createRpmsgPair}. @public */
export interface RpmsgPairOptions extends RpmsgTransportPairOptions {
  /** Options of the driver-side virtproc (role `driver`). */
  driverOptions?: RpmsgVirtprocOptions;
  /** Options of the device-side virtproc (role `device`). */
  deviceOptions?: RpmsgVirtprocOptions;
}

/** What {@link createRpmsgPair} returns. @public */
export interface RpmsgPair {
  /** The virtio (driver) side's rpmsg core. */
  readonly driver: RpmsgVirtproc;
  /** The vhost (device) side's rpmsg core. */
  readonly device: RpmsgVirtproc;
  /** The transports and the memory between them. */
  readonly link: RpmsgTransportPair;
  /** Closes both cores. */
  close(): void;
}

/**
 * Both sides of an rpmsg link in one thread: a {@link createRpmsgTransportPair} with an
 * `RpmsgVirtproc` on each side, RX buffers posted and published.
 *
 * @public
 */
export function createRpmsgPair(options: RpmsgPairOptions = {}): RpmsgPair {
  const link = createRpmsgTransportPair(options);
  const device = new RpmsgVirtproc(link.device, { name: 'device', role: 'device', ...options.deviceOptions });
  const driver = new RpmsgVirtproc(link.driver, { name: 'driver', role: 'driver', ...options.driverOptions });
  link.driver.start();
  return {
    driver,
    device,
    link,
    close() {
      driver.close();
      device.close();
    },
  };
}
