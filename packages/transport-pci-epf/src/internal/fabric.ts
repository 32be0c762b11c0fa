import { PCI_FABRIC, PCI_FABRIC_BAR, PCI_FABRIC_MBOX_ENTRY } from '../hw/link.js';

/**
 * Accessors of the fabric buffer ({@link PCI_FABRIC}) that both sides' hardware models
 * use: plain reads and writes of configuration space, the write-mask rule of host
 * configuration writes, and the atomic pending words. Holds no state of its own
 * beyond typed-array views, so an RC and an EP built over the same buffer in two
 * threads agree on everything.
 */
export class Fabric {
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly dv: DataView;

  constructor(buffer: SharedArrayBuffer) {
    this.i32 = new Int32Array(buffer, 0, PCI_FABRIC.SIZE >>> 2);
    this.u8 = new Uint8Array(buffer, 0, PCI_FABRIC.SIZE);
    this.dv = new DataView(buffer, 0, PCI_FABRIC.SIZE);
  }

  load(off: number): number {
    return Atomics.load(this.i32, off >>> 2) >>> 0;
  }

  store(off: number, v: number): void {
    Atomics.store(this.i32, off >>> 2, v | 0);
  }

  or(off: number, bits: number): void {
    Atomics.or(this.i32, off >>> 2, bits | 0);
  }

  take(off: number): number {
    return Atomics.exchange(this.i32, off >>> 2, 0) >>> 0;
  }

  add(off: number, v: number): number {
    return Atomics.add(this.i32, off >>> 2, v) >>> 0;
  }

  // ---- configuration space ------------------------------------------------------------

  cfgRead(off: number, width: 1 | 2 | 4): number {
    const o = PCI_FABRIC.CONFIG + off;
    if (width === 1) return this.dv.getUint8(o);
    if (width === 2) return this.dv.getUint16(o, true);
    return this.dv.getUint32(o, true);
  }

  /** The EP controller's own write (its DBI): every bit. */
  cfgWriteDbi(off: number, width: 1 | 2 | 4, v: number): void {
    const o = PCI_FABRIC.CONFIG + off;
    if (width === 1) this.dv.setUint8(o, v & 0xff);
    else if (width === 2) this.dv.setUint16(o, v & 0xffff, true);
    else this.dv.setUint32(o, v >>> 0, true);
  }

  /** Sets the write mask of a register (which bits a host write may change). */
  cfgSetMask(off: number, width: 1 | 2 | 4, mask: number): void {
    const o = PCI_FABRIC.CONFIG_WMASK + off;
    if (width === 1) this.dv.setUint8(o, mask & 0xff);
    else if (width === 2) this.dv.setUint16(o, mask & 0xffff, true);
    else this.dv.setUint32(o, mask >>> 0, true);
  }

  /** A host configuration write: only the bits of the write mask change (PCI read-only bits hold). */
  cfgWriteHost(off: number, width: 1 | 2 | 4, v: number): void {
    for (let i = 0; i < width; i++) {
      const b = (v >>> (8 * i)) & 0xff;
      const o = PCI_FABRIC.CONFIG + off + i;
      const m = this.u8[PCI_FABRIC.CONFIG_WMASK + off + i]!;
      this.u8[o] = (this.u8[o]! & ~m) | (b & m);
    }
  }

  // ---- BAR table --------------------------------------------------------------------

  barFlags(n: number): number {
    return this.load(PCI_FABRIC.BARS + n * PCI_FABRIC.BAR_STRIDE + PCI_FABRIC_BAR.FLAGS);
  }

  barSize(n: number): number {
    return this.load(PCI_FABRIC.BARS + n * PCI_FABRIC.BAR_STRIDE + PCI_FABRIC_BAR.SIZE);
  }

  barBacking(n: number): number {
    return this.load(PCI_FABRIC.BARS + n * PCI_FABRIC.BAR_STRIDE + PCI_FABRIC_BAR.BACKING);
  }

  setBar(n: number, flags: number, size: number, backing: number): void {
    const b = PCI_FABRIC.BARS + n * PCI_FABRIC.BAR_STRIDE;
    this.store(b + PCI_FABRIC_BAR.SIZE, size);
    this.store(b + PCI_FABRIC_BAR.BACKING, backing);
    this.store(b + PCI_FABRIC_BAR.FLAGS, flags);
  }

  // ---- mailbox ------------------------------------------------------------------------

  mboxEntry(index: number): number {
    return PCI_FABRIC.MBOX_ENTRIES + (index % PCI_FABRIC.MBOX_COUNT) * PCI_FABRIC.MBOX_ENTRY_SIZE;
  }

  mboxWrite(index: number, ctrl: number, offset: number, value: number): void {
    const e = this.mboxEntry(index);
    this.store(e + PCI_FABRIC_MBOX_ENTRY.CTRL, ctrl);
    this.store(e + PCI_FABRIC_MBOX_ENTRY.OFFSET, offset);
    this.store(e + PCI_FABRIC_MBOX_ENTRY.VALUE, value);
    this.store(e + PCI_FABRIC_MBOX_ENTRY.STATUS, 0);
  }
}

/** BAR table flag bits (see PCI_FABRIC_BAR.FLAGS). */
export const BAR_F = { PRESENT: 1, IS64: 2, PREFETCH: 4, UPPER: 8 } as const;

/** Mailbox ops. */
export const MBOX_OP = { READ: 1, WRITE: 2 } as const;

/** Mailbox entry status. */
export const MBOX_STATUS = { PENDING: 0, DONE: 1, UNSUPPORTED: 2 } as const;

/** Routing registers: bit 31 enabled, bits 0..2 BAR. */
export const ROUTE_ENABLED = 0x8000_0000;
