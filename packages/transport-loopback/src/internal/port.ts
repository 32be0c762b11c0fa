import { LOOPBACK_DOORBELL } from '../registers.js';

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) | 0;
}

type WaitAsync = (
  ta: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
// ES2024 (Node ≥ 16); typed here because the package compiles against lib ES2022.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * One side's mapping of a loopback register block: little-endian 32-bit registers with
 * atomic access (page 0) and the host-order doorbell words (page 1). Every access is
 * atomic, so the two sides may run on different threads.
 */
export class RegisterPort {
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly #db: number;

  constructor(regs: SharedArrayBuffer) {
    this.i32 = new Int32Array(regs);
    this.u8 = new Uint8Array(regs);
    this.#db = LOOPBACK_DOORBELL.PAGE >>> 2;
  }

  /** Reads a little-endian u32 register. */
  read32(off: number): number {
    const v = Atomics.load(this.i32, off >>> 2);
    return (HOST_LE ? v : bswap32(v)) >>> 0;
  }

  /** Writes a little-endian u32 register. */
  write32(off: number, value: number): void {
    const v = value | 0;
    Atomics.store(this.i32, off >>> 2, HOST_LE ? v : bswap32(v));
  }

  /** Sets bits of a little-endian u32 register atomically. */
  or32(off: number, bits: number): void {
    const v = bits | 0;
    Atomics.or(this.i32, off >>> 2, HOST_LE ? v : bswap32(v));
  }

  /** Clears bits of a little-endian u32 register atomically. */
  clear32(off: number, bits: number): void {
    const v = ~bits | 0;
    Atomics.and(this.i32, off >>> 2, HOST_LE ? v : bswap32(v));
  }

  /** Reads a byte (configuration space). */
  read8(off: number): number {
    return Atomics.load(this.u8, off);
  }

  /** Writes a byte (configuration space). */
  write8(off: number, value: number): void {
    Atomics.store(this.u8, off, value & 0xff);
  }

  /** Index of doorbell word `w` in {@link RegisterPort.i32}. */
  dbIndex(w: number): number {
    return this.#db + w;
  }

  /** Loads doorbell word `w`. */
  db(w: number): number {
    return Atomics.load(this.i32, this.#db + w);
  }

  /** Stores doorbell word `w`. */
  dbStore(w: number, v: number): void {
    Atomics.store(this.i32, this.#db + w, v | 0);
  }

  /** Adds to doorbell word `w` and returns the new value. */
  dbAdd(w: number, n: number): number {
    return (Atomics.add(this.i32, this.#db + w, n) + n) | 0;
  }

  /** Compare-and-swap of doorbell word `w`; returns the old value. */
  dbCas(w: number, expected: number, replacement: number): number {
    return Atomics.compareExchange(this.i32, this.#db + w, expected, replacement);
  }

  /** Wakes every waiter on doorbell word `w`. */
  ring(w: number): void {
    Atomics.notify(this.i32, this.#db + w);
  }

  /**
   * Waits, at most `ms` milliseconds, until doorbell word `w` no longer holds `seen`.
   * Returns at once when it already differs (the re-check after arming: a ring between
   * the caller's read of `seen` and this call is never lost). A pending wait does not
   * keep the process alive.
   */
  async wait(w: number, seen: number, ms: number): Promise<void> {
    const r = waitAsync(this.i32, this.#db + w, seen, ms);
    if (r.async) await r.value;
  }
}

/** Lets other tasks run (a macrotask turn), so a busy loop never starves the event loop. */
export function yieldTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** A FIFO async mutex: one register transaction sequence at a time. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
