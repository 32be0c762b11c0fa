import { describe, expect, it } from 'vitest';
import {
  LOOPBACK_CONFIG_MAX,
  LOOPBACK_DOORBELL,
  LOOPBACK_MAX_QUEUES,
  LOOPBACK_REGS_SIZE,
  VIRTIO_MMIO,
  VIRTIO_MMIO_INT,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION,
  createLoopbackLink,
} from '@x/transport-loopback';

describe('register block layout (VIRTIO 1.2 §4.2.2, Linux include/uapi/linux/virtio_mmio.h)', () => {
  it('§4.2.2: every register offset of the non-legacy interface', () => {
    // The table of §4.2.2, typed in from the spec (offsets in bytes).
    expect(VIRTIO_MMIO).toEqual({
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
    // Every register is a naturally aligned 32-bit word, and none overlaps another.
    const offs = Object.values(VIRTIO_MMIO);
    for (const o of offs) expect(o % 4).toBe(0);
    expect(new Set(offs).size).toBe(offs.length);
  });

  it('§4.2.2: MagicValue is "virt" as a little-endian u32; Version 2; interrupt bits 0 and 1', () => {
    // 'v' 0x76, 'i' 0x69, 'r' 0x72, 't' 0x74 at increasing addresses; read LE: 0x74726976.
    const bytes = new TextEncoder().encode('virt');
    expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(VIRTIO_MMIO_MAGIC);
    expect(VIRTIO_MMIO_MAGIC).toBe(0x74726976);
    expect(VIRTIO_MMIO_VERSION).toBe(2);
    expect(VIRTIO_MMIO_INT).toEqual({ VRING: 1, CONFIG: 2 });
  });

  it('the register block: page 0 virtio-mmio with config space to its end, page 1 the doorbell page', () => {
    expect(LOOPBACK_REGS_SIZE).toBe(0x2000);
    expect(LOOPBACK_DOORBELL.PAGE).toBe(0x1000);
    // Config space 0x100..0xfff: 0x1000 − 0x100 = 3840 bytes.
    expect(LOOPBACK_CONFIG_MAX).toBe(3840);
    // 32 kick words from word 16 and 32 kick-seen words from word 48 end at word 80,
    // byte 0x1000 + 80 × 4 = 0x1140, inside page 1.
    expect(LOOPBACK_DOORBELL.KICK + LOOPBACK_MAX_QUEUES).toBe(LOOPBACK_DOORBELL.KICK_SEEN);
    expect(LOOPBACK_DOORBELL.PAGE + (LOOPBACK_DOORBELL.KICK_SEEN + LOOPBACK_MAX_QUEUES) * 4).toBeLessThanOrEqual(LOOPBACK_REGS_SIZE);
    const words = [
      LOOPBACK_DOORBELL.DEVICE,
      LOOPBACK_DOORBELL.REG_SEQ,
      LOOPBACK_DOORBELL.REG_OFFSET,
      LOOPBACK_DOORBELL.REG_ACK,
      LOOPBACK_DOORBELL.IRQ,
      LOOPBACK_DOORBELL.DRIVER_ATTACHED,
      LOOPBACK_DOORBELL.DEVICE_ATTACHED,
      LOOPBACK_DOORBELL.PRESENCE,
    ];
    expect(new Set(words).size).toBe(words.length);
    for (const w of words) expect(w).toBeLessThan(LOOPBACK_DOORBELL.KICK);
  });
});

describe('createLoopbackLink: argument checks name the argument', () => {
  it('defaults: 1 MiB memory at 0x4000_0000, 8 queues, 256 bytes of config, vendor 0x1af4, all registers zero', () => {
    const link = createLoopbackLink({ deviceId: 7 });
    expect(link.memory.byteLength).toBe(1 << 20);
    expect(link.regs.byteLength).toBe(LOOPBACK_REGS_SIZE);
    expect(link).toMatchObject({ driverBase: 0x4000_0000, maxQueues: 8, configSize: 256, deviceId: 7, vendorId: 0x1af4 });
    expect(new Uint8Array(link.regs).every((b) => b === 0)).toBe(true);
    // Plain data: a worker gets it by structured clone.
    const copy = structuredClone(link);
    expect(copy.regs).toBeInstanceOf(SharedArrayBuffer);
    expect(copy.deviceId).toBe(7);
  });

  it('TypeError for a wrong type, RangeError for a wrong value', () => {
    expect(() => createLoopbackLink(undefined as never)).toThrow(TypeError);
    expect(() => createLoopbackLink({ deviceId: '7' as never })).toThrow(/options\.deviceId must be a number/);
    expect(() => createLoopbackLink({ deviceId: 0 })).toThrow(RangeError);
    expect(() => createLoopbackLink({ deviceId: 7, memorySize: 5000 })).toThrow(/options\.memorySize must be a multiple of 4096/);
    expect(() => createLoopbackLink({ deviceId: 7, maxQueues: 33 })).toThrow(/options\.maxQueues must be an integer in 1\.\.32/);
    expect(() => createLoopbackLink({ deviceId: 7, configSize: 3841 })).toThrow(/options\.configSize/);
    expect(() => createLoopbackLink({ deviceId: 7, driverBase: 0x123 })).toThrow(/options\.driverBase must be a multiple of 4096/);
  });
});
