// The RFC's protocol (virtio_pci_epf ↔ pci-epf-vhost, rfc-protocol §2.1–2.4) and the
// holes the review found, each closed: one thread, the two sides joined only by the
// link's bytes and in-thread wires.
import { describe, expect, it } from 'vitest';
import { VirtioBus, isVirtioError } from '@x/virtio-core';
import { VringIov } from '@x/vring';
import {
  EPF_VHOST_CMD_STATUS,
  EPF_VHOST_EXT,
  EPF_VHOST_HOST_CMD,
  EPF_VHOST_MAGIC,
  EPF_VHOST_QUEUE_CMD,
  EPF_VHOST_REG,
  PciEpfVhost,
  PciRootComplex,
  VirtioPciEpf,
  isPciEpfError,
  type PciTraceEvent,
} from '@x/transport-pci-epf';
import { VhostEchoDriver, VirtioEchoClient, createPciEpfTestbed } from '@x/transport-pci-epf/testing';

const hex = (v: number): string => v.toString(16);

/** The error and its causes, outermost first. */
function causes(e: unknown): unknown[] {
  const out: unknown[] = [];
  for (let c = e; c !== undefined && out.length < 8; c = (c as { cause?: unknown }).cause) out.push(c);
  return out;
}

describe('rfc-protocol §2.3: bring-up', () => {
  it('the RC side writes the registers in the order of §2.3 (RESET, ACK, DRIVER, features, FINALIZE, FEATURES_OK, per queue, DRIVER_OK)', async () => {
    const trace: string[] = [];
    const keep = (e: PciTraceEvent): void => {
      if (e.bar < 0 || e.offset >= EPF_VHOST_REG.END) return;
      const q = e.offset >= 0x1c ? (e.offset - 0x1c) % 16 : -1;
      if (e.kind === 'mmio-write') {
        // The handshake's "write NONE after reading the result" is checked elsewhere.
        if (e.offset === EPF_VHOST_REG.CMD_STATUS || q === 1) return;
        trace.push(`W ${hex(e.offset)}=${hex(e.value)}`);
      } else if (e.offset === 0x00 || e.offset === 0x04 || q === 2 || q === 4) {
        trace.push(`R ${hex(e.offset)}`);
      }
    };
    const client = new VirtioEchoClient();
    const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { doorbell: true } }, virtioDriver: client, host: { trace: keep } });
    try {
      // Queue 0's block is at 0x1C: status 0x1E, num_buffers 0x20, msix_vector 0x22,
      // queue_addr 0x24 / 0x28. Queue 1's at 0x2C: 0x2E, 0x30, 0x32, 0x34 / 0x38.
      const ring0 = Number.parseInt(trace.find((t) => t.startsWith('W 24='))!.slice(5), 16);
      const ring1 = Number.parseInt(trace.find((t) => t.startsWith('W 34='))!.slice(5), 16);
      expect(trace).toEqual([
        'W 1a=3', // step 1: RESET
        'W 14=1', // step 2: ACKNOWLEDGE, then SET_STATUS
        'W 1a=1',
        'W 14=3', // DRIVER (1 | 2), then SET_STATUS
        'W 1a=1',
        'R 0', // step 3: host_features low, high
        'R 4',
        'W 8=30000000', // step 4: guest_features (VERSION_1 | EVENT_IDX | INDIRECT_DESC = 0x1_3000_0000), then FINALIZE_FEATURES
        'W c=1',
        'W 1a=2',
        'W 14=b', // step 5: FEATURES_OK (1 | 2 | 8), then SET_STATUS
        'W 1a=1',
        'W 10=0', // the configuration vector
        'R 1e', // step 6, queue 0: ENABLE not set; num_buffers; ring; queue_addr; ACTIVATE; vector
        'R 20',
        `W 24=${hex(ring0)}`,
        'W 28=0',
        'W 1c=1',
        'W 22=1',
        'R 2e', // queue 1
        'R 30',
        `W 34=${hex(ring1)}`,
        'W 38=0',
        'W 2c=1',
        'W 32=2',
        'W 14=f', // step 7: DRIVER_OK (1 | 2 | 4 | 8), then SET_STATUS
        'W 1a=1',
      ]);
      // Rings are legacy contiguous at alignment 4096 (§2.3 step 6: vring_create_virtqueue(num, 4096)).
      expect(ring0 % 4096).toBe(0);
      expect(ring1 % 4096).toBe(0);
      expect(tb.host!.device.status).toBe(0xf);
      await client.run(100, 64, 10_000);
      expect(client.counts).toMatchObject({ received: 100, duplicates: 0, corrupt: 0 });
    } finally {
      await tb.dispose();
    }
  });

  it('the RC finds the block by its signature when BAR 0 is taken (the RFC always mapped BAR 0)', async () => {
    const reads: number[] = [];
    const tb = await createPciEpfTestbed({
      mode: 'rfc',
      link: { epc: { bars: [{ type: 'reserved', size: 0x1000 }, ...Array.from({ length: 5 }, () => ({ type: 'programmable' as const }))] } },
      virtioDriver: new VirtioEchoClient(),
      host: { trace: (e) => e.kind === 'mmio-read' && e.offset === EPF_VHOST_EXT.MAGIC && reads.push(e.bar) },
    });
    try {
      const t = tb.host!.transport as VirtioPciEpf;
      expect((tb.ep.fn as PciEpfVhost).barno).toBe(1);
      expect(t.barno).toBe(1);
      // BAR 0 (the controller's own registers) was looked at first and passed over.
      expect(reads.slice(0, 2)).toEqual([0, 1]);
      expect(tb.host!.rc.bar(0).read32(EPF_VHOST_EXT.MAGIC)).not.toBe(EPF_VHOST_MAGIC);
      expect(tb.host!.device.status).toBe(0xf);
    } finally {
      await tb.dispose();
    }
  });

  it('with a 64-bit-only BAR 0 in use the block lands in BAR 2 and is found there', async () => {
    const tb = await createPciEpfTestbed({
      mode: 'rfc',
      link: { epc: { bars: [{ type: 'reserved', size: 0x1000, only64: true }, ...Array.from({ length: 5 }, () => ({ type: 'programmable' as const }))] } },
      virtioDriver: new VirtioEchoClient(),
    });
    try {
      expect((tb.host!.transport as VirtioPciEpf).barno).toBe(2);
      expect(tb.host!.rc.info!.bars.map((b) => [b.barno, b.is64])).toEqual([
        [0, true],
        [2, false],
      ]);
    } finally {
      await tb.dispose();
    }
  });
});

describe('rfc-protocol §2.2: commands', () => {
  it('a silent endpoint: the command fails with a typed TIMEOUT after the settable timeout, and is withdrawn', async () => {
    for (const doorbell of [false, true]) {
      const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { doorbell } }, host: { commandTimeoutMs: 40 } });
      try {
        const t = tb.host!.transport as VirtioPciEpf;
        expect(t.commandTimeoutMs).toBe(40);
        // The endpoint function stops serving (its poller or doorbell handler): the link stays up.
        (tb.ep.fn as PciEpfVhost).close();
        let err: unknown;
        try {
          await t.setStatus(1);
        } catch (e) {
          err = e;
        }
        expect(isPciEpfError(err, 'TIMEOUT')).toBe(true);
        expect(tb.host!.rc.bar(t.barno).read8(EPF_VHOST_REG.CMD)).toBe(EPF_VHOST_HOST_CMD.NONE);
        // Through virtio-core: registration fails with its TRANSPORT error, the cause kept.
        let verr: unknown;
        try {
          await new VirtioBus().registerDevice(tb.host!.device);
        } catch (e) {
          verr = e;
        }
        expect(isVirtioError(verr, 'TRANSPORT')).toBe(true);
        expect(causes(verr).some((c) => isPciEpfError(c, 'TIMEOUT'))).toBe(true);
      } finally {
        await tb.dispose();
      }
    }
  });

  it('the status byte handshake: the EP clears cmd when it takes a command, answers once; the RC writes NONE after reading it', async () => {
    const tb = await createPciEpfTestbed({ mode: 'rfc', host: false, vhostDriver: new VhostEchoDriver() });
    const rc = new PciRootComplex({ link: tb.link, lines: tb.lines });
    try {
      await rc.waitLinkUp();
      rc.enumerate();
      const bar = rc.bar((tb.ep.fn as PciEpfVhost).barno);
      const cmd = async (c: number): Promise<number> => {
        bar.write8(EPF_VHOST_REG.CMD, c);
        await rc.waitFor(() => bar.read8(EPF_VHOST_REG.CMD_STATUS) !== 0, { timeoutMs: 2000, what: 'cmd' });
        // Taken: cmd reads NONE before the status appears.
        expect(bar.read8(EPF_VHOST_REG.CMD)).toBe(0);
        const st = bar.read8(EPF_VHOST_REG.CMD_STATUS);
        bar.write8(EPF_VHOST_REG.CMD_STATUS, EPF_VHOST_CMD_STATUS.NONE);
        return st;
      };
      expect(await cmd(EPF_VHOST_HOST_CMD.RESET)).toBe(EPF_VHOST_CMD_STATUS.OKAY);
      // No new command: the EP writes nothing; the status stays NONE through several poll periods.
      await new Promise((r) => setTimeout(r, 10));
      expect(bar.read8(EPF_VHOST_REG.CMD_STATUS)).toBe(EPF_VHOST_CMD_STATUS.NONE);
      // An unknown command is answered ERROR (the RFC only logged it, so the RC timed out).
      expect(await cmd(0x7f)).toBe(EPF_VHOST_CMD_STATUS.ERROR);
      // A status write out of order (DRIVER_OK without FEATURES_OK): ERROR, and NEEDS_RESET shows.
      bar.write8(EPF_VHOST_REG.DEVICE_STATUS, 0x05);
      expect(await cmd(EPF_VHOST_HOST_CMD.SET_STATUS)).toBe(EPF_VHOST_CMD_STATUS.ERROR);
      expect(bar.read8(EPF_VHOST_REG.DEVICE_STATUS) & 0x40).toBe(0x40);
      // RESET clears the status (the RFC's EP never did).
      expect(await cmd(EPF_VHOST_HOST_CMD.RESET)).toBe(EPF_VHOST_CMD_STATUS.OKAY);
      expect(bar.read8(EPF_VHOST_REG.DEVICE_STATUS)).toBe(0);
    } finally {
      rc.close();
      await tb.dispose();
    }
  });

  it('hostile queue registers: a misaligned ring, a ring outside RC memory, a non-power-of-two size each answer ERROR', async () => {
    const tb = await createPciEpfTestbed({ mode: 'rfc', host: false });
    const rc = new PciRootComplex({ link: tb.link, lines: tb.lines });
    try {
      await rc.waitLinkUp();
      rc.enumerate();
      const bar = rc.bar((tb.ep.fn as PciEpfVhost).barno);
      const activate = async (addr: number, num?: number): Promise<number> => {
        if (num !== undefined) bar.write16(0x1c + 4, num);
        bar.write32(0x1c + 8, addr % 2 ** 32);
        bar.write32(0x1c + 12, Math.floor(addr / 2 ** 32));
        bar.write8(0x1c, EPF_VHOST_QUEUE_CMD.ACTIVATE);
        await rc.waitFor(() => bar.read8(0x1d) !== 0, { timeoutMs: 2000, what: 'activate' });
        const st = bar.read8(0x1d);
        bar.write8(0x1d, 0);
        return st;
      };
      expect(bar.read16(0x1c + 4)).toBe(256);
      expect(await activate(0x8000_0008)).toBe(EPF_VHOST_CMD_STATUS.ERROR); // descriptors need 16-byte alignment (§2.7)
      expect(await activate(0x9000_0000)).toBe(EPF_VHOST_CMD_STATUS.ERROR); // no RC memory there
      expect(await activate(0x8000_0000, 100)).toBe(EPF_VHOST_CMD_STATUS.ERROR); // not a power of two
      expect(await activate(0x8000_0000, 512)).toBe(EPF_VHOST_CMD_STATUS.ERROR); // more than the 256 published
      expect(await activate(0x8000_0000, 64)).toBe(EPF_VHOST_CMD_STATUS.OKAY);
      expect(bar.read16(0x1c + 2) & 1).toBe(1);
      expect(await activate(0x8000_0000, 64)).toBe(EPF_VHOST_CMD_STATUS.ERROR); // already enabled
    } finally {
      rc.close();
      await tb.dispose();
    }
  });
});

describe('rfc-protocol §2.4: data path and windows', () => {
  it('a ring larger than one outbound window: ACTIVATE answers ERROR and findVqs fails with a typed COMMAND_FAILED', async () => {
    // vring_size(256, 4096) = align_up(16·256 + 2·(3 + 256), 4096) + 6 + 8·256 = 8192 + 2054
    // = 10246 bytes, more than an 8 KiB window.
    const client = new VirtioEchoClient();
    const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { outbound: { count: 8, size: 0x2000, align: 0x1000 } } }, virtioDriver: client });
    try {
      const err = tb.host!.device.lastError;
      expect(tb.host!.device.driver).toBeUndefined();
      expect(causes(err).some((c) => isPciEpfError(c, 'COMMAND_FAILED'))).toBe(true);
      expect(isPciEpfError((tb.ep.fn as PciEpfVhost).lastError, 'WINDOW_TOO_SMALL')).toBe(true);
    } finally {
      await tb.dispose();
    }
  });

  it('rings through one persistent window each, buffers through a window per access (or cached windows, or DMA)', async () => {
    for (const endpoint of [{}, { cacheWindows: true }, { dataPath: 'dma' as const }]) {
      const client = new VirtioEchoClient();
      const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { doorbell: true, dma: true } }, endpoint, virtioDriver: client });
      try {
        await client.run(300, 128, 10_000);
        expect(client.counts).toMatchObject({ received: 300, duplicates: 0, corrupt: 0 });
        const fn = tb.ep.fn as PciEpfVhost;
        expect(fn.accessStats.persistent).toBeGreaterThan(0);
        if (endpoint.cacheWindows) expect(fn.accessStats.cached).toBeGreaterThan(fn.accessStats.perAccess);
        else expect(fn.accessStats.perAccess).toBeGreaterThanOrEqual(300);
        // Two rings stay mapped; nothing else leaks a window.
        await tb.settle();
        expect(tb.ep.epc.windowsInUse).toBe(endpoint.cacheWindows ? tb.ep.epc.windowsInUse : 2);
      } finally {
        await tb.dispose();
      }
    }
  });

  it('vhost_read / vhost_write through the DMA engine complete asynchronously', async () => {
    const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { dma: true } }, endpoint: { dataPath: 'dma' }, virtioDriver: new VirtioEchoClient() });
    try {
      const dev = tb.ep.device;
      const p = dev.write(0x8030_0000, Uint8Array.of(9, 8, 7));
      expect(p).toBeInstanceOf(Promise);
      await p;
      expect([...tb.host!.rc.memory.view(0x8030_0000, 3)]).toEqual([9, 8, 7]);
      const back = new Uint8Array(3);
      await dev.read(back, 0x8030_0000);
      expect([...back]).toEqual([9, 8, 7]);
      expect(tb.ep.epc.stats.dmaTransfers).toBe(2);
    } finally {
      await tb.dispose();
    }
  });
});

describe('queues: deactivate / reactivate', () => {
  it('DEACTIVATE stops the endpoint using a ring; ACTIVATE on a fresh ring brings traffic back', async () => {
    for (const doorbell of [true, false]) {
      const client = new VirtioEchoClient();
      const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { doorbell } }, virtioDriver: client });
      try {
        const t = tb.host!.transport as VirtioPciEpf;
        await client.run(50, 64, 10_000);
        await t.deactivateQueue(1);
        const txq = tb.ep.device.vqs[1]!;
        expect(txq.isAttached).toBe(false);
        // A message sent now stays in the RC's ring: nobody takes it.
        client.start(1);
        await tb.settle();
        expect(client.counts.received).toBe(50);
        const detached = await t.reactivateQueue(1);
        expect(detached).toHaveLength(1);
        expect(txq.isAttached).toBe(true);
        // The detached buffer is the client's; with 255 left, traffic goes on.
        await client.run(100, 64, 10_000);
        expect(client.counts).toMatchObject({ received: 150, duplicates: 0, corrupt: 0 });
      } finally {
        await tb.dispose();
      }
    }
  });
});

describe('interrupts: INTx and MSI work (the RFC always asked for MSI-X)', () => {
  const cases = [
    { name: 'INTx only: the EP sets isr and asserts INTA; the RC reads isr (read-to-clear)', epc: { msi: false, msix: false, intx: true }, type: 'intx' },
    { name: 'MSI only (no MSI-X, no INTx): per-queue MSI vectors', epc: { msi: true, msix: false, intx: false }, type: 'msi' },
    { name: 'MSI-X (the RFC): per-queue MSI-X vectors', epc: {}, type: 'msix' },
  ] as const;
  for (const c of cases) {
    it(c.name, async () => {
      const client = new VirtioEchoClient();
      const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { ...c.epc, doorbell: true } }, virtioDriver: client, endpoint: { configSize: 4 } });
      try {
        const t = tb.host!.transport as VirtioPciEpf;
        expect(t.irqType).toBe(c.type);
        await client.run(300, 64, 10_000);
        expect(client.counts).toMatchObject({ received: 300, duplicates: 0, corrupt: 0 });
        expect(tb.ep.epc.stats.irqs[c.type]).toBeGreaterThan(0);
        // A configuration change reaches the driver too (ISR bit 1, or the config vector).
        const before = await tb.host!.device.readConfig(0, 4);
        await tb.ep.device.writeConfig(0, Uint8Array.of(1, 2, 3, 4));
        await tb.settle();
        expect(client.configChanges).toBe(1);
        expect([...before]).toEqual([0, 0, 0, 0]);
        expect([...(await tb.host!.device.readConfig(0, 4))]).toEqual([1, 2, 3, 4]);
      } finally {
        await tb.dispose();
      }
    });
  }
});

describe('RC reset and re-probe while traffic runs', () => {
  it('no buffer is delivered twice, on either side, through a driver reset and a full re-probe', async () => {
    for (const doorbell of [true, false]) {
      const seenAtEp = new Map<number, number>();
      const echo = new VhostEchoDriver('vhost-echo', {
        inspect: (b) => {
          const seq = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
          seenAtEp.set(seq, (seenAtEp.get(seq) ?? 0) + 1);
        },
      });
      const client = new VirtioEchoClient();
      const tb = await createPciEpfTestbed({ mode: 'rfc', link: { epc: { doorbell } }, vhostDriver: echo, virtioDriver: client });
      try {
        client.start(1_000_000);
        await client.waitReceived(200, 10_000);
        // 1) The driver goes away with messages in flight (remove: reset, detach) and comes back.
        await tb.virtioBus.unregisterDriver(client);
        await tb.virtioBus.registerDriver(client);
        expect(tb.host!.device.driver).toBe(client);
        client.start(1_000_000);
        const mid = client.counts.received;
        await client.waitReceived(mid + 200, 10_000);
        // 2) The whole host side goes: a new root complex enumerates and probes again.
        await tb.stopHost();
        await tb.startHost();
        expect(tb.host!.device.driver).toBe(client);
        client.start(500);
        await client.waitReceived(client.counts.received + 200, 10_000);
        await tb.settle();
        expect(client.counts.duplicates).toBe(0);
        expect(client.counts.corrupt).toBe(0);
        expect([...seenAtEp.values()].every((n) => n === 1)).toBe(true);
        expect(echo.errors).toEqual([]);
        expect(echo.probed).toBe(1);
      } finally {
        await tb.dispose();
      }
    }
  });
});

describe('hostile rings', () => {
  it('a chain that loops is a typed ring error at the endpoint (DESC_LOOP, §2.7.5.2): bounded work, no hang', async () => {
    const tb = await createPciEpfTestbed({ mode: 'rfc', vhostDriver: false, registerDevice: true, host: false });
    // Drive the device with a tiny driver of our own that takes chains by hand.
    const errors: unknown[] = [];
    await tb.vhostBus.registerDriver({
      name: 'hand',
      idTable: [{ vendor: 0xffff_ffff, device: 0xffff_ffff }],
      async probe(dev) {
        await dev.setFeatures(1n << 32n);
        await dev.createVqs([
          {
            name: 'in',
            size: 8,
            callback: (vq) => {
              try {
                vq.getBuf(new VringIov(8), new VringIov(8));
              } catch (e) {
                errors.push(e);
              }
            },
          },
        ]);
      },
      remove: (dev) => dev.delVqs(),
    });
    const host = await tb.startHost({ commandTimeoutMs: 2000 });
    try {
      const bus = new VirtioBus();
      await bus.registerDevice(host.device);
      await bus.registerDriver({
        name: 'evil',
        idTable: [{ device: 7, vendor: 0xffff_ffff }],
        featureTable: [],
        async probe(dev) {
          const [vq] = await dev.findVqs([{ name: 'in' }]);
          await dev.ready();
          // Two descriptors that point at each other: 0 → 1 → 0 (§2.7.5.2 forbids loops).
          const m = host.rc.memory;
          const d = vq!.layout.desc;
          m.write64(d, 0x8010_0000);
          m.write32(d + 8, 16);
          m.write16(d + 12, 1);
          m.write16(d + 14, 1);
          m.write64(d + 16, 0x8010_0000);
          m.write32(d + 24, 16);
          m.write16(d + 28, 1);
          m.write16(d + 30, 0);
          m.write16(vq!.layout.avail + 4, 0);
          m.write16(vq!.layout.avail + 2, 1);
          vq!.notify();
        },
        remove: () => undefined,
      });
      await tb.settle();
      expect(errors).toHaveLength(1);
      expect((errors[0] as { code?: string }).code).toBe('RING_ERROR');
      expect(((errors[0] as Error).cause as { code?: string }).code).toBe('DESC_LOOP');
    } finally {
      await tb.dispose();
    }
  });
});
