import { describe, expect, it } from 'vitest';
import { VIRTIO_ID, isVirtioError } from '@x/virtio-core';
import { recordingDriver, setup } from './helpers.js';

const RPMSG = { device: VIRTIO_ID.RPMSG, vendor: 0x1af4 };
// Configuration space, little-endian (§2.5): a u32 0x12345678 at 0, a u64
// 0x89abcdef_12345678 at 0 too, a u16 0xcdef at 4.
const CONFIG = new Uint8Array([0x78, 0x56, 0x34, 0x12, 0xef, 0xcd, 0xab, 0x89, 0, 0, 0, 0, 0, 0, 0, 0]);

describe('configuration space (§2.5) and its generation counter (§2.5.1, §4.1.4.3)', () => {
  it('typed reads are little-endian', async () => {
    const { bus, dev } = setup({ config: CONFIG });
    await bus.registerDevice(dev);
    expect(await dev.readConfig8(0)).toBe(0x78);
    expect(await dev.readConfig16(4)).toBe(0xcdef);
    expect(await dev.readConfig32(0)).toBe(0x12345678);
    expect(await dev.readConfig32(4)).toBe(0x89abcdef);
    expect(await dev.readConfig64(0)).toBe(0x89abcdef_12345678n);
    expect([...(await dev.readConfig(2, 3))]).toEqual([0x34, 0x12, 0xef]);
  });

  it('typed writes are little-endian, and only after FEATURES_OK (§3.1.1 step 4)', async () => {
    const { bus, t, dev } = setup();
    await bus.registerDevice(dev);
    await expect(dev.writeConfig32(0, 1)).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATE'));
    await bus.registerDriver(
      recordingDriver('d', [RPMSG], {
        validate: async (d) => {
          await expect(d.writeConfig8(0, 1)).rejects.toSatisfy((e) => isVirtioError(e, 'BAD_STATE'));
          expect(await d.readConfig8(0)).toBe(0); // reading is allowed here
        },
      }),
    );
    await dev.writeConfig32(0, 0xdeadbeef);
    await dev.writeConfig16(4, 0x1234);
    await dev.writeConfig64(8, 0x0102030405060708n);
    // 0xdeadbeef LE = ef be ad de; 0x1234 LE = 34 12; 0x0102030405060708 LE = 08 07 … 01.
    expect([...t.model.config]).toEqual([0xef, 0xbe, 0xad, 0xde, 0x34, 0x12, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
    await expect(dev.writeConfig16(0, 0x10000)).rejects.toThrow(RangeError);
    await expect(dev.writeConfig64(0, -1n)).rejects.toThrow(RangeError);
    await expect(dev.readConfig(-1, 1)).rejects.toThrow(RangeError);
    await expect(dev.readConfigInto(0, [] as unknown as Uint8Array)).rejects.toThrow(TypeError);
  });

  it('a read the device changes midway is retried until the generation holds still (Linux virtio_cread_bytes)', async () => {
    const { bus, t, dev } = setup({ config: CONFIG });
    await bus.registerDevice(dev);
    const before = t.model.generationReads;
    // The device bumps byte 0 during each of the next two reads.
    t.model.changeConfigDuringReads(2);
    // Attempt 1 sees 0x79 with generations 0 != 1, attempt 2 sees 0x7a with 1 != 2,
    // attempt 3 sees 0x7a with 2 == 2: 3 attempts, 2 generation reads each.
    expect(await dev.readConfig32(0)).toBe(0x1234567a);
    expect(t.model.generationReads - before).toBe(6);
  });

  it('stops after configReadRetries attempts with CONFIG_UNSTABLE', async () => {
    const { bus, t, dev } = setup({ config: CONFIG }, { configReadRetries: 4 });
    await bus.registerDevice(dev);
    const before = t.model.generationReads;
    t.model.changeConfigDuringReads(Infinity);
    await expect(dev.readConfig32(0)).rejects.toSatisfy((e) => isVirtioError(e, 'CONFIG_UNSTABLE'));
    // 4 attempts × 2 generation reads.
    expect(t.model.generationReads - before).toBe(8);
  });

  it('without a generation op a config read is a single getConfig (the core fallback)', async () => {
    const { bus, t, dev } = setup({ config: CONFIG, generation: false });
    await bus.registerDevice(dev);
    t.model.changeConfigDuringReads(1);
    // Byte 0 was bumped by the one read that happened: 0x78 + 1 = 0x79.
    expect(await dev.readConfig32(0)).toBe(0x12345679);
    expect(t.model.generationReads).toBe(0);
  });

  it('a config-change interrupt calls the driver, after probe when it arrives during probe (Linux config_enabled)', async () => {
    const { bus, t, dev } = setup({ config: CONFIG });
    await bus.registerDevice(dev);
    const drv = recordingDriver('d', [RPMSG], {
      probe: async (d) => {
        await d.ready();
        // The device changes its config while probe is still running.
        t.model.setConfig(0, new Uint8Array([1]));
        await t.idle();
      },
    });
    await bus.registerDriver(drv);
    await t.idle();
    await bus.settled();
    expect(drv.calls).toEqual(['probe virtio0', 'configChanged virtio0']);
    t.model.setConfig(1, new Uint8Array([2]));
    await t.idle();
    await bus.settled();
    expect(drv.calls).toEqual(['probe virtio0', 'configChanged virtio0', 'configChanged virtio0']);
    expect(await dev.readConfig16(0)).toBe(0x0201);
  });

  it('a configChanged that throws is reported as DRIVER_ERROR', async () => {
    const { bus, t, dev, kinds } = setup();
    await bus.registerDevice(dev);
    await bus.registerDriver(
      recordingDriver('d', [RPMSG], {
        configChanged: () => {
          throw new Error('bad');
        },
      }),
    );
    t.model.setConfig(0, new Uint8Array([1]));
    await t.idle();
    await bus.settled();
    expect(kinds()).toEqual(['probe', 'error:DRIVER_ERROR']);
  });
});
