import { VringIov, type Vringh } from '@x/vring';
import { VHOST_DEV_ANY_ID, VHOST_NOTIFY, isVhostError, type VhostDevice, type VhostDeviceId, type VhostDriver, type VhostEventInfo, type VhostVirtqueue } from '@x/vhost-core';

/** VERSION_1 (32) | EVENT_IDX (29) | INDIRECT_DESC (28): 0x1_3000_0000. */
const DEFAULT_FEATURES = (1n << 32n) | (1n << 29n) | (1n << 28n);

/** Options of {@link VhostEchoDriver}. @public */
export interface VhostEchoDriverOptions {
  /** Features offered. Default VERSION_1 | EVENT_IDX | INDIRECT_DESC (0x1_3000_0000). */
  readonly features?: bigint;
  /** Queue size asked. Default: the device's `queueSize`. */
  readonly queueSize?: number;
  /** Device configuration written at probe (the transport must define that many bytes). */
  readonly config?: Uint8Array;
  /** Ids matched. Default: any. */
  readonly idTable?: readonly VhostDeviceId[];
  /** Called with every message echoed (the endpoint's own record of what it saw). */
  readonly inspect?: (bytes: Uint8Array) => void;
}

/**
 * A vhost driver of the echo function the conformance suites and benches use:
 * queue 0 (`rx` of the peer, device-writable) and queue 1 (`tx` of the peer,
 * device-readable); every chain taken from queue 1 comes back, in order, in the next
 * chain of queue 0 (truncated to its size). Work per kick is bounded; a chain waiting
 * for a free rx buffer is held, and dropped when the ring it came from goes away.
 *
 * @public
 */
export class VhostEchoDriver implements VhostDriver {
  /** Driver name. */
  readonly name: string;
  /** Ids matched. */
  readonly idTable: readonly VhostDeviceId[];
  /** Features offered. */
  readonly features: bigint;
  /** Messages echoed. */
  echoed = 0;
  /** Unexpected errors (ring errors other than a queue going away). */
  readonly errors: unknown[] = [];
  /** Devices probed. */
  probed = 0;
  readonly #queueSize: number | undefined;
  readonly #config: Uint8Array | undefined;
  readonly #inspect: ((bytes: Uint8Array) => void) | undefined;
  readonly #triov = new VringIov(64);
  readonly #twiov = new VringIov(64);
  readonly #rriov = new VringIov(64);
  readonly #rwiov = new VringIov(64);
  readonly #scratch = new Uint8Array(64 * 1024);
  #rx: VhostVirtqueue | undefined;
  #tx: VhostVirtqueue | undefined;
  #txHead = -1;
  #txRing: Vringh | undefined;
  #running = false;
  #again = false;

  constructor(name = 'vhost-echo', options: VhostEchoDriverOptions = {}) {
    this.name = name;
    this.idTable = options.idTable ?? [{ vendor: VHOST_DEV_ANY_ID, device: VHOST_DEV_ANY_ID }];
    this.features = options.features ?? DEFAULT_FEATURES;
    this.#queueSize = options.queueSize;
    this.#config = options.config;
    this.#inspect = options.inspect;
  }

  /** Offers the features, creates the two queues, writes the configuration. */
  async probe(device: VhostDevice): Promise<void> {
    await device.setFeatures(this.features);
    const size = this.#queueSize === undefined ? {} : { size: this.#queueSize };
    const [rx, tx] = await device.createVqs([
      { name: 'rx', callback: () => this.#pump(), ...size },
      { name: 'tx', callback: () => this.#pump(), ...size },
    ]);
    this.#rx = rx;
    this.#tx = tx;
    if (this.#config !== undefined) await device.writeConfig(0, this.#config);
    this.probed++;
  }

  /** Deletes the queues. */
  async remove(device: VhostDevice): Promise<void> {
    this.#rx = undefined;
    this.#tx = undefined;
    this.#txHead = -1;
    await device.delVqs();
  }

  /** A reset forgets the held chain. */
  event(_device: VhostDevice, info: VhostEventInfo): void {
    if (info.event === VHOST_NOTIFY.RESET) this.#txHead = -1;
  }

  #pump(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    const rx = this.#rx;
    const tx = this.#tx;
    if (rx === undefined || tx === undefined) return;
    this.#running = true;
    try {
      let total = 0;
      for (let round = 0; round < 16; round++) {
        this.#again = false;
        total += this.#batch(rx, tx);
        // Ask for the next kick, then look again for chains that raced with it.
        const rxEmpty = rx.enableCb();
        const txEmpty = tx.enableCb();
        if (!this.#again && (rxEmpty || (txEmpty && this.#txHead < 0))) break;
      }
      if (total > 0) {
        // Both queues' counters must be consumed: no short-circuit.
        rx.notify();
        tx.notify();
      }
    } catch (e) {
      // A queue that went away (reset, deactivate) mid-pump is not an error of the echo.
      if (!isVhostError(e, 'NOT_READY')) this.errors.push(e);
    } finally {
      this.#running = false;
    }
  }

  #batch(rx: VhostVirtqueue, tx: VhostVirtqueue): number {
    let moved = 0;
    if (this.#txHead >= 0 && tx.vringh !== this.#txRing) this.#txHead = -1;
    while (moved < tx.num) {
      if (this.#txHead < 0) {
        this.#txHead = tx.getBuf(this.#triov, this.#twiov);
        if (this.#txHead < 0) break;
        this.#txRing = tx.vringh;
      }
      const rh = rx.getBuf(this.#rriov, this.#rwiov);
      if (rh < 0) break;
      let len = 0;
      for (;;) {
        const n = tx.pull(this.#triov, this.#scratch, len, Math.min(this.#scratch.length - len, this.#rwiov.totalLen - len));
        if (n === 0) break;
        len += n;
      }
      const m = rx.push(this.#rwiov, this.#scratch, 0, len);
      this.#inspect?.(this.#scratch.subarray(0, len));
      rx.putBuf(rh, m);
      tx.putBuf(this.#txHead, 0);
      this.#txHead = -1;
      moved++;
      this.echoed++;
    }
    return moved;
  }
}
