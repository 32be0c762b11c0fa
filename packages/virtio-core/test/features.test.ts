import { describe, expect, it } from 'vitest';
import {
  CORE_TRANSPORT_FEATURES,
  VIRTIO_CONFIG_S as S,
  VIRTIO_F,
  VirtioBus,
  VirtioDevice,
  bitsFromFeatures,
  featuresFromBits,
  isVirtioError,
  type VirtioConfigOps,
} from '@x/virtio-core';
import { recordingDriver, setup } from './helpers.js';

const ID = { device: 7, vendor: 0x1af4 };

describe('feature negotiation (§2.2, §3.1.1 step 4)', () => {
  it('accepts device ∩ (featureTable ∪ INDIRECT_DESC, EVENT_IDX, VERSION_1), bits above 32 included', async () => {
    // Offered: bit 0, bit 1, 28, 29, VERSION_1 (32), RING_PACKED (34), device bit 50.
    const offered = featuresFromBits([0, 1, 28, 29, 32, 34, 50]);
    const { bus, t, dev } = setup({ features: offered });
    await bus.registerDevice(dev);
    await bus.registerDriver(recordingDriver('d', [ID], { featureTable: [0, 50, 51] }));
    // Accepted: 0 (table), 28, 29, 32 (core), 50 (table); not 1 (not in the table),
    // not 34 (a transport bit core does not negotiate), not 51 (not offered).
    // 2^0 + 2^28 + 2^29 + 2^32 + 2^50 = 0x1 + 0x1000_0000 + 0x2000_0000 + 0x1_0000_0000 + 0x4_0000_0000_0000
    const expected = 0x4_0001_3000_0001n;
    expect(dev.features).toBe(expected);
    expect(t.model.driverFeatures).toBe(expected);
    expect(bitsFromFeatures(dev.features)).toEqual([0, 28, 29, 32, 50]);
    expect(dev.deviceFeatures).toBe(offered);
    expect(dev.hasFeature(50)).toBe(true);
    expect(dev.hasFeature(32)).toBe(true);
    expect(dev.hasFeature(51)).toBe(false);
    expect(dev.hasFeature(1)).toBe(false);
    expect(dev.hasFeature(34)).toBe(false);
    expect(() => dev.hasFeature(64)).toThrow(RangeError);
    expect(() => dev.hasFeature(1.5)).toThrow(RangeError);
    expect(dev.status).toBe(15);
  });

  it('the transport filter narrows the core transport bits and cannot widen them (Linux vring_transport_features)', async () => {
    const offered = featuresFromBits([28, 29, 32, 34]);
    const { bus, t, dev } = setup({ features: offered });
    const seen: bigint[] = [];
    // The filter drops EVENT_IDX and tries to add RING_PACKED (34).
    (t.ops as { transportFeatures?: (b: bigint) => bigint }).transportFeatures = (bits) => {
      seen.push(bits);
      return (bits & ~(1n << 29n)) | (1n << 34n);
    };
    await bus.registerDevice(dev);
    await bus.registerDriver(recordingDriver('d', [ID]));
    expect(seen).toEqual([CORE_TRANSPORT_FEATURES]);
    // 2^28 + 2^32 = 0x1_1000_0000
    expect(dev.features).toBe(0x1_1000_0000n);
  });

  it('FEATURES_OK refused by the device: FEATURES_NOT_ACCEPTED, FAILED set, driver not probed (§3.1.1 step 6)', async () => {
    const { bus, t, dev, kinds } = setup();
    t.model.refuseFeaturesOk = true;
    await bus.registerDevice(dev);
    const drv = recordingDriver('d', [ID]);
    await bus.registerDriver(drv);
    expect(drv.calls).toEqual([]);
    expect(dev.driver).toBeUndefined();
    expect(isVirtioError(dev.lastError, 'FEATURES_NOT_ACCEPTED')).toBe(true);
    // 0, 1, 3, 11 (FEATURES_OK, cleared by the device), then 3 | FAILED 128 = 131.
    expect(t.model.statusWrites).toEqual([0, 1, 3, 11, 131]);
    expect(dev.status).toBe(131);
    expect(kinds()).toEqual(['probe-failed:FEATURES_NOT_ACCEPTED']);
    // A later driver gets a freshly reset device.
    t.model.refuseFeaturesOk = false;
    await bus.unregisterDriver(drv);
    await bus.registerDriver(recordingDriver('d2', [ID]));
    expect(t.model.statusWrites.slice(5)).toEqual([0, 1, 3, 11, 15]);
    expect(dev.lastError).toBeUndefined();
  });

  it('a driver cannot accept a feature the device did not offer (FEATURES_NOT_OFFERED, §2.2.1)', async () => {
    const { bus, t, dev, kinds } = setup({ features: featuresFromBits([32, 3]) });
    await bus.registerDevice(dev);
    const drv = recordingDriver('d', [ID], {
      validate: (d) => {
        d.acceptFeature(3); // offered, not in the table: fine
        d.acceptFeature(5); // not offered
      },
    });
    await bus.registerDriver(drv);
    expect(kinds()).toEqual(['probe-failed:FEATURES_NOT_OFFERED']);
    expect(drv.calls).toEqual(['validate virtio0']);
    // Nothing unoffered ever reached the device: finalizeFeatures was never called.
    expect(t.model.driverFeatures).toBe(0n);
    expect(t.model.statusWrites).toEqual([0, 1, 3, 131]);
  });

  it('validate may drop features; outside validate features are frozen (BAD_STATE)', async () => {
    const { bus, t, dev } = setup();
    await bus.registerDevice(dev);
    await bus.registerDriver(
      recordingDriver('d', [ID], {
        validate: (d) => {
          expect(d.status).toBe(S.ACKNOWLEDGE | S.DRIVER);
          d.dropFeature(VIRTIO_F.EVENT_IDX);
          d.acceptFeature(VIRTIO_F.EVENT_IDX);
          d.dropFeature(VIRTIO_F.EVENT_IDX);
        },
        probe: (d) => {
          expect(() => d.dropFeature(VIRTIO_F.INDIRECT_DESC)).toThrow(/BAD_STATE/);
        },
      }),
    );
    expect(dev.lastError).toBeUndefined();
    expect(dev.hasFeature(VIRTIO_F.EVENT_IDX)).toBe(false);
    // 2^28 + 2^32 = 0x1_1000_0000
    expect(t.model.driverFeatures).toBe(0x1_1000_0000n);
    expect(() => dev.acceptFeature(VIRTIO_F.EVENT_IDX)).toThrow(/BAD_STATE/);
  });

  it('a transport answering a feature word out of range is a TRANSPORT error, not a silent truncation', async () => {
    const { bus, t, dev, kinds } = setup();
    (t.ops as { getFeatures: () => bigint }).getFeatures = () => 1n << 64n;
    await bus.registerDevice(dev);
    await bus.registerDriver(recordingDriver('d', [ID]));
    expect(kinds()).toEqual(['probe-failed:TRANSPORT']);
  });

  it('featureTable entries are checked at registration (bits 0..63, no unnegotiable transport bits)', async () => {
    const bus = new VirtioBus();
    const d = (featureTable: number[]) => recordingDriver('x', [ID], { featureTable });
    await expect(bus.registerDriver(d([64]))).rejects.toThrow(RangeError);
    await expect(bus.registerDriver(d([VIRTIO_F.RING_PACKED]))).rejects.toThrow(/featureTable\[0\] = 34/);
    await expect(bus.registerDriver(d([-1]))).rejects.toThrow(RangeError);
    await bus.registerDriver(d([0, VIRTIO_F.EVENT_IDX, 63]));
  });

  it('transport features narrowed by the driver reach the rings: findVqs gets eventIdx / indirect', async () => {
    const seen: unknown[] = [];
    const { bus, t, dev } = setup();
    const find = t.ops.findVqs.bind(t.ops);
    (t.ops as VirtioConfigOps & { findVqs: VirtioConfigOps['findVqs'] }).findVqs = (specs, ring) => {
      seen.push(ring);
      return find(specs, ring);
    };
    await bus.registerDevice(dev);
    await bus.registerDriver(
      recordingDriver('d', [ID], {
        validate: (x) => x.dropFeature(VIRTIO_F.INDIRECT_DESC),
        probe: async (x) => {
          const [q] = await x.findVqs([{ name: 'q' }]);
          expect(q!.eventIdx).toBe(true);
        },
      }),
    );
    expect(seen).toEqual([{ eventIdx: true, indirect: false }]);
  });
});

describe('VirtioDevice construction', () => {
  it('checks the id: device 0 is "no device" and ANY is not an identity', () => {
    const ops = {} as VirtioConfigOps;
    expect(() => new VirtioDevice({ id: { device: 0, vendor: 1 }, ops })).toThrow(RangeError);
    expect(() => new VirtioDevice({ id: { device: 0xffffffff, vendor: 1 }, ops })).toThrow(RangeError);
    expect(() => new VirtioDevice({ id: { device: 1, vendor: 2 ** 32 }, ops })).toThrow(/id.vendor/);
    expect(() => new VirtioDevice({ id: { device: 1, vendor: 1 }, ops: undefined as unknown as VirtioConfigOps })).toThrow(TypeError);
  });
});
