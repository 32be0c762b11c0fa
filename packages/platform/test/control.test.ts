// The control region's layout, checked against offsets computed by hand from the table
// in src/control.ts (64-byte header, 64-byte blocks), and read back from a real run.
import { describe, expect, it } from 'vitest';
import {
  CONTROL_LAYOUT,
  CONTROL_MAGIC,
  PEER_STATUS_LINE,
  PlatformError,
  SYSTEM_STATUS,
  Topology,
  controlRegionSize,
  isPlatformError,
  lineBlockOffset,
  systemBlockOffset,
} from '@x/platform';

describe('control region layout', () => {
  it('sizes and offsets: header 64 B, then 64 B per system, then 64 B per line', () => {
    expect(controlRegionSize(2, 3)).toBe(384); // 64 + 2·64 + 3·64
    expect(systemBlockOffset(0)).toBe(0x40);
    expect(systemBlockOffset(1)).toBe(0x80); // 64 + 64
    expect(lineBlockOffset(2, 0)).toBe(0xc0); // 64 + 2·64
    expect(lineBlockOffset(2, 2)).toBe(0x140); // 192 + 2·64 = 320
    expect(CONTROL_MAGIC).toBe(0x544c5058); // 'X' 0x58, 'P' 0x50, 'L' 0x4c, 'T' 0x54, little-endian
    expect(PEER_STATUS_LINE).toBe(0);
    expect(() => controlRegionSize(-1, 0)).toThrow(RangeError);
    expect(() => lineBlockOffset('2' as never, 0)).toThrow(TypeError);
  });

  it('the bytes of a finished run: magic, counts, status words, doorbell counters', async () => {
    const fixtures = new URL('./fixtures/systems.ts', import.meta.url);
    const t = new Topology({
      mode: 'deterministic',
      lines: ['l', 'r'],
      systems: [
        { name: 'left', entry: fixtures, export: 'left', lines: ['l', 'r'] },
        { name: 'right', entry: fixtures, export: 'right', lines: ['l', 'r'] },
      ],
    });
    await t.start();
    await t.waitForEvent((e) => e.type === 'exit' && e.system === 'left');
    const dv = new DataView(t.controlRegion);
    expect(t.controlRegion.byteLength).toBe(64 + 2 * 64 + 3 * 64);
    expect([...new Uint8Array(t.controlRegion, 0, 4)]).toEqual([0x58, 0x50, 0x4c, 0x54]); // "XPLT"
    expect(dv.getUint32(CONTROL_LAYOUT.VERSION, true)).toBe(1);
    expect(dv.getUint32(CONTROL_LAYOUT.SYSTEMS, true)).toBe(2);
    expect(dv.getUint32(CONTROL_LAYOUT.LINES, true)).toBe(3); // the peer-status line + l + r
    // Both systems returned on their own: EXITED (3) in each status word.
    expect(dv.getInt32(0x40 + CONTROL_LAYOUT.SYSTEM_STATUS, true)).toBe(SYSTEM_STATUS.EXITED);
    expect(dv.getInt32(0x80 + CONTROL_LAYOUT.SYSTEM_STATUS, true)).toBe(SYSTEM_STATUS.EXITED);
    // Lines l (index 1, at 0x100) and r (index 2, at 0x140) each rang once.
    expect(dv.getInt32(0x100 + CONTROL_LAYOUT.LINE_COUNT, true)).toBe(1);
    expect(dv.getInt32(0x140 + CONTROL_LAYOUT.LINE_COUNT, true)).toBe(1);
    expect(t.lineStats('r')).toEqual({ rings: 1, wakeups: 1, spinHits: 1, sleeps: 0, recoveries: 0 });
    // The peer-status line rang on every status change: 2 × RUNNING + 2 × EXITED.
    expect(dv.getInt32(0xc0 + CONTROL_LAYOUT.LINE_COUNT, true)).toBe(4);
    await t.stop();
  });
});

describe('PlatformError', () => {
  it('carries a code, a cause and the system; isPlatformError is structural', () => {
    const cause = new Error('x');
    const e = new PlatformError('TIMEOUT', 'too slow', { cause, system: 's' });
    expect(e.message).toBe('TIMEOUT: too slow');
    expect(e.cause).toBe(cause);
    expect(e.system).toBe('s');
    expect(isPlatformError(e)).toBe(true);
    expect(isPlatformError(e, 'TIMEOUT')).toBe(true);
    expect(isPlatformError(e, 'STOPPED')).toBe(false);
    // A copy from a worker or another copy of the package is recognised by shape.
    expect(isPlatformError({ name: 'PlatformError', code: 'STOPPED' }, 'STOPPED')).toBe(true);
    expect(isPlatformError(new Error('x'))).toBe(false);
    expect(isPlatformError(null)).toBe(false);
  });
});
