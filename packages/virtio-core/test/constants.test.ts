import { describe, expect, it } from 'vitest';
import {
  CORE_TRANSPORT_FEATURES,
  VIRTIO_BUFFER_ALIGN,
  VIRTIO_CONFIG_S,
  VIRTIO_DEV_ANY_ID,
  VIRTIO_F,
  VIRTIO_ID,
  VIRTIO_TRANSPORT_F,
  bitsFromFeatures,
  featuresFromBits,
  isVirtioError,
  VirtioError,
} from '@x/virtio-core';

describe('constants, checked against the spec text', () => {
  it('device status bits (§2.1)', () => {
    expect(VIRTIO_CONFIG_S).toEqual({ ACKNOWLEDGE: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8, NEEDS_RESET: 64, FAILED: 128 });
  });

  it('reserved feature bits (§6, 1.3: transport range 24-41)', () => {
    expect(VIRTIO_F).toEqual({
      NOTIFY_ON_EMPTY: 24,
      ANY_LAYOUT: 27,
      INDIRECT_DESC: 28,
      EVENT_IDX: 29,
      VERSION_1: 32,
      ACCESS_PLATFORM: 33,
      RING_PACKED: 34,
      IN_ORDER: 35,
      ORDER_PLATFORM: 36,
      SR_IOV: 37,
      NOTIFICATION_DATA: 38,
      NOTIF_CONFIG_DATA: 39,
      RING_RESET: 40,
      ADMIN_VQ: 41,
    });
    expect(VIRTIO_TRANSPORT_F).toEqual({ START: 24, END: 42 });
  });

  it('device IDs of the §5 table', () => {
    const spec: Array<[keyof typeof VIRTIO_ID, number]> = [
      ['NET', 1], ['BLOCK', 2], ['CONSOLE', 3], ['RNG', 4], ['BALLOON', 5], ['RPMSG', 7], ['9P', 9],
      ['RPROC_SERIAL', 11], ['GPU', 16], ['INPUT', 18], ['VSOCK', 19], ['CRYPTO', 20], ['FS', 26],
      ['SCMI', 32], ['I2C_ADAPTER', 34],
    ];
    for (const [name, id] of spec) expect(VIRTIO_ID[name], name).toBe(id);
  });

  it('VIRTIO_DEV_ANY_ID, the core transport bits and the buffer alignment', () => {
    expect(VIRTIO_DEV_ANY_ID).toBe(0xffffffff);
    // 2^28 + 2^29 + 2^32 = 0x1000_0000 + 0x2000_0000 + 0x1_0000_0000.
    expect(CORE_TRANSPORT_FEATURES).toBe(0x1_3000_0000n);
    // The descriptor table's alignment (§2.7): 16.
    expect(VIRTIO_BUFFER_ALIGN).toBe(16);
  });

  it('feature masks and bit lists convert both ways, 64 bits wide', () => {
    // 2^0 + 2^32 + 2^63 = 0x8000_0001_0000_0001
    expect(featuresFromBits([0, 32, 63])).toBe(0x8000_0001_0000_0001n);
    expect(bitsFromFeatures(0x8000_0001_0000_0001n)).toEqual([0, 32, 63]);
    expect(() => featuresFromBits([64])).toThrow(RangeError);
    expect(() => bitsFromFeatures(1n << 64n)).toThrow(RangeError);
    expect(() => bitsFromFeatures(1 as unknown as bigint)).toThrow(TypeError);
  });

  it('VirtioError: code, cause, and a structural guard', () => {
    const cause = new Error('x');
    const e = new VirtioError('TIMEOUT', 'late', { cause });
    expect(e.message).toBe('TIMEOUT: late');
    expect(e.cause).toBe(cause);
    expect(isVirtioError(e)).toBe(true);
    expect(isVirtioError(e, 'TIMEOUT')).toBe(true);
    expect(isVirtioError(e, 'TRANSPORT')).toBe(false);
    expect(isVirtioError({ name: 'VirtioError', code: 'TIMEOUT' }, 'TIMEOUT')).toBe(true);
    expect(isVirtioError(new Error('TIMEOUT'))).toBe(false);
  });
});
