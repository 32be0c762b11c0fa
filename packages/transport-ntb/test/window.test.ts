// Memory windows of the direct pair: mw_set_trans / mw_clear_trans, mw_get_align limits,
// peer_mw_get_addr, and accesses through the aperture that respect the translation
// (typed errors: BAD_WINDOW when translating, BUS_ERROR when accessing outside it).
import { describe, expect, it } from 'vitest';
import { isVringError } from '@x/vring';
import { NtbPairPort, createNtbPairLink, isNtbError } from '@x/transport-ntb';

function pair() {
  // Default sizes: 1 MiB windows, 4096 alignment, HOST1 RAM at 0x8000_0000, HOST2's
  // aperture of HOST1's window 0 at 0x20_0000_0000.
  const link = createNtbPairLink();
  const h1 = new NtbPairPort(link, 0);
  const h2 = new NtbPairPort(link, 1);
  return { link, h1, h2, close: () => (h1.close(), h2.close()) };
}

describe('memory window translation and bounds', () => {
  it('peer_mw_get_addr / mw_get_align describe the aperture (1 MiB at 0x20_0000_0000 on HOST2)', () => {
    const { h1, h2, close } = pair();
    expect(h2.dev.peerMwGetAddr(0)).toEqual({ base: 0x20_0000_0000, size: 0x10_0000 });
    expect(h1.dev.mwGetAlign(0, 0)).toEqual({ addrAlign: 4096, sizeAlign: 4096, sizeMax: 0x10_0000 });
    expect(() => h1.dev.peerMwGetAddr(1)).toThrow(RangeError);
    close();
  });

  it('mw_set_trans refuses (BAD_WINDOW) misaligned, oversized, or outside-RAM translations', async () => {
    const { h1, close } = pair();
    for (const [addr, size] of [
      [0x8000_0010, 0x1_0000], // address not 4096-aligned
      [0x8000_0000, 0x1_0800], // size not in 4096 units
      [0x8000_0000, 0x20_0000], // 2 MiB > the 1 MiB window
      [0x7fff_0000, 0x2_0000], // starts below HOST1's RAM
      [0x803f_f000, 0x2000], // runs past the 4 MiB of RAM
    ] as const) {
      const e = await h1.dev.mwSetTrans(0, 0, addr, size).catch((x: unknown) => x);
      expect(isNtbError(e, 'BAD_WINDOW'), `0x${addr.toString(16)}+0x${size.toString(16)}`).toBe(true);
    }
    close();
  });

  it("HOST2 reaches HOST1's RAM only through a translated window, and only inside it", async () => {
    const { h1, h2, close } = pair();
    const ap = 0x20_0000_0000;
    const bus2 = h2.dev.memory;
    // Before any translation the aperture decodes but answers with a bus error.
    expect(bus2.contains(ap, 4)).toBe(false);
    const before = (() => { try { bus2.read32(ap); } catch (e) { return e; } })();
    expect(isVringError(before, 'BUS_ERROR')).toBe(true);
    // HOST1 translates its window 0 onto 64 KiB of its RAM at 0x8001_0000.
    h1.ram.write32(0x8001_0000, 0x1234_5678);
    h1.ram.write32(0x8001_fffc, 0xcafe_f00d);
    await h1.dev.mwSetTrans(0, 0, 0x8001_0000, 0x1_0000);
    expect(bus2.read32(ap)).toBe(0x1234_5678);
    expect(bus2.read32(ap + 0xfffc)).toBe(0xcafe_f00d);
    bus2.write32(ap + 8, 0xa5a5_a5a5);
    expect(h1.ram.read32(0x8001_0008)).toBe(0xa5a5_a5a5);
    // Zero-copy view through the window shows HOST1's bytes.
    expect(bus2.view!(ap, 4)![0]).toBe(0x78);
    // One byte past the translated 64 KiB, and an access straddling the end: bus errors.
    for (const f of [() => bus2.read8(ap + 0x1_0000), () => bus2.read32(ap + 0xfffe)]) {
      const e = (() => { try { f(); } catch (x) { return x; } })();
      expect(isVringError(e, 'BUS_ERROR')).toBe(true);
    }
    // mw_clear_trans takes effect at the next access.
    await h1.dev.mwClearTrans(0, 0);
    const after = (() => { try { bus2.read32(ap); } catch (e) { return e; } })();
    expect(isVringError(after, 'BUS_ERROR')).toBe(true);
    close();
  });
});
