import { VHOST_DEV_ANY_ID, type VhostDevice, type VhostDeviceId, type VhostDriver, type VhostVirtqueue } from '@x/vhost-core';
import { VringIov } from '@x/vring';

/** Options of {@link NtbEchoVhostDriver}. @public */
export interface NtbEchoVhostDriverOptions {
  /** Driver name. Default `ntb-echo`. */
  readonly name?: string;
  /** Ids it binds to. Default `{ vendor: ANY, device: 7 }`. */
  readonly id?: VhostDeviceId;
  /**
   * Features it offers. Default VERSION_1 (32) | EVENT_IDX (29) | INDIRECT_DESC (28) =
   * 0x1_3000_0000.
   */
  readonly features?: bigint;
  /** Sees each message the device received (before echoing). */
  readonly onMessage?: (bytes: Uint8Array) => void;
}

/**
 * A vhost echo device on two queues, as rpmsg uses them (the far end the virtio
 * conformance suite expects): queue 0 ("rx" of the virtio side) takes device-writable
 * buffers, queue 1 ("tx") device-readable ones; the bytes of each tx buffer come back,
 * in order, in the next rx buffer (truncated to its size). Counts what it received.
 *
 * @public
 */
export class NtbEchoVhostDriver implements VhostDriver {
  /** {@inheritDoc @x/vhost-core#VhostDriver.name} */
  readonly name: string;
  /** {@inheritDoc @x/vhost-core#VhostDriver.idTable} */
  readonly idTable: readonly VhostDeviceId[];
  /** {@inheritDoc @x/vhost-core#VhostDriver.features} */
  readonly features: bigint;
  /** Messages received on tx (all devices, all sessions). */
  received = 0;
  /** Messages echoed into rx. */
  echoed = 0;
  /** Probes so far (one per link session when the link flaps). */
  probes = 0;
  /** Errors a queue callback hit. */
  readonly errors: unknown[] = [];
  readonly #onMessage: ((bytes: Uint8Array) => void) | undefined;
  readonly #live = new Set<VhostDevice>();
  readonly #riov = new VringIov(64);
  readonly #wiov = new VringIov(64);

  constructor(options: NtbEchoVhostDriverOptions = {}) {
    this.name = options.name ?? 'ntb-echo';
    this.idTable = [options.id ?? { vendor: VHOST_DEV_ANY_ID, device: 7 }];
    this.features = options.features ?? 0x1_3000_0000n;
    this.#onMessage = options.onMessage;
  }

  /** {@inheritDoc @x/vhost-core#VhostDriver.probe} */
  async probe(dev: VhostDevice): Promise<void> {
    this.probes++;
    this.#live.add(dev);
    await dev.setFeatures(this.features);
    await dev.createVqs([
      // New rx buffers may unblock tx chains that waited for them.
      { name: 'rx', callback: () => dev.vqs[1] !== undefined && this.#onTx(dev, dev.vqs[1]) },
      { name: 'tx', callback: (vq) => this.#onTx(dev, vq) },
    ]);
  }

  /** {@inheritDoc @x/vhost-core#VhostDriver.remove} */
  async remove(dev: VhostDevice): Promise<void> {
    this.#live.delete(dev);
    await dev.delVqs();
  }

  /**
   * Echoes tx chains into rx chains, one for one: a tx chain is taken only when an rx
   * chain is there for its echo, so a tx buffer the driver sees used has been echoed.
   */
  #onTx(dev: VhostDevice, tx: VhostVirtqueue): void {
    const rx = dev.vqs[0];
    if (!this.#live.has(dev) || rx === undefined) return;
    try {
      for (;;) {
        tx.disableCb();
        rx.disableCb();
        let n = 0;
        let head: number;
        while (rx.hasAvail() && (head = tx.getInbuf(this.#riov)) >= 0) {
          const msg = new Uint8Array(this.#riov.totalLen);
          tx.pull(this.#riov, msg);
          this.received++;
          this.#onMessage?.(msg);
          const out = rx.getOutbuf(this.#wiov);
          if (out >= 0) {
            rx.putBuf(out, rx.push(this.#wiov, msg));
            this.echoed++;
          }
          tx.putBuf(head, 0);
          n++;
        }
        if (n > 0) {
          rx.notify();
          tx.notify();
        }
        // Wait for whichever side ran dry: re-enable both; loop only when both have work.
        const txEmpty = tx.enableCb();
        const rxEmpty = rx.enableCb();
        if (txEmpty || rxEmpty) return;
      }
    } catch (e) {
      this.errors.push(e);
    }
  }
}
