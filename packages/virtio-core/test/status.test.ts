import { describe, expect, it } from 'vitest';
import { VIRTIO_CONFIG_S as S, VIRTIO_ID, checkStatusTransition, isVirtioError } from '@x/virtio-core';
import { recordingDriver, setup } from './helpers.js';

// Status bits (§2.1): ACKNOWLEDGE 1, DRIVER 2, DRIVER_OK 4, FEATURES_OK 8,
// DEVICE_NEEDS_RESET 64, FAILED 128. The states the §3.1.1 sequence passes through are
// 0, 1, 1+2 = 3, 3+8 = 11 (0x0b), 11+4 = 15 (0x0f), and each of them with FAILED
// (+128): 0x80, 0x81, 0x83, 0x8b, 0x8f. For each, the writes that are legal, worked out
// by hand from §2.1.1 / §3.1.1 (reset 0 and "the same value" are always legal; one new
// bit in order; FAILED from anywhere; nothing but a reset once FAILED is set):
const LEGAL: ReadonlyArray<readonly [from: number, to: readonly number[]]> = [
  [0x00, [0x00, 0x01, 0x80]],
  [0x01, [0x00, 0x01, 0x03, 0x81]],
  [0x03, [0x00, 0x03, 0x0b, 0x83]],
  [0x0b, [0x00, 0x0b, 0x0f, 0x8b]],
  [0x0f, [0x00, 0x0f, 0x8f]],
  [0x80, [0x00, 0x80]],
  [0x81, [0x00, 0x81]],
  [0x83, [0x00, 0x83]],
  [0x8b, [0x00, 0x8b]],
  [0x8f, [0x00, 0x8f]],
];

function outcome(from: number, to: number): 'ok' | string {
  try {
    checkStatusTransition(from, to);
    return 'ok';
  } catch (e) {
    if (!isVirtioError(e)) throw e;
    return e.code;
  }
}

describe('checkStatusTransition: every write from every state of §3.1.1', () => {
  for (const [from, legal] of LEGAL) {
    it(`from 0x${from.toString(16).padStart(2, '0')}: exactly ${legal.map((v) => '0x' + v.toString(16)).join(', ')} are legal (§2.1.1, §3.1.1)`, () => {
      for (let to = 0; to < 256; to++) {
        const got = outcome(from, to);
        if (legal.includes(to)) expect(got, `0x${from.toString(16)} -> 0x${to.toString(16)}`).toBe('ok');
        else expect(['BAD_STATUS_TRANSITION', 'DEVICE_FAILED'], `0x${from.toString(16)} -> 0x${to.toString(16)}`).toContain(got);
      }
    });
  }

  it('names the broken rule: order, clearing, device-only and reserved bits, FAILED (§2.1, §3.1.1)', () => {
    expect(outcome(0x00, 0x02)).toBe('BAD_STATUS_TRANSITION'); // DRIVER without ACKNOWLEDGE (step 3)
    expect(outcome(0x00, 0x03)).toBe('BAD_STATUS_TRANSITION'); // two steps in one write
    expect(outcome(0x01, 0x09)).toBe('BAD_STATUS_TRANSITION'); // FEATURES_OK before DRIVER (step 5)
    expect(outcome(0x03, 0x07)).toBe('BAD_STATUS_TRANSITION'); // DRIVER_OK before FEATURES_OK (step 8)
    expect(outcome(0x0f, 0x0b)).toBe('BAD_STATUS_TRANSITION'); // clears DRIVER_OK without a reset
    expect(outcome(0x03, 0x01)).toBe('BAD_STATUS_TRANSITION'); // clears DRIVER
    expect(outcome(0x0f, 0x4f)).toBe('BAD_STATUS_TRANSITION'); // DEVICE_NEEDS_RESET is device-only (§2.1.2)
    expect(outcome(0x00, 0x10)).toBe('BAD_STATUS_TRANSITION'); // 16 = SUSPEND, VIRTIO 1.4 only
    expect(outcome(0x00, 0x20)).toBe('BAD_STATUS_TRANSITION'); // 32 is unassigned
    expect(outcome(0x81, 0x83)).toBe('DEVICE_FAILED'); // FAILED: only a reset
    expect(outcome(0x8f, 0x00)).toBe('ok');
  });

  it('checks its arguments (RangeError / TypeError naming them)', () => {
    expect(() => checkStatusTransition(0, 256)).toThrow(RangeError);
    expect(() => checkStatusTransition(-1, 0)).toThrow(/from/);
    expect(() => checkStatusTransition(0, '1' as unknown as number)).toThrow(TypeError);
  });
});

describe('the status machine in core (VirtioDevice.addStatus, §3.1.1)', () => {
  it('the bus writes 0, 1, 3, 11, 15: reset, ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK (§3.1.1 steps 1-8)', async () => {
    const { bus, t, dev } = setup();
    await bus.registerDevice(dev);
    // register_virtio_device: reset (0), ACKNOWLEDGE (1).
    expect(t.model.statusWrites).toEqual([0, 1]);
    await bus.registerDriver(recordingDriver('d', [{ device: VIRTIO_ID.RPMSG, vendor: 0x1af4 }]));
    // 1 | DRIVER 2 = 3; 3 | FEATURES_OK 8 = 11; 11 | DRIVER_OK 4 = 15.
    expect(t.model.statusWrites).toEqual([0, 1, 3, 11, 15]);
    expect(dev.status).toBe(15);
    expect(t.model.status).toBe(15);
  });

  it('refuses illegal steps before they reach the transport; FAILED then admits only a reset', async () => {
    const { bus, t, dev } = setup();
    await bus.registerDevice(dev);
    const writes = (): number[] => t.model.statusWrites.slice(2);
    await expect(dev.addStatus(S.DRIVER_OK)).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATUS_TRANSITION'));
    await expect(dev.addStatus(S.FEATURES_OK)).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATUS_TRANSITION'));
    await dev.addStatus(S.DRIVER);
    // FEATURES_OK needs the features written first (§3.1.1 step 4 before 5).
    await expect(dev.addStatus(S.FEATURES_OK)).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATUS_TRANSITION'));
    await expect(dev.addStatus(S.NEEDS_RESET)).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATUS_TRANSITION'));
    await expect(dev.addStatus(16)).rejects.toThrow(RangeError);
    await dev.addStatus(S.DRIVER); // the same value again: a no-op, nothing written
    expect(writes()).toEqual([3]);
    await dev.addStatus(S.FAILED);
    expect(writes()).toEqual([3, 0x83]);
    await expect(dev.addStatus(S.DRIVER_OK)).rejects.toSatisfy((e) => isVirtioError(e, 'DEVICE_FAILED'));
    await expect(dev.findVqs([{ name: 'q' }])).rejects.toSatisfy((e) => isVirtioError(e, 'DEVICE_FAILED'));
    await dev.reset();
    expect(dev.status).toBe(0);
    expect(writes()).toEqual([3, 0x83, 0]);
    await dev.addStatus(S.ACKNOWLEDGE);
    expect(writes()).toEqual([3, 0x83, 0, 1]);
  });

  it('refuses to reach a device that is not registered', async () => {
    const { dev } = setup();
    await expect(dev.addStatus(S.ACKNOWLEDGE)).rejects.toSatisfy((e) => isVirtioError(e, 'NOT_REGISTERED'));
    await expect(dev.readConfig(0, 1)).rejects.toSatisfy((e) => isVirtioError(e, 'NOT_REGISTERED'));
  });

  it('checks that reset really reads 0 (the RFC endpoint never cleared its status)', async () => {
    const { bus, t, dev } = setup();
    await bus.registerDevice(dev);
    // A transport whose reset does nothing: the device keeps ACKNOWLEDGE.
    (t.ops as { reset: () => void }).reset = () => undefined;
    await expect(dev.reset()).rejects.toSatisfy((e) => isVirtioError(e, 'TRANSPORT') && /0x1 after reset/.test((e as Error).message));
  });
});
