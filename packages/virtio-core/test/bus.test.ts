import { describe, expect, it } from 'vitest';
import {
  VIRTIO_CONFIG_S as S,
  VIRTIO_DEV_ANY_ID as ANY,
  VIRTIO_ID,
  VirtioBus,
  isVirtioError,
  virtioIdMatch,
  type VirtioDevice,
} from '@x/virtio-core';
import { FakeVirtioTransport } from '@x/virtio-core/testing';
import { recordingDriver, setup } from './helpers.js';

const RPMSG = { device: VIRTIO_ID.RPMSG, vendor: 0x1af4 };

describe('id matching (Linux virtio_id_match)', () => {
  it('device equal or ANY, and vendor equal or ANY', () => {
    const dev = { device: 7, vendor: 0x1af4 };
    expect(virtioIdMatch({ device: 7, vendor: 0x1af4 }, dev)).toBe(true);
    expect(virtioIdMatch({ device: 7, vendor: ANY }, dev)).toBe(true);
    expect(virtioIdMatch({ device: ANY, vendor: 0x1af4 }, dev)).toBe(true);
    expect(virtioIdMatch({ device: ANY, vendor: ANY }, dev)).toBe(true);
    expect(virtioIdMatch({ device: 1, vendor: ANY }, dev)).toBe(false);
    expect(virtioIdMatch({ device: 7, vendor: 0x1af5 }, dev)).toBe(false);
    expect(virtioIdMatch({ device: ANY, vendor: 0x1af5 }, dev)).toBe(false);
    // VIRTIO_DEV_ANY_ID = 0xffffffff (mod_devicetable.h).
    expect(ANY).toBe(0xffffffff);
  });

  it('the bus binds only matching drivers, the first registered one first', async () => {
    const { bus, dev } = setup();
    const net = recordingDriver('net', [{ device: VIRTIO_ID.NET, vendor: ANY }]);
    const otherVendor = recordingDriver('vendor', [{ device: ANY, vendor: 0x1234 }]);
    const any = recordingDriver('any', [{ device: ANY, vendor: ANY }]);
    const exact = recordingDriver('exact', [RPMSG]);
    for (const d of [net, otherVendor, any, exact]) await bus.registerDriver(d);
    await bus.registerDevice(dev);
    expect(dev.driver).toBe(any);
    expect(net.calls).toEqual([]);
    expect(otherVendor.calls).toEqual([]);
    expect(exact.calls).toEqual([]);
  });
});

describe('registration in any order, removal on either side (Linux driver core)', () => {
  it('device first, then driver: probe on driver registration', async () => {
    const { bus, dev, kinds } = setup();
    await bus.registerDevice(dev);
    expect(dev.driver).toBeUndefined();
    expect(dev.status).toBe(S.ACKNOWLEDGE);
    const drv = recordingDriver('d', [RPMSG]);
    await bus.registerDriver(drv);
    expect(drv.calls).toEqual(['probe virtio0']);
    expect(dev.driver).toBe(drv);
    expect(kinds()).toEqual(['probe']);
  });

  it('driver first, then device: probe on device registration', async () => {
    const { bus, dev } = setup();
    const drv = recordingDriver('d', [RPMSG]);
    await bus.registerDriver(drv);
    await bus.registerDevice(dev);
    expect(drv.calls).toEqual(['probe virtio0']);
    expect(dev.status).toBe(15);
  });

  it('unregistering the driver removes it, resets the device and re-acknowledges it', async () => {
    const { bus, t, dev, kinds } = setup();
    const drv = recordingDriver('d', [RPMSG]);
    await bus.registerDriver(drv);
    await bus.registerDevice(dev);
    await bus.unregisterDriver(drv);
    expect(drv.calls).toEqual(['probe virtio0', 'remove virtio0']);
    expect(dev.driver).toBeUndefined();
    // The driver did not reset: core did (0), then ACKNOWLEDGE (1) as Linux virtio_dev_remove.
    expect(t.model.statusWrites).toEqual([0, 1, 3, 11, 15, 0, 1]);
    expect(kinds()).toEqual(['probe', 'remove']);
    expect(bus.drivers).toEqual([]);
    // The device stays registered and binds the next matching driver.
    const again = recordingDriver('again', [RPMSG]);
    await bus.registerDriver(again);
    expect(dev.driver).toBe(again);
  });

  it('unregistering the device removes the driver and leaves the device reset', async () => {
    const { bus, t, dev } = setup();
    const drv = recordingDriver('d', [RPMSG]);
    await bus.registerDriver(drv);
    await bus.registerDevice(dev);
    await bus.unregisterDevice(dev);
    expect(drv.calls).toEqual(['probe virtio0', 'remove virtio0']);
    expect(t.model.statusWrites.at(-1)).toBe(0);
    expect(t.model.status).toBe(0);
    expect(bus.devices).toEqual([]);
    expect(dev.index).toBe(-1);
    await expect(bus.unregisterDevice(dev)).rejects.toSatisfy((e) => isVirtioError(e, 'NOT_REGISTERED'));
    // It can be registered again.
    await bus.registerDevice(dev);
    expect(drv.calls).toEqual(['probe virtio0', 'remove virtio0', 'probe virtio0']);
  });

  it('devices are named virtio<index> with the lowest free index (Linux ida)', async () => {
    const bus = new VirtioBus();
    const devs: VirtioDevice[] = [];
    for (let i = 0; i < 3; i++) devs.push(await bus.registerDevice(new FakeVirtioTransport().createDevice()));
    expect(devs.map((d) => d.name)).toEqual(['virtio0', 'virtio1', 'virtio2']);
    await bus.unregisterDevice(devs[1]!);
    const d = await bus.registerDevice(new FakeVirtioTransport().createDevice());
    expect(d.name).toBe('virtio1');
    expect(new FakeVirtioTransport().createDevice('named').name).toBe('named');
  });

  it('refuses double registration and unknown unregistration', async () => {
    const { bus, dev } = setup();
    await bus.registerDevice(dev);
    await expect(bus.registerDevice(dev)).rejects.toSatisfy((e) => isVirtioError(e, 'ALREADY_REGISTERED'));
    await expect(new VirtioBus().registerDevice(dev)).rejects.toSatisfy((e) => isVirtioError(e, 'ALREADY_REGISTERED'));
    const drv = recordingDriver('d', [RPMSG]);
    await bus.registerDriver(drv);
    await expect(bus.registerDriver(drv)).rejects.toSatisfy((e) => isVirtioError(e, 'ALREADY_REGISTERED'));
    await expect(bus.registerDriver(recordingDriver('d', [RPMSG]))).rejects.toSatisfy((e) => isVirtioError(e, 'ALREADY_REGISTERED'));
    await expect(bus.unregisterDriver(recordingDriver('x', []))).rejects.toSatisfy((e) => isVirtioError(e, 'NOT_REGISTERED'));
    await expect(bus.registerDevice({} as VirtioDevice)).rejects.toThrow(TypeError);
  });

  it('checks drivers at registration, naming the field', async () => {
    const bus = new VirtioBus();
    const ok = recordingDriver('d', [RPMSG]);
    await expect(bus.registerDriver({ ...ok, name: '' })).rejects.toThrow(/driver.name/);
    await expect(bus.registerDriver({ ...ok, idTable: [{ device: -1, vendor: 0 }] })).rejects.toThrow(/idTable\[0\].device/);
    await expect(bus.registerDriver({ ...ok, probe: undefined as never })).rejects.toThrow(/driver.probe/);
    await expect(bus.registerDriver({ ...ok, configChanged: 3 as never })).rejects.toThrow(/driver.configChanged/);
  });

  it('checks bus options', () => {
    expect(() => new VirtioBus({ opTimeoutMs: -1 })).toThrow(/opTimeoutMs/);
    expect(() => new VirtioBus({ configReadRetries: 0 })).toThrow(/configReadRetries/);
  });
});

describe('probe failure and the driver error path (Linux virtio_dev_probe)', () => {
  it('a driver whose probe throws leaves the device FAILED and unbound, its queues and buffers released', async () => {
    const { bus, t, dev, kinds } = setup();
    const drv = recordingDriver('d', [RPMSG], {
      probe: async (d) => {
        await d.findVqs([{ name: 'a' }, { name: 'b' }]);
        await d.allocBuffer(100);
        throw new Error('no thanks');
      },
    });
    await bus.registerDevice(dev);
    await bus.registerDriver(drv);
    expect(dev.driver).toBeUndefined();
    expect(isVirtioError(dev.lastError, 'DRIVER_ERROR')).toBe(true);
    expect((dev.lastError!.cause as Error).message).toBe('no thanks');
    // 11 | FAILED 128 = 139.
    expect(dev.status).toBe(139);
    expect(dev.vqs).toBeUndefined();
    expect(t.vqs).toEqual([]);
    expect(kinds()).toEqual(['probe-failed:DRIVER_ERROR']);
    // The fallback pool is whole again: the whole 1 MiB region can be taken in one piece.
    await bus.unregisterDriver(drv);
    const big = recordingDriver('big', [RPMSG], { probe: async (d) => void (await d.allocBuffer(t.dmaSize)) });
    await bus.registerDriver(big);
    expect(dev.lastError).toBeUndefined();
  });

  it('a driver that sets DRIVER_OK itself is not set twice (virtio_device_ready)', async () => {
    const { bus, t, dev } = setup();
    await bus.registerDevice(dev);
    await bus.registerDriver(
      recordingDriver('d', [RPMSG], {
        probe: async (d) => {
          await d.findVqs([{ name: 'q' }]);
          await d.ready();
          // After DRIVER_OK no queue may be added (§3.1.1 step 7 precedes step 8).
          await expect(d.findVqs([{ name: 'q' }])).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATE'));
          await expect(d.delVqs()).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATE'));
        },
      }),
    );
    expect(dev.lastError).toBeUndefined();
    expect(t.model.statusWrites).toEqual([0, 1, 3, 11, 15]);
  });

  it('findVqs twice, or with bad specs, is refused', async () => {
    const { bus, dev } = setup();
    await bus.registerDevice(dev);
    await bus.registerDriver(
      recordingDriver('d', [RPMSG], {
        probe: async (d) => {
          await expect(d.findVqs([])).rejects.toThrow(RangeError);
          await expect(d.findVqs([{ name: 'q', size: 3 }])).rejects.toThrow(/specs\[0\].size/);
          await expect(d.findVqs([{ name: 1 as never }])).rejects.toThrow(TypeError);
          await expect(d.findVqs([{ name: 'a' }, { name: 'b' }, { name: 'c' }])).rejects.toSatisfy((e) => isVirtioError(e, 'TRANSPORT'));
          await d.findVqs([{ name: 'q', size: 16 }]);
          await expect(d.findVqs([{ name: 'q' }])).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATE'));
        },
      }),
    );
    expect(dev.lastError).toBeUndefined();
    expect(dev.vqs![0]!.num).toBe(16);
  });

  it('a throwing queue callback is reported, not thrown into the transport', async () => {
    const { bus, t, dev, kinds } = setup({ echo: true });
    await bus.registerDevice(dev);
    await bus.registerDriver(
      recordingDriver('d', [RPMSG], {
        probe: async (d) => {
          const [rx, tx] = await d.findVqs([
            {
              name: 'rx',
              callback: () => {
                throw new Error('boom');
              },
            },
            { name: 'tx' },
          ]);
          const a = await d.allocBuffer(16);
          const b = await d.allocBuffer(16);
          rx!.addInbuf(a.addr, 16, a);
          await d.ready();
          rx!.kick();
          tx!.addOutbuf(b.addr, 16, b);
          tx!.kick();
        },
      }),
    );
    await t.idle();
    // The echo may come back while probe is still finishing: order is not the point.
    expect(kinds().sort()).toEqual(['error:DRIVER_ERROR', 'probe']);
  });
});

describe('transport faults', () => {
  it('an op that never answers is a TIMEOUT, and its timer is cleaned up', async () => {
    const { bus, t, dev } = setup({}, { opTimeoutMs: 20 });
    t.fault('reset', 'hang');
    await expect(bus.registerDevice(dev)).rejects.toSatisfy((e) => isVirtioError(e, 'TIMEOUT'));
    expect(bus.devices).toEqual([]);
    expect(dev.index).toBe(-1);
  });

  it('an op that throws is a TRANSPORT error with the cause; the probe fails with FAILED set', async () => {
    const { bus, t, dev, events } = setup();
    await bus.registerDevice(dev);
    t.fault('getFeatures', 'throw');
    await bus.registerDriver(recordingDriver('d', [RPMSG]));
    const e = events[0]!;
    expect(e.type).toBe('probe-failed');
    if (e.type === 'probe-failed') {
      expect(e.error.code).toBe('TRANSPORT');
      expect((e.error.cause as Error).message).toBe('injected fault in getFeatures');
    }
    expect(dev.status).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FAILED);
  });
});
