// Mode 2 (the direction mainline took): the endpoint presents a standard modern
// virtio-pci device and the RC runs a stock driver that knows nothing of the endpoint
// (VIRTIO 1.2 §4.1; spec-and-peers §1.7). One thread.
import { describe, expect, it } from 'vitest';
import {
  PCI_CAP_ID,
  PciEpfVirtioModern,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_COMMON,
  VirtioPciModern,
  isPciEpfError,
  startPciEpfHost,
  type PciTraceEvent,
} from '@x/transport-pci-epf';
import { VhostEchoDriver, VirtioEchoClient, createPciEpfTestbed } from '@x/transport-pci-epf/testing';

function causes(e: unknown): unknown[] {
  const out: unknown[] = [];
  for (let c = e; c !== undefined && out.length < 8; c = (c as { cause?: unknown }).cause) out.push(c);
  return out;
}

describe('§4.1.2, §4.1.4: discovery', () => {
  it('ids 0x1AF4:0x1047 (0x1040 + rpmsg 7), revision 1, and four vendor capabilities pointing into one BAR', async () => {
    const tb = await createPciEpfTestbed({ mode: 'modern', endpoint: { configSize: 8 }, virtioDriver: new VirtioEchoClient() });
    try {
      const rc = tb.host!.rc;
      const info = rc.info!;
      expect([info.vendorId, info.deviceId, info.revisionId, info.subsysVendorId, info.subsysId]).toEqual([0x1af4, 0x1047, 1, 0x1af4, 7]);
      const vcaps = info.capabilities.filter((c) => c.id === PCI_CAP_ID.VNDR);
      const raw = vcaps.map((c) => ({
        len: rc.configRead(c.offset + VIRTIO_PCI_CAP.LEN, 1),
        type: rc.configRead(c.offset + VIRTIO_PCI_CAP.CFG_TYPE, 1),
        bar: rc.configRead(c.offset + VIRTIO_PCI_CAP.BAR, 1),
        offset: rc.configRead(c.offset + VIRTIO_PCI_CAP.OFFSET, 4),
        length: rc.configRead(c.offset + VIRTIO_PCI_CAP.LENGTH, 4),
      }));
      // COMMON at 0x0 (0x40 bytes), NOTIFY at 0x3000 (8 queues × multiplier 4 = 32 bytes,
      // cap_len 16 + 4 = 20), ISR at 0x1000 (1 byte), DEVICE at 0x2000 (8 bytes).
      expect(raw).toEqual([
        { len: 16, type: 1, bar: 0, offset: 0x0, length: 0x40 },
        { len: 20, type: 2, bar: 0, offset: 0x3000, length: 32 },
        { len: 16, type: 3, bar: 0, offset: 0x1000, length: 1 },
        { len: 16, type: 4, bar: 0, offset: 0x2000, length: 8 },
      ]);
      expect(rc.configRead(vcaps[1]!.offset + VIRTIO_PCI_CAP.NOTIFY_OFF_MULTIPLIER, 4)).toBe(4);
      expect(info.capabilities.some((c) => c.id === PCI_CAP_ID.MSIX)).toBe(true);
      const t = tb.host!.transport as VirtioPciModern;
      expect(t.id).toEqual({ device: 7, vendor: 0x1af4 });
      expect(tb.host!.device.status).toBe(0xf);
    } finally {
      await tb.dispose();
    }
  });

  it('the structures are found through the capabilities when BAR 0 is taken', async () => {
    const tb = await createPciEpfTestbed({
      mode: 'modern',
      link: { epc: { bars: [{ type: 'reserved', size: 0x1000 }, ...Array.from({ length: 5 }, () => ({ type: 'programmable' as const }))] } },
      virtioDriver: new VirtioEchoClient(),
    });
    try {
      const t = tb.host!.transport as VirtioPciModern;
      expect([t.common.bar, t.notify.bar, t.isr.bar]).toEqual([1, 1, 1]);
      expect(tb.host!.device.status).toBe(0xf);
    } finally {
      await tb.dispose();
    }
  });
});

describe('§4.1.4.3: the common configuration, driven the way Linux drives it', () => {
  it('bring-up writes: reset, ACK, DRIVER, feature words through the selectors, FEATURES_OK, each queue, enable, DRIVER_OK', async () => {
    const writes: string[] = [];
    const C = VIRTIO_PCI_COMMON;
    const name = new Map<number, string>(Object.entries(C).map(([k, v]) => [v, k]));
    const trace = (e: PciTraceEvent): void => {
      if (e.kind === 'mmio-write' && e.bar === 0 && e.offset < C.SIZE) writes.push(`${name.get(e.offset)}=${e.value.toString(16)}`);
    };
    const tb = await createPciEpfTestbed({ mode: 'modern', link: { epc: { doorbell: true } }, virtioDriver: new VirtioEchoClient(), host: { trace } });
    try {
      const addr = (k: string): string => writes.find((w) => w.startsWith(k))!;
      const q0 = [addr('Q_DESCLO'), addr('Q_AVAILLO'), addr('Q_USEDLO')];
      const q1 = writes.filter((w) => w.startsWith('Q_DESCLO') || w.startsWith('Q_AVAILLO') || w.startsWith('Q_USEDLO')).slice(3);
      expect(writes).toEqual([
        'STATUS=0', // vp_reset
        'STATUS=1', // ACKNOWLEDGE
        'STATUS=3', // DRIVER
        'DFSELECT=0', // vp_modern_get_features
        'DFSELECT=1',
        'GFSELECT=0', // vp_modern_set_features: VERSION_1 | EVENT_IDX | INDIRECT_DESC
        'GF=30000000',
        'GFSELECT=1',
        'GF=1',
        'STATUS=b', // FEATURES_OK
        'MSIX=0', // the configuration vector
        'Q_SELECT=0', // queue 0: size, rings, vector 1
        'Q_SIZE=100',
        q0[0],
        'Q_DESCHI=0',
        q0[1],
        'Q_AVAILHI=0',
        q0[2],
        'Q_USEDHI=0',
        'Q_MSIX=1',
        'Q_SELECT=1', // queue 1: vector 2
        'Q_SIZE=100',
        q1[0],
        'Q_DESCHI=0',
        q1[1],
        'Q_AVAILHI=0',
        q1[2],
        'Q_USEDHI=0',
        'Q_MSIX=2',
        'Q_SELECT=0', // then every queue enabled
        'Q_ENABLE=1',
        'Q_SELECT=1',
        'Q_ENABLE=1',
        'STATUS=f', // DRIVER_OK
      ]);
    } finally {
      await tb.dispose();
    }
  });

  it('VERSION_1 is the transport\'s: a device that does not offer it is still driven, and never sees the bit', async () => {
    const client = new VirtioEchoClient();
    const echo = new VhostEchoDriver('legacy-ish', { features: 1n << 29n });
    const tb = await createPciEpfTestbed({ mode: 'modern', vhostDriver: echo, virtioDriver: client });
    try {
      // 1 << 32 | 1 << 29 = 0x1_2000_0000 negotiated on the host; 0x2000_0000 on the device.
      expect(tb.host!.device.features).toBe(0x1_2000_0000n);
      expect(tb.ep.device.features).toBe(0x2000_0000n);
      await client.run(100, 64, 10_000);
      expect(client.counts).toMatchObject({ received: 100, duplicates: 0, corrupt: 0 });
    } finally {
      await tb.dispose();
    }
  });

  it('§4.1.4.4: queue n notifies at notify base + queue_notify_off × 4; the doorbell event is the queue index', async () => {
    const tb = await createPciEpfTestbed({ mode: 'modern', link: { epc: { doorbell: true } }, virtioDriver: new VirtioEchoClient() });
    try {
      const t = tb.host!.transport as VirtioPciModern;
      const txq = tb.ep.device.vqs[1]!;
      const kicks = txq.stats.kicks;
      // Queue 1: 0x3000 + 1 × 4 = 0x3004, value 1 (vp_notify writes the queue index).
      tb.host!.rc.bar(t.notify.bar).write16(0x3004, 1);
      await tb.settle();
      expect(txq.stats.kicks).toBe(kicks + 1);
    } finally {
      await tb.dispose();
    }
  });

  it('§4.1.4.3.2 queue_reset: a reset queue reads back 1, stops being used, and comes back on a fresh ring', async () => {
    for (const doorbell of [true, false]) {
      const client = new VirtioEchoClient();
      const tb = await createPciEpfTestbed({ mode: 'modern', link: { epc: { doorbell } }, virtioDriver: client });
      try {
        const t = tb.host!.transport as VirtioPciModern;
        await client.run(50, 64, 10_000);
        await t.resetQueue(1);
        expect(tb.ep.device.vqs[1]!.isAttached).toBe(false);
        client.start(1);
        await tb.settle();
        expect(client.counts.received).toBe(50);
        expect(await t.reenableQueue(1)).toHaveLength(1);
        expect(tb.ep.device.vqs[1]!.isAttached).toBe(true);
        await client.run(100, 64, 10_000);
        expect(client.counts).toMatchObject({ received: 150, duplicates: 0, corrupt: 0 });
      } finally {
        await tb.dispose();
      }
    }
  });
});

describe('interrupts: the stock driver uses MSI-X, else INTx', () => {
  it('INTx only: ISR bit 0 for queues, bit 1 for a configuration change, read-to-clear', async () => {
    const client = new VirtioEchoClient();
    const tb = await createPciEpfTestbed({ mode: 'modern', link: { epc: { msi: false, msix: false } }, endpoint: { configSize: 4 }, virtioDriver: client });
    try {
      expect((tb.host!.transport as VirtioPciModern).irqType).toBe('intx');
      await client.run(200, 64, 10_000);
      expect(client.counts).toMatchObject({ received: 200, duplicates: 0, corrupt: 0 });
      await tb.ep.device.writeConfig(0, Uint8Array.of(5, 6, 7, 8));
      await tb.settle();
      expect(client.configChanges).toBe(1);
      expect([...(await tb.host!.device.readConfig(0, 4))]).toEqual([5, 6, 7, 8]);
      expect(tb.ep.epc.stats.irqs.intx).toBeGreaterThan(0);
    } finally {
      await tb.dispose();
    }
  });

  it('an MSI-only controller with INTx: the stock driver falls back to INTx (Linux virtio_pci never enables MSI)', async () => {
    const client = new VirtioEchoClient();
    const tb = await createPciEpfTestbed({ mode: 'modern', link: { epc: { msi: true, msix: false, intx: true } }, virtioDriver: client });
    try {
      expect((tb.host!.transport as VirtioPciModern).irqType).toBe('intx');
      await client.run(100, 64, 10_000);
      expect(client.counts.received).toBe(100);
    } finally {
      await tb.dispose();
    }
  });

  it('an MSI-only controller without INTx cannot carry the stock driver: a typed NOT_SUPPORTED at probe', async () => {
    const tb = await createPciEpfTestbed({ mode: 'modern', link: { epc: { msi: true, msix: false, intx: false } }, host: false });
    try {
      let err: unknown;
      try {
        await startPciEpfHost({ link: tb.link, lines: tb.lines });
      } catch (e) {
        err = e;
      }
      expect(isPciEpfError(err, 'NOT_SUPPORTED')).toBe(true);
    } finally {
      await tb.dispose();
    }
  });

  it('options.dataPath is checked by name in both modes (one data path implementation)', async () => {
    for (const mode of ['modern', 'rfc'] as const) {
      await expect(createPciEpfTestbed({ mode, endpoint: { dataPath: 'nope' as never }, host: false })).rejects.toThrow(/options\.dataPath must be map or dma, got nope/);
      await expect(createPciEpfTestbed({ mode, endpoint: { dataPath: 'dma' }, host: false })).rejects.toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
    }
  });

  it('MSI-X with a configuration vector: a device-config change reaches the driver once', async () => {
    const client = new VirtioEchoClient();
    const tb = await createPciEpfTestbed({ mode: 'modern', endpoint: { configSize: 4 }, virtioDriver: client });
    try {
      expect((tb.host!.transport as VirtioPciModern).irqType).toBe('msix');
      const g = await (tb.host!.transport as VirtioPciModern).generation();
      await tb.ep.device.writeConfig(0, Uint8Array.of(1, 2, 3, 4));
      await tb.settle();
      expect(client.configChanges).toBe(1);
      expect(await (tb.host!.transport as VirtioPciModern).generation()).toBe((g + 1) & 0xff);
    } finally {
      await tb.dispose();
    }
  });
});

describe('RC reset and re-probe while traffic runs (mode 2)', () => {
  it('no buffer is delivered twice through a driver reset and a full re-probe', async () => {
    for (const doorbell of [true, false]) {
      const seen = new Map<number, number>();
      const echo = new VhostEchoDriver('vhost-echo', {
        inspect: (b) => {
          const seq = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
          seen.set(seq, (seen.get(seq) ?? 0) + 1);
        },
      });
      const client = new VirtioEchoClient();
      const tb = await createPciEpfTestbed({ mode: 'modern', link: { epc: { doorbell } }, vhostDriver: echo, virtioDriver: client });
      try {
        client.start(1_000_000);
        await client.waitReceived(200, 10_000);
        await tb.virtioBus.unregisterDriver(client);
        await tb.virtioBus.registerDriver(client);
        client.start(1_000_000);
        await client.waitReceived(client.counts.received + 200, 10_000);
        await tb.stopHost();
        await tb.startHost();
        client.start(500);
        await client.waitReceived(client.counts.received + 200, 10_000);
        await tb.settle();
        expect(client.counts).toMatchObject({ duplicates: 0, corrupt: 0 });
        expect([...seen.values()].every((n) => n === 1)).toBe(true);
        expect(echo.errors).toEqual([]);
      } finally {
        await tb.dispose();
      }
    }
  });

  it('the endpoint goes away: register reads fail with a typed LINK_DOWN, not a hang', async () => {
    const tb = await createPciEpfTestbed({ mode: 'modern', virtioDriver: new VirtioEchoClient() });
    try {
      const t = tb.host!.transport as VirtioPciModern;
      tb.ep.epc.stop();
      let err: unknown;
      try {
        await t.getStatus();
      } catch (e) {
        err = e;
      }
      expect(causes(err).some((c) => isPciEpfError(c, 'LINK_DOWN'))).toBe(true);
      expect(tb.ep.fn).toBeInstanceOf(PciEpfVirtioModern);
    } finally {
      await tb.dispose();
    }
  });
});
