import { describe, expect, it } from 'vitest';
import { VIRTIO_CONFIG_S as S } from '@x/virtio-core';
import { FAKE_REG, FakeVirtioTransport } from '@x/virtio-core/testing';

describe('FakeVirtioTransport: a virtio-mmio-shaped double (§4.2.2)', () => {
  it('register offsets are those of the virtio-mmio table', () => {
    expect(FAKE_REG).toEqual({
      MAGIC_VALUE: 0x000,
      VERSION: 0x004,
      DEVICE_ID: 0x008,
      VENDOR_ID: 0x00c,
      DEVICE_FEATURES: 0x010,
      DEVICE_FEATURES_SEL: 0x014,
      DRIVER_FEATURES: 0x020,
      DRIVER_FEATURES_SEL: 0x024,
      QUEUE_SEL: 0x030,
      QUEUE_NUM_MAX: 0x034,
      QUEUE_NUM: 0x038,
      QUEUE_READY: 0x044,
      QUEUE_NOTIFY: 0x050,
      INTERRUPT_STATUS: 0x060,
      INTERRUPT_ACK: 0x064,
      STATUS: 0x070,
      QUEUE_DESC_LOW: 0x080,
      QUEUE_DESC_HIGH: 0x084,
      QUEUE_DRIVER_LOW: 0x090,
      QUEUE_DRIVER_HIGH: 0x094,
      QUEUE_DEVICE_LOW: 0x0a0,
      QUEUE_DEVICE_HIGH: 0x0a4,
      CONFIG_GENERATION: 0x0fc,
      CONFIG: 0x100,
    });
  });

  it('identifies itself like virtio-mmio: "virt", version 2, device and vendor IDs', () => {
    const t = new FakeVirtioTransport({ id: { device: 7, vendor: 0x1234 } });
    // "virt" as little-endian bytes 76 69 72 74 → u32 0x74726976.
    expect(t.model.read32(FAKE_REG.MAGIC_VALUE)).toBe(0x74726976);
    expect(t.model.read32(FAKE_REG.VERSION)).toBe(2);
    expect(t.model.read32(FAKE_REG.DEVICE_ID)).toBe(7);
    expect(t.model.read32(FAKE_REG.VENDOR_ID)).toBe(0x1234);
  });

  it('carries 64 feature bits in two selected words, and clears FEATURES_OK for unoffered bits (§3.1.1 step 6)', async () => {
    // Offered 2^63 + 2^32 + 1 = 0x8000_0001_0000_0001.
    const t = new FakeVirtioTransport({ features: 0x8000_0001_0000_0001n, asyncOps: false });
    expect(await t.ops.getFeatures()).toBe(0x8000_0001_0000_0001n);
    await t.ops.setStatus(S.ACKNOWLEDGE);
    await t.ops.setStatus(S.ACKNOWLEDGE | S.DRIVER);
    await t.ops.finalizeFeatures(0x8000_0001_0000_0003n); // bit 1 was not offered
    await t.ops.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    expect(await t.ops.getStatus()).toBe(S.ACKNOWLEDGE | S.DRIVER);
    await t.ops.reset();
    expect(await t.ops.getStatus()).toBe(0);
    expect(t.model.driverFeatures).toBe(0n);
  });

  it('injected faults: an op hangs or throws', async () => {
    const t = new FakeVirtioTransport();
    t.fault('getStatus', 'throw');
    await expect(t.ops.getStatus()).rejects.toThrow(/injected fault in getStatus/);
    t.fault('getStatus', undefined);
    expect(await t.ops.getStatus()).toBe(0);
  });
});
