// The hardware model on its own: configuration space and BAR sizing, outbound windows
// (pci_epc_map_addr / pci_epc_mem_map), MSI / MSI-X / INTx delivery, the doorbell,
// read-to-clear, register emulation and the DMA engine. One thread, in-thread wires.
import { describe, expect, it } from 'vitest';
import {
  PCI_CAP_ID,
  PCI_CFG,
  PCI_MSIX,
  PciEpc,
  PciRootComplex,
  createLocalPciEpfLink,
  isPciEpfError,
  type PciEpfLinkOptions,
} from '@x/transport-pci-epf';

function rig(options: PciEpfLinkOptions = {}) {
  const { link, lines } = createLocalPciEpfLink(options);
  const epc = new PciEpc({ link, lines });
  const rc = new PciRootComplex({ link, lines });
  return { link, lines, epc, rc, close: () => (rc.close(), epc.close()) };
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('configuration space (PCI type 0 header)', () => {
  it('enumeration sizes a BAR by writing all-ones: a 4 KiB 32-bit BAR reads back 0xFFFFF000', async () => {
    const r = rig();
    try {
      r.epc.writeHeader({ vendorId: 0x104c, deviceId: 0xb500, baseClass: 0xff, subsysVendorId: 0xffff, subsysId: 7 });
      r.epc.setBar({ barno: 0, size: 100 });
      r.epc.start();
      await r.rc.waitLinkUp();
      const reads: number[] = [];
      r.rc.trace = (e) => {
        if (e.kind === 'cfg-read' && e.offset === PCI_CFG.BAR0) reads.push(e.value);
      };
      const info = r.rc.enumerate();
      // 100 bytes round up to 128, then to the controller's 4096 alignment: size 0x1000,
      // so the writable address bits are ~(0x1000 - 1) & 0xFFFFFFF0 = 0xFFFFF000.
      expect(reads).toContain(0xffff_f000);
      expect(info.bars).toEqual([{ barno: 0, addr: 0xc000_0000, size: 0x1000, is64: false, prefetch: false }]);
      expect(info).toMatchObject({ vendorId: 0x104c, deviceId: 0xb500, classCode: 0xff0000, subsysVendorId: 0xffff, subsysId: 7, interruptPin: 1 });
      // The vendor id is read-only: a host write does not change it.
      r.rc.configWrite(PCI_CFG.VENDOR_ID, 2, 0x1234);
      expect(r.rc.configRead(PCI_CFG.VENDOR_ID, 2)).toBe(0x104c);
      // Memory decoding and bus mastering are on after enumeration.
      expect(r.rc.configRead(PCI_CFG.COMMAND, 2) & 0x6).toBe(0x6);
    } finally {
      r.close();
    }
  });

  it('a 64-bit BAR takes two slots: the next free BAR after a 64-bit BAR 0 is 2', () => {
    const r = rig({ epc: { bars: [{ type: 'programmable', only64: true }, ...Array.from({ length: 5 }, () => ({ type: 'programmable' as const }))] } });
    try {
      expect(r.epc.firstFreeBar()).toBe(0);
      r.epc.setBar({ barno: 0, size: 4096 });
      expect(r.epc.firstFreeBar()).toBe(2);
      expect(() => r.epc.setBar({ barno: 1, size: 4096 })).toThrow(expect.objectContaining({ code: 'BAD_STATE' }));
    } finally {
      r.close();
    }
  });

  it('reserved BARs are skipped by first-free-BAR (pci_epc_get_first_free_bar) but show to the host', async () => {
    const r = rig({ epc: { bars: [{ type: 'reserved', size: 4096 }, ...Array.from({ length: 5 }, () => ({ type: 'programmable' as const }))] } });
    try {
      expect(r.epc.firstFreeBar()).toBe(1);
      r.epc.writeHeader({ vendorId: 1, deviceId: 2 });
      r.epc.start();
      await r.rc.waitLinkUp();
      expect(r.rc.enumerate().bars.map((b) => b.barno)).toEqual([0]);
    } finally {
      r.close();
    }
  });

  it('a capability chain that loops is walked a bounded number of times (hostile config space)', async () => {
    const r = rig();
    try {
      r.epc.writeHeader({ vendorId: 1, deviceId: 2 });
      const a = r.epc.addCapability(PCI_CAP_ID.VNDR, 16);
      const b = r.epc.addCapability(PCI_CAP_ID.VNDR, 16);
      r.epc.writeConfig(b + 1, 1, a); // b → a → b → …
      r.epc.start();
      await r.rc.waitLinkUp();
      expect(r.rc.enumerate().capabilities.map((c) => c.offset)).toEqual([a, b]);
    } finally {
      r.close();
    }
  });
});

describe('outbound windows: pci_epc_mem_map aligns down and keeps the offset', () => {
  // Default windows: 8 of 1 MiB, alignment 64 KiB; RC memory 4 MiB at 0x8000_0000.
  it('map(0x8001_2345, 0x100): window at 0x8001_0000, offset 0x2345 kept, 64 KiB mapped', () => {
    const r = rig();
    try {
      const m = r.epc.map(0x8001_2345, 0x100);
      // 0x8001_2345 aligned down to 0x1_0000 is 0x8001_0000; offset 0x2345;
      // 0x2345 + 0x100 = 0x2445 aligned up to 0x1_0000 is 0x1_0000.
      expect(m).toMatchObject({ pciAddr: 0x8001_2345, size: 0x100, mapPciAddr: 0x8001_0000, mapSize: 0x1_0000, window: 0 });
      expect(m.physBase).toBe(0x2000_0000);
      expect(m.physAddr).toBe(0x2000_0000 + 0x2345);
      // The EP writes through the window; the RC reads the same bytes at its address.
      r.epc.outbound.write32(m.physAddr, 0xdead_beef);
      expect(r.rc.memory.read32(0x8001_2345)).toBe(0xdead_beef);
      r.epc.unmap(m);
      expect(r.epc.outbound.contains(m.physAddr, 4)).toBe(false);
    } finally {
      r.close();
    }
  });

  it('512 bytes straddling a 64 KiB boundary need two alignment units: WINDOW_TOO_SMALL for a 64 KiB window', () => {
    const r = rig({ epc: { outbound: { count: 2, size: 0x1_0000, align: 0x1_0000 } } });
    try {
      // 0x8000_FF00 aligns down to 0x8000_0000, offset 0xFF00; 0xFF00 + 0x200 = 0x1_0100,
      // aligned up 0x2_0000 > the 0x1_0000 window.
      let err: unknown;
      try {
        r.epc.map(0x8000_ff00, 0x200);
      } catch (e) {
        err = e;
      }
      expect(isPciEpfError(err, 'WINDOW_TOO_SMALL')).toBe(true);
      // The same 512 bytes one page lower fit: 0xEF00 + 0x200 = 0xF100 ≤ 0x1_0000.
      expect(r.epc.map(0x8000_ef00, 0x200).mapSize).toBe(0x1_0000);
    } finally {
      r.close();
    }
  });

  it('pci_epc_map_addr with an unaligned bus address or size: MISALIGNED', () => {
    const r = rig();
    try {
      expect(() => r.epc.mapAddr(0, 0x8000_1000, 0x1_0000)).toThrow(expect.objectContaining({ name: 'PciEpfError', code: 'MISALIGNED' }));
      expect(() => r.epc.mapAddr(0, 0x8000_0000, 0x1_8000)).toThrow(expect.objectContaining({ code: 'MISALIGNED' }));
      expect(() => r.epc.mapAddr(0, 0x8000_0000, 0x20_0000)).toThrow(expect.objectContaining({ code: 'WINDOW_TOO_SMALL' }));
      expect(r.epc.mapAddr(0, 0x8000_0000, 0x1_0000).physBase).toBe(0x2000_0000);
      expect(() => r.epc.mapAddr(0, 0x8001_0000, 0x1_0000)).toThrow(expect.objectContaining({ code: 'BAD_STATE' }));
    } finally {
      r.close();
    }
  });

  it('every window in use: NO_FREE_WINDOW; an address no RC memory answers: BUS_ERROR', () => {
    const r = rig({ epc: { outbound: { count: 2, size: 0x1_0000, align: 0x1000 } } });
    try {
      r.epc.map(0x8000_0000, 16);
      r.epc.map(0x8001_0000, 16);
      expect(() => r.epc.map(0x8002_0000, 16)).toThrow(expect.objectContaining({ code: 'NO_FREE_WINDOW' }));
      const r2 = rig();
      try {
        // RC memory is [0x8000_0000, 0x8040_0000): one byte past its end answers nothing.
        expect(() => r2.epc.map(0x8040_0000, 16)).toThrow(expect.objectContaining({ code: 'BUS_ERROR' }));
      } finally {
        r2.close();
      }
    } finally {
      r.close();
    }
  });
});

describe('interrupts EP → RC', () => {
  async function up(options: PciEpfLinkOptions) {
    const r = rig(options);
    r.epc.writeHeader({ vendorId: 1, deviceId: 2 });
    r.epc.setBar({ barno: 0, size: 0x1000 });
    if (r.epc.features.msi) r.epc.setMsi(4);
    if (r.epc.features.msix) r.epc.setMsix(4, 0, 0x800, 0xc00);
    r.epc.start();
    await r.rc.waitLinkUp();
    r.rc.enumerate();
    return r;
  }

  it('MSI-X: the RC programs the table (data = vector), the EP raises vector 3, the RC runs handler 2', async () => {
    const r = await up({});
    try {
      const alloc = r.rc.allocIrqVectors(4);
      expect(alloc).toEqual({ type: 'msix', vectors: 4 });
      const got: number[] = [];
      for (let v = 0; v < 4; v++) r.rc.requestIrq(v, () => got.push(v));
      // pci_epc_raise_irq's interrupt_num is 1-based: 3 is table entry 2.
      r.epc.raiseIrq('msix', 3);
      await turns();
      expect(got).toEqual([2]);
    } finally {
      r.close();
    }
  });

  it('MSI-X: a masked vector sets its pending bit instead of interrupting (PCIe MSI-X PBA)', async () => {
    const r = await up({});
    try {
      r.rc.allocIrqVectors(4);
      let n = 0;
      r.rc.requestIrq(1, () => n++);
      // Mask entry 1: vector control at table + 1 × 16 + 12 = 0x800 + 0x1C.
      r.rc.bar(0).write32(0x800 + 1 * PCI_MSIX.ENTRY_SIZE + PCI_MSIX.ENTRY_VECTOR_CTRL, 1);
      r.epc.raiseIrq('msix', 2);
      await turns();
      expect(n).toBe(0);
      expect(r.epc.stats.irqsMasked).toBe(1);
      // PBA bit 1 of the byte at 0xC00.
      expect(r.rc.bar(0).read8(0xc00) & 0b10).toBe(0b10);
    } finally {
      r.close();
    }
  });

  it('MSI: 4 vectors asked (MMC = 2), the host grants 4; vector beyond the grant is IRQ_NOT_ENABLED', async () => {
    const r = await up({ epc: { msix: false } });
    try {
      expect(r.rc.allocIrqVectors(8)).toEqual({ type: 'msi', vectors: 4 });
      const got: number[] = [];
      for (let v = 0; v < 4; v++) r.rc.requestIrq(v, () => got.push(v));
      r.epc.raiseIrq('msi', 4);
      r.epc.raiseIrq('msi', 1);
      await turns();
      expect(got.sort()).toEqual([0, 3]);
      expect(() => r.epc.raiseIrq('msi', 5)).toThrow(expect.objectContaining({ code: 'IRQ_NOT_ENABLED' }));
      expect(() => r.epc.raiseIrq('msix', 1)).toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
    } finally {
      r.close();
    }
  });

  it('INTx: an ISR byte set by the EP clears when the RC reads it (read-to-clear)', async () => {
    const r = await up({ epc: { msi: false, msix: false } });
    try {
      expect(r.rc.allocIrqVectors(4)).toEqual({ type: 'intx', vectors: 1 });
      r.epc.setReadToClear(0, 0x16);
      const isr: number[] = [];
      r.rc.requestIrq(0, () => isr.push(r.rc.bar(0).read32(0x16)));
      r.epc.orBarByte(0, 0x16, 0b01);
      r.epc.orBarByte(0, 0x16, 0b10);
      r.epc.raiseIrq('intx');
      await turns();
      expect(isr).toEqual([0b11]);
      expect(r.rc.bar(0).read8(0x16)).toBe(0);
    } finally {
      r.close();
    }
  });

  it('an MSI address the host wrote that is not its interrupt controller: the EP gets a typed BUS_ERROR', async () => {
    const r = await up({ epc: { msix: false } });
    try {
      r.rc.allocIrqVectors(4, ['msi']);
      const cap = r.rc.findCapability(PCI_CAP_ID.MSI);
      r.rc.configWrite(cap + 4, 4, 0x1234_5678 & ~3);
      expect(() => r.epc.raiseIrq('msi', 1)).toThrow(expect.objectContaining({ code: 'BUS_ERROR' }));
    } finally {
      r.close();
    }
  });

  it('no interrupt the host did not enable: INTx disabled by the command register is IRQ_NOT_ENABLED', async () => {
    const r = await up({});
    try {
      r.rc.allocIrqVectors(4, ['msix']);
      expect(() => r.epc.raiseIrq('intx')).toThrow(expect.objectContaining({ code: 'IRQ_NOT_ENABLED' }));
    } finally {
      r.close();
    }
  });
});

describe('RC → EP: doorbell, register emulation', () => {
  it('a host write to the doorbell range interrupts the EP with the written value as the event (mainline doorbell)', async () => {
    const r = rig({ epc: { doorbell: true } });
    try {
      r.epc.writeHeader({ vendorId: 1, deviceId: 2 });
      r.epc.setBar({ barno: 0, size: 0x1000 });
      const events: number[] = [];
      r.epc.setDoorbell(0, 0x100, 4, (e) => events.push(e));
      r.epc.start();
      await r.rc.waitLinkUp();
      r.rc.enumerate();
      r.rc.bar(0).write32(0x100, 3);
      r.rc.bar(0).write32(0x100, 5);
      await turns();
      // Both events in one delivery: bit 3 | bit 5 = 0x28. The memory behind is untouched.
      expect(events).toEqual([0x28]);
      expect(r.rc.bar(0).read32(0x100)).toBe(0);
    } finally {
      r.close();
    }
  });

  it('emulated registers: a read after a write sees it (non-posted completion); a doorbell waits behind earlier writes', async () => {
    const r = rig({ epc: { doorbell: true } });
    try {
      r.epc.writeHeader({ vendorId: 1, deviceId: 2 });
      r.epc.setBar({ barno: 0, size: 0x1000 });
      let reg = 0;
      const order: string[] = [];
      r.epc.setTrap(0, 0, 0x40, {
        read: (off) => (off === 0x10 ? reg : 0),
        write: async (off, _w, v) => {
          await new Promise<void>((res) => setTimeout(res, 2));
          if (off === 0x10) reg = v;
          order.push(`write ${v}`);
        },
      });
      r.epc.setDoorbell(0, 0x100, 4, () => order.push('doorbell'));
      r.epc.start();
      await r.rc.waitLinkUp();
      r.rc.enumerate();
      const bar = r.rc.bar(0);
      await bar.writeAsync(0x10, 4, 42);
      bar.write32(0x100, 0);
      expect(await bar.readAsync(0x10, 4)).toBe(42);
      await turns();
      expect(order).toEqual(['write 42', 'doorbell']);
      expect(() => bar.read32(0x10)).toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
    } finally {
      r.close();
    }
  });

  it('a hostile mailbox head far ahead of the tail: the EP serves at most one ring of requests and catches up', async () => {
    const r = rig();
    try {
      r.epc.writeHeader({ vendorId: 1, deviceId: 2 });
      r.epc.setBar({ barno: 0, size: 0x1000 });
      let served = 0;
      r.epc.setTrap(0, 0, 0x40, { read: () => served++, write: () => void served++ });
      r.epc.start();
      // The RC's side of the fabric: HEAD (0x100) jumps 1000 past TAIL (0x104).
      const words = new Int32Array(r.link.buffers.fabric);
      Atomics.store(words, 0x100 / 4, 1000);
      r.lines.toEp.ring();
      await turns(10);
      expect(served).toBe(0);
      expect(Atomics.load(words, 0x104 / 4)).toBe(1000);
      expect(r.epc.busy).toBe(false);
    } finally {
      r.close();
    }
  });

  it('a read nobody answers is a typed COMPLETION_TIMEOUT, not a hang', async () => {
    const { link, lines } = createLocalPciEpfLink({});
    const epc = new PciEpc({ link, lines });
    const rc = new PciRootComplex({ link, lines, completionTimeoutMs: 30 });
    try {
      epc.writeHeader({ vendorId: 1, deviceId: 2 });
      epc.setBar({ barno: 0, size: 0x1000 });
      epc.setTrap(0, 0, 0x40, { read: () => new Promise<number>(() => undefined), write: () => undefined });
      epc.start();
      await rc.waitLinkUp();
      rc.enumerate();
      await expect(rc.bar(0).readAsync(0, 4)).rejects.toSatisfy((e: unknown) => isPciEpfError(e, 'COMPLETION_TIMEOUT'));
    } finally {
      rc.close();
      epc.close();
    }
  });
});

describe('DMA engine', () => {
  it('transfers complete later, in order; a bad RC address rejects with DMA_ERROR', async () => {
    const r = rig({ epc: { dma: true } });
    try {
      r.epc.start();
      const dma = r.epc.dma!;
      const src = Uint8Array.of(1, 2, 3, 4);
      const done: string[] = [];
      const a = dma.transfer({ direction: 'to-rc', rcAddr: 0x8000_1000, local: src }).then(() => done.push('a'));
      const back = new Uint8Array(4);
      const b = dma.transfer({ direction: 'from-rc', rcAddr: 0x8000_1000, local: back }).then(() => done.push('b'));
      // Queued, not done: the engine works on a later turn.
      expect(dma.pending).toBe(2);
      expect(done).toEqual([]);
      await Promise.all([a, b]);
      expect(done).toEqual(['a', 'b']);
      expect([...back]).toEqual([1, 2, 3, 4]);
      await expect(dma.transfer({ direction: 'to-rc', rcAddr: 0x9000_0000, local: src })).rejects.toSatisfy((e: unknown) => isPciEpfError(e, 'DMA_ERROR'));
      expect(r.epc.stats.dmaTransfers).toBe(2);
    } finally {
      r.close();
    }
  });
});
