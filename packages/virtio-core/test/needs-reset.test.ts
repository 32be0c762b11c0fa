import { describe, expect, it } from 'vitest';
import { VIRTIO_CONFIG_S as S, VIRTIO_ID, isVirtioError, type VirtioDevice } from '@x/virtio-core';
import { VIRTQ_AVAIL, type Virtqueue } from '@x/vring';
import { recordingDriver, setup } from './helpers.js';

const RPMSG = { device: VIRTIO_ID.RPMSG, vendor: 0x1af4 };

describe('DEVICE_NEEDS_RESET (§2.1.2)', () => {
  it('on a config-change interrupt with NEEDS_RESET, core removes the driver, resets and probes again', async () => {
    const { bus, t, dev, kinds } = setup();
    const drv = recordingDriver('d', [RPMSG]);
    await bus.registerDriver(drv);
    await bus.registerDevice(dev);
    t.model.injectNeedsReset();
    await t.idle();
    await bus.settled();
    expect(drv.calls).toEqual(['probe virtio0', 'remove virtio0', 'probe virtio0']);
    expect(kinds()).toEqual(['probe', 'needs-reset', 'remove', 'probe']);
    // Register: 0, 1; probe: 3, 11, 15; recovery: reset 0, ACK 1, then 3, 11, 15.
    expect(t.model.statusWrites).toEqual([0, 1, 3, 11, 15, 0, 1, 3, 11, 15]);
    expect(t.model.status).toBe(15);
    expect(dev.status).toBe(15);
  });

  it('a device that keeps needing a reset is given up after maxNeedsResetRecoveries', async () => {
    const { bus, t, dev, kinds } = setup({}, { maxNeedsResetRecoveries: 2 });
    // Hostile: the device asks for a reset again as soon as it is running.
    const drv = recordingDriver('d', [RPMSG], { probe: async (d) => void (await d.ready(), t.model.injectNeedsReset()) });
    await bus.registerDriver(drv);
    await bus.registerDevice(dev);
    for (let i = 0; i < 10; i++) {
      await t.idle();
      await bus.settled();
    }
    expect(kinds()).toEqual(['probe', 'needs-reset', 'remove', 'probe', 'needs-reset', 'remove', 'probe', 'remove', 'error:NEEDS_RESET']);
    expect(dev.driver).toBeUndefined();
    expect(isVirtioError(dev.lastError, 'NEEDS_RESET')).toBe(true);
    // ACKNOWLEDGE 1 | FAILED 128 = 129.
    expect(dev.status).toBe(129);
  });

  it('NEEDS_RESET seen when FEATURES_OK is re-read fails the probe with NEEDS_RESET', async () => {
    const { bus, t, dev, kinds } = setup();
    await bus.registerDevice(dev);
    await bus.registerDriver(recordingDriver('d', [RPMSG], { validate: () => t.model.injectNeedsReset() }));
    expect(kinds()).toEqual(['probe-failed:NEEDS_RESET']);
    expect(dev.status & S.FAILED).toBe(S.FAILED);
  });

  it('a malformed ring makes the device ask for a reset; core recovers and the device works again', async () => {
    const { bus, t, dev, kinds } = setup({ echo: true });
    let tx: Virtqueue | undefined;
    let echoed = 0;
    const drv = recordingDriver('d', [RPMSG], {
      probe: async (d: VirtioDevice) => {
        const [rx, txq] = await d.findVqs([{ name: 'rx', callback: (q) => void (q.getBuf() !== undefined && echoed++) }, { name: 'tx' }]);
        const b = await d.allocBuffer(64);
        rx!.addInbuf(b.addr, 64, b);
        await d.ready();
        rx!.kick();
        tx = txq!;
      },
      remove: async (d) => {
        await d.reset();
        for (const q of d.vqs ?? []) while (q.detachUnusedBuf() !== undefined);
        await d.delVqs();
      },
    });
    await bus.registerDriver(drv);
    await bus.registerDevice(dev);
    // Scribble on the tx avail ring: head 999 on a queue of 256 (HEAD_OUT_OF_RANGE), idx 1.
    const { avail } = tx!.layout;
    t.memory.write16(avail + VIRTQ_AVAIL.RING, 999);
    t.memory.store16Release(avail + VIRTQ_AVAIL.IDX, 1);
    tx!.notify(); // the doorbell, as the driver would ring it
    await t.idle();
    await bus.settled();
    expect(kinds()).toEqual(['probe', 'needs-reset', 'remove', 'probe']);
    // The re-probed device echoes a real buffer.
    const q = t.vqs[1]!;
    const b = await dev.allocBuffer(8);
    q.addOutbuf(b.addr, 8, b);
    q.kick();
    await t.idle();
    expect(echoed).toBe(1);
  });
});
