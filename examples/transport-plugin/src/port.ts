import { BAR_SIZE, DB } from './bar.js';

type WaitAsync = (ta: Int32Array, i: number, v: number, t?: number) => { async: false; value: string } | { async: true; value: Promise<string> };
// Atomics.waitAsync is ES2024; Node 20 has it.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * One side's view of the BAR. Data registers are plain little-endian accesses (DataView);
 * the command and status bytes are atomic, and they order everything else: a side writes
 * its data registers, then the command byte (Atomics.store); the other side loads the
 * command byte (Atomics.load), then reads the data. The doorbell page is host-order Int32.
 */
export class BarPort {
  readonly #dv: DataView;
  readonly #u8: Uint8Array;
  readonly #u16: Uint16Array;
  readonly #i32: Int32Array;

  constructor(bar: SharedArrayBuffer) {
    if (!(bar instanceof SharedArrayBuffer) || bar.byteLength !== BAR_SIZE) throw new TypeError(`bar must be a ${BAR_SIZE}-byte SharedArrayBuffer`);
    this.#dv = new DataView(bar);
    this.#u8 = new Uint8Array(bar);
    this.#u16 = new Uint16Array(bar);
    this.#i32 = new Int32Array(bar);
  }

  r16(off: number): number {
    return this.#dv.getUint16(off, true);
  }
  w16(off: number, v: number): void {
    this.#dv.setUint16(off, v, true);
  }
  r32(off: number): number {
    return this.#dv.getUint32(off, true);
  }
  w32(off: number, v: number): void {
    this.#dv.setUint32(off, v >>> 0, true);
  }
  r64(off: number): bigint {
    return this.#dv.getBigUint64(off, true);
  }
  w64(off: number, v: bigint): void {
    this.#dv.setBigUint64(off, v, true);
  }
  /** Atomic byte (command, status and device-status bytes). */
  r8(off: number): number {
    return Atomics.load(this.#u8, off);
  }
  w8(off: number, v: number): void {
    Atomics.store(this.#u8, off, v);
  }
  cas8(off: number, expected: number, v: number): number {
    return Atomics.compareExchange(this.#u8, off, expected, v);
  }
  /** Atomic OR into the low half of the 2-aligned ISR word (bits 0 and 1 live there). */
  orIsr(off: number, bits: number): void {
    const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    Atomics.or(this.#u16, off >>> 1, little ? bits : ((bits & 0xff) << 8) | (bits >>> 8));
  }

  db(w: number): number {
    return Atomics.load(this.#i32, (DB.PAGE >>> 2) + w);
  }
  dbSet(w: number, v: number): void {
    Atomics.store(this.#i32, (DB.PAGE >>> 2) + w, v);
  }
  /** Increments doorbell word `w` and wakes its waiters. */
  ring(w: number): void {
    Atomics.add(this.#i32, (DB.PAGE >>> 2) + w, 1);
    Atomics.notify(this.#i32, (DB.PAGE >>> 2) + w);
  }
  /** Waits at most `ms` until word `w` no longer holds `seen` (returns at once if it already moved). */
  async wait(w: number, seen: number, ms: number): Promise<void> {
    const r = waitAsync(this.#i32, (DB.PAGE >>> 2) + w, seen, ms);
    if (r.async) await r.value;
  }
}

/** A macrotask turn, so a busy loop never starves the event loop. */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
