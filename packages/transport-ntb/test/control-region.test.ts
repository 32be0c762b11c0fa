// The mainline NTB endpoint function's control region (rfc-protocol §2.11), byte-exact:
// each host drives BAR0 by hand through its bus, and the function answers there.
import { describe, expect, it } from 'vitest';
import {
  LocalNtbLine,
  NTB_EPF_CMD,
  NTB_EPF_CMD_STATUS,
  NTB_EPF_CTRL as C,
  NTB_EPF_MSIX_ENABLE,
  NtbEpfHost,
  createNtbBridgeLink,
  isNtbError,
  startNtbEpfFunction,
  systemClock,
} from '@x/transport-ntb';

const tick = () => new Promise<void>((r) => setTimeout(r, 1));

describe('§2.11 control region', () => {
  it('offsets and values are those of the table', () => {
    expect(C).toMatchObject({
      COMMAND: 0x00, ARGUMENT: 0x04, CMD_STATUS: 0x08, LINK_STATUS: 0x0a, TOPOLOGY: 0x0c,
      ADDR_LOWER: 0x10, ADDR_UPPER: 0x14, SIZE_LOWER: 0x18, SIZE_UPPER: 0x1c,
      MW_COUNT: 0x20, MW1_OFFSET: 0x24, SPAD_OFFSET: 0x28, SPAD_COUNT: 0x2c,
      DB_ENTRY_SIZE: 0x30, DB_DATA: 0x34, DB_OFFSET: 0xb4,
    });
    // sizeof(struct epf_ntb_ctrl): 0xB4 + 32 · 4 = 0x134.
    expect(C.SIZE).toBe(0x134);
    expect(NTB_EPF_CMD).toEqual({ CONFIGURE_DOORBELL: 1, TEARDOWN_DOORBELL: 2, CONFIGURE_MW: 3, TEARDOWN_MW: 4, LINK_UP: 5, LINK_DOWN: 6 });
    expect(NTB_EPF_CMD_STATUS).toMatchObject({ OK: 1, ERROR: 2 });
    expect(NTB_EPF_MSIX_ENABLE).toBe(1 << 16);
  });

  it('commands by hand: CONFIGURE_DOORBELL fills DB_DATA/DB_OFFSET, LINK_UP needs both hosts, CONFIGURE_MW opens window 1, unknown → ERROR', async () => {
    const link = createNtbBridgeLink(); // 64 spads, 16 vectors, 1 MiB window, align 4096
    const l1 = new LocalNtbLine();
    const l2 = new LocalNtbLine();
    const f = startNtbEpfFunction(link, { lines: { host1Irq: l1, host2Irq: l2 }, pollPeriodMs: 1 });
    // Probing sets up 16 MSI-X vectors and sends CONFIGURE_DOORBELL (MSIX_ENABLE | 16).
    const [h1, h2] = await Promise.all([NtbEpfHost.probe(link, 1, { lines: { irq: l1, peerIrq: l2 } }), NtbEpfHost.probe(link, 2, { lines: { irq: l2, peerIrq: l1 } })]);
    const bus1 = h1.dev.memory;
    const bus2 = h2.dev.memory;
    const bar0 = link.config.hosts[0].barBase;
    const bar0b = link.config.hosts[1].barBase;
    // BAR0 by hand (the function's layout, computed):
    //   ctrl 0x134 → ALIGN 8 = 0x138, + MSI-X table 16 · 16 = 0x100, + PBA ALIGN(⌈16/8⌉, 8) = 8
    //   = 0x240 → ALIGN 4096 = 0x1000 = SPAD_OFFSET; spads 64 · 4 = 256 → 4096.
    //   MW1_OFFSET = ALIGN(16 doorbells · 4096, 1 MiB) = 0x10_0000.
    expect(bus1.read32(bar0 + C.SPAD_OFFSET)).toBe(0x1000);
    expect(bus1.read32(bar0 + C.SPAD_COUNT)).toBe(64);
    expect(bus1.read32(bar0 + C.MW_COUNT)).toBe(1);
    expect(bus1.read32(bar0 + C.DB_ENTRY_SIZE)).toBe(4096);
    expect(bus1.read32(bar0 + C.MW1_OFFSET)).toBe(0x10_0000);
    // HOST2's CONFIGURE_DOORBELL wrote, into HOST1's control region, what HOST1 writes
    // to ring HOST2's vector n: MSI data n, at offset 0xfee0_0000 mod 4096 = 0.
    for (let n = 0; n < 16; n++) {
      expect(bus1.read32(bar0 + 0x34 + 4 * n)).toBe(n);
      expect(bus1.read32(bar0 + 0xb4 + 4 * n)).toBe(0);
    }
    const command = async (bus: typeof bus1, base: number, cmd: number, arg = 0): Promise<number> => {
      bus.write32(base + C.ARGUMENT, arg);
      bus.write32(base + C.COMMAND, cmd);
      for (let i = 0; i < 500; i++) {
        const st = bus.read16(base + C.CMD_STATUS);
        if (st !== 0) {
          bus.write16(base + C.CMD_STATUS, 0);
          return st;
        }
        await tick();
      }
      throw new Error('no status');
    };
    // LINK_UP from HOST1 alone: OK, but the link stays down until HOST2 sends it too.
    expect(await command(bus1, bar0, NTB_EPF_CMD.LINK_UP)).toBe(NTB_EPF_CMD_STATUS.OK);
    expect(bus1.read16(bar0 + C.LINK_STATUS) & 1).toBe(0);
    const rings = [l1.count, l2.count];
    expect(await command(bus2, bar0b, NTB_EPF_CMD.LINK_UP)).toBe(NTB_EPF_CMD_STATUS.OK);
    expect(bus1.read16(bar0 + C.LINK_STATUS) & 1).toBe(1);
    expect(bus2.read16(bar0b + C.LINK_STATUS) & 1).toBe(1);
    // Vector 0 (the link interrupt) went to both hosts.
    expect(l1.count).toBeGreaterThan(rings[0]!);
    expect(l2.count).toBeGreaterThan(rings[1]!);
    // CONFIGURE_MW from HOST1: window 1 of HOST2's BAR2 reaches HOST1's 0x8010_0000.
    bus1.write32(0x8010_0000, 0xdead_beef); // HOST1's RAM
    bus1.write32(bar0 + C.ADDR_LOWER, 0x8010_0000);
    bus1.write32(bar0 + C.ADDR_UPPER, 0);
    bus1.write32(bar0 + C.SIZE_LOWER, 0x10_0000);
    bus1.write32(bar0 + C.SIZE_UPPER, 0);
    expect(await command(bus1, bar0, NTB_EPF_CMD.CONFIGURE_MW, 0)).toBe(NTB_EPF_CMD_STATUS.OK);
    const mw2 = link.config.hosts[1].barBase + 2 * link.config.barStride + 0x10_0000;
    expect(bus2.read32(mw2)).toBe(0xdead_beef);
    // A window larger than mws_size, and an unknown command: ERROR.
    bus1.write32(bar0 + C.SIZE_LOWER, 0x20_0000);
    expect(await command(bus1, bar0, NTB_EPF_CMD.CONFIGURE_MW, 0)).toBe(NTB_EPF_CMD_STATUS.ERROR);
    expect(await command(bus1, bar0, 7)).toBe(NTB_EPF_CMD_STATUS.ERROR);
    // LINK_DOWN from HOST2 clears LINK_STATUS in both regions.
    expect(await command(bus2, bar0b, NTB_EPF_CMD.LINK_DOWN)).toBe(NTB_EPF_CMD_STATUS.OK);
    expect(bus1.read16(bar0 + C.LINK_STATUS) & 1).toBe(0);
    h1.close();
    h2.close();
    f.close();
  });

  it('the host driver times out (typed TIMEOUT) when nobody answers, after the settable command timeout', async () => {
    const link = createNtbBridgeLink();
    const l1 = new LocalNtbLine();
    const l2 = new LocalNtbLine();
    // A function whose command poller stops coming round after the probe (its clock
    // drops new timers): the BARs still answer, commands are never taken.
    let frozen = false;
    const clock = {
      now: () => performance.now(),
      setTimer: (ms: number, cb: () => void) => (frozen ? () => undefined : systemClock.setTimer(ms, cb)),
    };
    const f = startNtbEpfFunction(link, { lines: { host1Irq: l1, host2Irq: l2 }, pollPeriodMs: 1, clock });
    const h1 = await NtbEpfHost.probe(link, 1, { lines: { irq: l1, peerIrq: l2 }, commandTimeoutMs: 40 });
    frozen = true;
    await new Promise((r) => setTimeout(r, 10));
    const e = await h1.dev.linkEnable().catch((x: unknown) => x);
    expect(isNtbError(e, 'TIMEOUT')).toBe(true);
    expect(String((e as Error).message)).toContain('40 ms');
    h1.close();
    f.close();
  });
});
