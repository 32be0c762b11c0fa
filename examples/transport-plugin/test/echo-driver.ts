// The far end the virtio conformance suite wants (`echo: true`), written as a vhost
// driver: queue 0 carries device-writable buffers to the RC, queue 1 device-readable
// ones from it; each buffer from the RC comes back in the next buffer to it.
import { VringIov } from '@x/vring';
import { VHOST_DEV_ANY_ID, VHOST_NOTIFY, type VhostDevice, type VhostDriver, type VhostEventInfo, type VhostVirtqueue } from '@x/vhost-core';

export class EchoVhostDriver implements VhostDriver {
  readonly name = 'plugin-echo';
  readonly idTable;
  /** VERSION_1 (32) | EVENT_IDX (29) | INDIRECT_DESC (28) = 0x1_3000_0000. */
  readonly features = 0x1_3000_0000n;
  error: unknown;
  #head = -1;
  readonly #riov = new VringIov(64);
  readonly #wiov = new VringIov(64);
  readonly #buf = new Uint8Array(4096);

  constructor(deviceId: number) {
    this.idTable = [{ vendor: VHOST_DEV_ANY_ID, device: deviceId }];
  }

  async probe(dev: VhostDevice): Promise<void> {
    await dev.setFeatures(this.features);
    const pump = (): void => this.#pump(dev.vqs[0]!, dev.vqs[1]!);
    await dev.createVqs([
      { name: 'to-rc', callback: pump },
      { name: 'from-rc', callback: pump },
    ]);
  }

  remove(dev: VhostDevice): Promise<void> {
    return dev.delVqs();
  }

  event(_dev: VhostDevice, info: VhostEventInfo): void {
    if (info.event === VHOST_NOTIFY.RESET) this.#head = -1; // a chain of the old ring
  }

  #pump(to: VhostVirtqueue, from: VhostVirtqueue): void {
    try {
      for (let round = 0; round < 64; round++) {
        from.disableCb();
        to.disableCb();
        let moved = 0;
        for (;;) {
          if (this.#head < 0 && (this.#head = from.getInbuf(this.#riov)) < 0) break;
          const out = to.getOutbuf(this.#wiov);
          if (out < 0) break;
          let len = 0;
          for (let n; (n = from.pull(this.#riov, this.#buf)) > 0; ) {
            const m = to.push(this.#wiov, this.#buf, 0, n);
            len += m;
            if (m < n) break;
          }
          to.putBuf(out, len);
          from.putBuf(this.#head, 0);
          this.#head = -1;
          moved++;
        }
        if (moved > 0) {
          to.notify();
          from.notify();
        }
        const fromEmpty = from.enableCb();
        const toEmpty = to.enableCb();
        if ((this.#head < 0 && fromEmpty) || toEmpty) return;
      }
      setImmediate(() => this.#pump(to, from)); // bounded work per kick
    } catch (e) {
      this.error = e;
    }
  }
}
