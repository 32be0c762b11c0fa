import { describe, expect, it } from 'vitest';
import { VHOST_DEV_ANY_ID, VhostBus, VhostDevice, isVhostError, validateVhostConfigOps, vhostIdMatch } from '@x/vhost-core';
import { nullOps, recordingDriver } from './helpers.js';

const ANY = VHOST_DEV_ANY_ID;

describe('vhostIdMatch (RFC patch 2, vhost_id_match)', () => {
  // Rule 1: the device ids are equal, or the entry's device is ANY.
  // Rule 2: the entry's vendor is ANY, or the vendor ids are equal.
  const dev = { vendor: 0x104c, device: 7 };
  it.each([
    [{ vendor: 0x104c, device: 7 }, true, 'both equal'],
    [{ vendor: ANY, device: 7 }, true, 'vendor ANY, device equal (vhost_rpmsg: ffffffff:00000007)'],
    [{ vendor: 0x104c, device: ANY }, true, 'device ANY, vendor equal'],
    [{ vendor: ANY, device: ANY }, true, 'both ANY'],
    [{ vendor: 0x104c, device: 8 }, false, 'rule 1 fails: device differs, not ANY'],
    [{ vendor: ANY, device: 8 }, false, 'rule 1 fails even with vendor ANY'],
    [{ vendor: 0x1af4, device: 7 }, false, 'rule 2 fails: vendor differs, not ANY'],
    [{ vendor: 0x1af4, device: ANY }, false, 'rule 2 fails even with device ANY'],
  ])('entry %o → %s (%s)', (entry, expected) => {
    expect(vhostIdMatch(dev, entry)).toBe(expected);
  });

  it('ANY is 0xffffffff, the kernel VIRTIO_DEV_ANY_ID', () => {
    expect(ANY).toBe(0xffffffff);
    // A device whose own vendor is ANY (what a link to ffffffff:00000007 registers) still
    // needs the device id to match.
    expect(vhostIdMatch({ vendor: ANY, device: 7 }, { vendor: ANY, device: 7 })).toBe(true);
    expect(vhostIdMatch({ vendor: ANY, device: 7 }, { vendor: 0x104c, device: 7 })).toBe(false);
  });
});

describe('VhostBus registration (RFC patch 2)', () => {
  const dev = (id = { vendor: 0x104c, device: 7 }) => new VhostDevice(nullOps(), { id, parent: 'test' });

  it('probes when the driver comes first and the device second', async () => {
    const bus = new VhostBus();
    const drv = recordingDriver('rpmsg');
    await bus.registerDriver(drv);
    const d = dev();
    await bus.registerDevice(d);
    expect(d.name).toBe('vhost0');
    expect(d.driver).toBe(drv);
    expect(drv.log).toEqual(['probe vhost0']);
  });

  it('probes when the device comes first and the driver second', async () => {
    const bus = new VhostBus();
    const d = dev();
    await bus.registerDevice(d);
    expect(d.driver).toBeUndefined();
    const drv = recordingDriver('rpmsg');
    await bus.registerDriver(drv);
    expect(d.driver).toBe(drv);
    expect(drv.log).toEqual(['probe vhost0']);
  });

  it('removes on the driver side: unregistering the driver unbinds its devices, which stay registered', async () => {
    const bus = new VhostBus();
    const drv = recordingDriver('rpmsg');
    await bus.registerDriver(drv);
    const a = dev();
    const b = dev();
    await bus.registerDevice(a);
    await bus.registerDevice(b);
    await bus.unregisterDriver(drv);
    expect(drv.log).toEqual(['probe vhost0', 'probe vhost1', 'remove vhost0', 'remove vhost1']);
    expect(a.driver).toBeUndefined();
    expect(bus.devices).toEqual([a, b]);
    // A later driver binds them again.
    const again = recordingDriver('rpmsg');
    await bus.registerDriver(again);
    expect(again.log).toEqual(['probe vhost0', 'probe vhost1']);
  });

  it('removes on the device side: unregistering the device runs remove and frees its name', async () => {
    const bus = new VhostBus();
    const drv = recordingDriver('rpmsg');
    await bus.registerDriver(drv);
    const a = dev();
    const b = dev();
    await bus.registerDevice(a);
    await bus.registerDevice(b);
    await bus.unregisterDevice(a);
    expect(drv.log).toEqual(['probe vhost0', 'probe vhost1', 'remove vhost0']);
    expect(a.bus).toBeUndefined();
    expect(a.index).toBe(-1);
    // dev_set_name(dev, "vhost%u", ida) takes the lowest free index.
    const c = dev();
    await bus.registerDevice(c);
    expect(c.name).toBe('vhost0');
  });

  it('binds the first registered driver that matches; a failed probe leaves the device for the next', async () => {
    const bus = new VhostBus();
    const failing = recordingDriver('failing', [{ vendor: ANY, device: ANY }], {
      probe: () => {
        throw new Error('no memory');
      },
    });
    const other = recordingDriver('other', [{ vendor: 0x104c, device: 8 }]);
    const good = recordingDriver('good', [{ vendor: 0x104c, device: ANY }]);
    await bus.registerDriver(failing);
    await bus.registerDriver(other);
    await bus.registerDriver(good);
    const d = dev();
    await bus.registerDevice(d);
    expect(failing.log).toEqual(['probe vhost0']);
    expect(other.log).toEqual([]);
    expect(d.driver).toBe(good);
    expect(d.probeError).toBeUndefined();
  });

  it('a failed probe with no other driver leaves the device registered and unbound, with probeError', async () => {
    const bus = new VhostBus();
    const cause = new Error('no memory');
    await bus.registerDriver(
      recordingDriver('failing', undefined, {
        probe: () => {
          throw cause;
        },
      }),
    );
    const d = dev({ vendor: 1, device: 7 });
    await bus.registerDevice(d);
    expect(d.bus).toBe(bus);
    expect(d.driver).toBeUndefined();
    expect(isVhostError(d.probeError, 'DRIVER_ERROR')).toBe(true);
    expect(d.probeError?.cause).toBe(cause);
  });

  it('refuses duplicates and unknowns with BUSY / NOT_REGISTERED', async () => {
    const bus = new VhostBus();
    const drv = recordingDriver('rpmsg');
    await bus.registerDriver(drv);
    await expect(bus.registerDriver(recordingDriver('rpmsg'))).rejects.toMatchObject({ code: 'BUSY' });
    const d = dev();
    await bus.registerDevice(d);
    await expect(bus.registerDevice(d)).rejects.toMatchObject({ code: 'BUSY' });
    await expect(new VhostBus().registerDevice(d)).rejects.toMatchObject({ code: 'BUSY' });
    await expect(bus.unregisterDriver(recordingDriver('other'))).rejects.toMatchObject({ code: 'NOT_REGISTERED' });
    await expect(new VhostBus().unregisterDevice(d)).rejects.toMatchObject({ code: 'NOT_REGISTERED' });
    expect(() => (d.id = { vendor: 1, device: 2 })).toThrow(expect.objectContaining({ code: 'BUSY' }));
  });

  it('checks drivers and devices by argument: TypeError for types, RangeError for ranges', async () => {
    const bus = new VhostBus();
    await expect(bus.registerDriver({ name: '', idTable: [], probe() {}, remove() {} })).rejects.toThrow(TypeError);
    await expect(bus.registerDriver({ name: 'x', idTable: [{ vendor: 1, device: 2 ** 32 }], probe() {}, remove() {} })).rejects.toThrow(
      /driver\.idTable\[0\]\.device must be a u32/,
    );
    // Device 0 ends the kernel's id table (for (i = 0; ids[i].device; i++)), so it can never match.
    await expect(bus.registerDriver({ name: 'x', idTable: [{ vendor: 1, device: 0 }], probe() {}, remove() {} })).rejects.toThrow(RangeError);
    await expect(bus.registerDevice(new VhostDevice(nullOps()))).rejects.toThrow(/device\.id must be set/);
    await expect(bus.registerDevice({} as VhostDevice)).rejects.toThrow(TypeError);
  });

  it('tells listeners after each registration', async () => {
    const bus = new VhostBus();
    const seen: string[] = [];
    const off = bus.addListener({
      driverRegistered: (d) => void seen.push(`+driver ${d.name}`),
      driverUnregistered: (d) => void seen.push(`-driver ${d.name}`),
      deviceRegistered: (d) => void seen.push(`+device ${d.name} bound=${d.driver !== undefined}`),
      deviceUnregistered: (d) => void seen.push(`-device ${d.index}`),
    });
    const drv = recordingDriver('rpmsg');
    await bus.registerDriver(drv);
    const d = dev();
    await bus.registerDevice(d);
    await bus.unregisterDevice(d);
    await bus.unregisterDriver(drv);
    off();
    await bus.registerDriver(drv);
    expect(seen).toEqual(['+driver rpmsg', '+device vhost0 bound=true', '-device -1', '-driver rpmsg']);
  });
});

describe('validateVhostConfigOps (like Linux ntb_dev_ops_is_valid)', () => {
  it('accepts a complete table, with or without the optional config pair', () => {
    expect(() => validateVhostConfigOps(nullOps())).not.toThrow();
    expect(() => validateVhostConfigOps(nullOps({ readConfig: () => {}, writeConfig: () => {} }))).not.toThrow();
  });

  it.each([
    ['createVqs', /ops\.delVqs is present without its pair ops\.createVqs/],
    ['delVqs', /ops\.createVqs is present without its pair ops\.delVqs/],
    ['read', /ops\.write is present without its pair ops\.read/],
    ['getStatus', /ops\.setStatus is present without its pair ops\.getStatus/],
    ['setFeatures', /ops\.setFeatures is required/],
  ])('refuses a table without %s', (missing, message) => {
    const ops = nullOps() as unknown as Record<string, unknown>;
    delete ops[missing];
    expect(() => validateVhostConfigOps(ops)).toThrow(message);
    expect(() => new VhostDevice(ops as never)).toThrow(expect.objectContaining({ code: 'INVALID_OPS' }));
  });

  it('refuses half of an optional pair and ops that are not functions', () => {
    expect(() => validateVhostConfigOps(nullOps({ readConfig: () => {} }))).toThrow(/ops\.readConfig is present without its pair ops\.writeConfig/);
    expect(() => validateVhostConfigOps({ ...nullOps(), read: 42 })).toThrow(/ops\.read must be a function/);
    expect(() => validateVhostConfigOps(null)).toThrow(expect.objectContaining({ code: 'INVALID_OPS' }));
  });
});
