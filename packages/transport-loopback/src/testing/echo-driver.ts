import { VringIov } from '@x/vring';
import { VHOST_DEV_ANY_ID, VHOST_NOTIFY, type VhostDevice, type VhostDeviceId, type VhostDriver, type VhostEventInfo, type VhostVirtqueue } from '@x/vhost-core';

/** VERSION_1 (32) | EVENT_IDX (29) | INDIRECT_DESC (28): 2^32 + 2^29 + 2^28 = 0x1_3000_0000. */
const ECHO_FEATURES = 0x1_3000_0000n;
/** Segments a chain may have (an indirect table of the conformance driver has 8). */
const IOV_SEGMENTS = 256;
/** Echo batches per kick before the rest is left for a later turn (bounded work). */
const MAX_ROUNDS = 64;

/** Options of {@link VhostEchoDriver}. @public */
export interface VhostEchoDriverOptions {
  /** The device id to bind (vendor ANY). */
  readonly deviceId: number;
  /** Driver name. Default `vhost-echo`. */
  readonly name?: string;
  /** Features offered. Default VERSION_1 | EVENT_IDX | INDIRECT_DESC (0x1_3000_0000). */
  readonly features?: bigint;
  /** Queue size. Default: the device's configured `queueSize`. */
  readonly queueSize?: number;
}

interface EchoState {
  readonly toPeer: VhostVirtqueue;
  readonly fromPeer: VhostVirtqueue;
  readonly riov: VringIov;
  readonly wiov: VringIov;
  readonly scratch: Uint8Array;
  /** A chain taken from `fromPeer` that waits for a buffer in `toPeer`. */
  head: number;
  running: boolean;
  again: boolean;
}

/**
 * A vhost driver that is the echo device of the `VirtioConfigOps` conformance contract
 * (`@x/virtio-core/testing`): queue 0 carries device-writable buffers to the peer,
 * queue 1 device-readable buffers from it, and the bytes of each buffer from the peer
 * come back, in order, in the next buffer to the peer (truncated to its size) — the
 * queue roles of rpmsg (vq0 "input", vq1 "output" seen from the driver). Over a
 * loopback link it makes a virtio driver ↔ vhost driver echo end to end.
 *
 * Work per kick is bounded; a chain of the wrong direction or a malformed ring is
 * recorded in {@link VhostEchoDriver.lastError} and stops the echo until the next reset.
 *
 * @public
 */
export class VhostEchoDriver implements VhostDriver {
  /** {@inheritDoc @x/vhost-core#VhostDriver.name} */
  readonly name: string;
  /** {@inheritDoc @x/vhost-core#VhostDriver.idTable} */
  readonly idTable: readonly VhostDeviceId[];
  /** {@inheritDoc @x/vhost-core#VhostDriver.features} */
  readonly features: bigint;
  /** Buffers echoed, over all devices. */
  echoed = 0;
  /** RESET events seen. */
  resets = 0;
  /** The last error the echo hit. */
  lastError: unknown = undefined;
  readonly #queueSize: number | undefined;
  readonly #states = new Map<VhostDevice, EchoState>();

  constructor(options: VhostEchoDriverOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.name = options.name ?? 'vhost-echo';
    this.idTable = [{ vendor: VHOST_DEV_ANY_ID, device: options.deviceId }];
    this.features = options.features ?? ECHO_FEATURES;
    this.#queueSize = options.queueSize;
  }

  /** {@inheritDoc @x/vhost-core#VhostDriver.probe} */
  async probe(dev: VhostDevice): Promise<void> {
    await dev.setFeatures(this.features);
    const size = this.#queueSize === undefined ? {} : { size: this.#queueSize };
    let state: EchoState | undefined;
    const pump = (): void => {
      if (state !== undefined) this.#pump(state);
    };
    const [toPeer, fromPeer] = await dev.createVqs([
      { name: 'to-peer', callback: pump, ...size },
      { name: 'from-peer', callback: pump, ...size },
    ]);
    state = {
      toPeer: toPeer!,
      fromPeer: fromPeer!,
      riov: new VringIov(IOV_SEGMENTS),
      wiov: new VringIov(IOV_SEGMENTS),
      scratch: new Uint8Array(4096),
      head: -1,
      running: false,
      again: false,
    };
    this.#states.set(dev, state);
  }

  /** {@inheritDoc @x/vhost-core#VhostDriver.remove} */
  async remove(dev: VhostDevice): Promise<void> {
    this.#states.delete(dev);
    await dev.delVqs();
  }

  /** {@inheritDoc @x/vhost-core#VhostDriver.event} */
  event(dev: VhostDevice, info: VhostEventInfo): void {
    if (info.event !== VHOST_NOTIFY.RESET) return;
    this.resets++;
    // A head taken before the reset belongs to the old ring: forget it.
    const s = this.#states.get(dev);
    if (s !== undefined) s.head = -1;
  }

  #pump(s: EchoState): void {
    if (s.running) {
      s.again = true;
      return;
    }
    s.running = true;
    let rounds = 0;
    try {
      do {
        s.again = false;
        s.fromPeer.disableCb();
        s.toPeer.disableCb();
        const moved = this.#batch(s);
        if (moved > 0) {
          // Both queues were completed: each decides on its own whether the peer wants an interrupt.
          s.toPeer.notify();
          s.fromPeer.notify();
        }
        // Re-enable and look again (Linux vhost handle_* loops): true = still empty.
        const fromEmpty = s.fromPeer.enableCb();
        const toEmpty = s.toPeer.enableCb();
        if (s.head < 0 && fromEmpty) break; // nothing to echo: wait for a kick on from-peer
        if (toEmpty) break; // a message waits for a buffer: wait for a kick on to-peer
        s.again = true;
      } while (s.again && ++rounds < MAX_ROUNDS);
    } catch (e) {
      this.lastError = e;
      s.again = false;
    } finally {
      s.running = false;
    }
    if (s.again) setImmediate(() => this.#pump(s));
  }

  #batch(s: EchoState): number {
    const { toPeer, fromPeer, riov, wiov, scratch } = s;
    let moved = 0;
    while (moved < fromPeer.num) {
      if (s.head < 0) {
        s.head = fromPeer.getInbuf(riov);
        if (s.head < 0) break;
      }
      const out = toPeer.getOutbuf(wiov);
      if (out < 0) break;
      let len = 0;
      for (;;) {
        const n = fromPeer.pull(riov, scratch);
        if (n === 0) break;
        const m = toPeer.push(wiov, scratch, 0, n);
        len += m;
        if (m < n) break;
      }
      toPeer.putBuf(out, len);
      fromPeer.putBuf(s.head, 0);
      s.head = -1;
      moved++;
      this.echoed++;
    }
    return moved;
  }
}
