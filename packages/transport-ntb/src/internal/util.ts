import { VringError } from '@x/vring';

/** A VringError BUS_ERROR, the GuestMemory contract's error for an access outside memory. */
export function busError(addr: number, len: number, where: string): VringError {
  return new VringError('BUS_ERROR', `access of ${len} byte(s) at 0x${Number.isFinite(addr) ? addr.toString(16) : String(addr)} is outside ${where}`);
}

/** `0x…` of a number. */
export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

/** Argument check: an integer in [min, max]. */
export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

/** Argument check: a power of two in [1, max]. */
export function checkPow2(name: string, v: unknown, max: number): number {
  checkInt(name, v, 1, max);
  if (((v as number) & ((v as number) - 1)) !== 0) throw new RangeError(`${name} must be a power of two, got ${v as number}`);
  return v as number;
}

/** Rounds `v` up to a multiple of `align` (any positive integer). */
export function alignUp(v: number, align: number): number {
  return Math.ceil(v / align) * align;
}

/** Splits a number ≤ 2^53−1 into u32 halves. */
export function lo32(v: number): number {
  return v % 0x1_0000_0000 >>> 0;
}

/** The upper u32 of a number ≤ 2^53−1. */
export function hi32(v: number): number {
  return Math.floor(v / 0x1_0000_0000) >>> 0;
}

/** Joins u32 halves into a number (the upper half must keep it ≤ 2^53−1 to be exact). */
export function join64(lo: number, hi: number): number {
  return (hi >>> 0) * 0x1_0000_0000 + (lo >>> 0);
}

/** Resolves on the next macrotask turn. */
export function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** A promise with its settle functions (Node 20 has no Promise.withResolvers). */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

/** Makes a {@link Deferred}. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Serializes async work: each task starts after the previous settled; a failure does not stop the queue. */
export class WorkQueue {
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;

  /** Tasks queued or running. */
  get pending(): number {
    return this.#pending;
  }

  /** Queues `fn`; the returned promise settles with it. */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.#pending++;
    const p = this.#tail.then(fn);
    this.#tail = p.then(
      () => {
        this.#pending--;
      },
      () => {
        this.#pending--;
      },
    );
    return p;
  }

  /** Resolves when everything queued so far has settled. */
  idle(): Promise<void> {
    return this.#tail;
  }
}
