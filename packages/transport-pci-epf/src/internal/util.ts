import { PciEpfError } from '../errors.js';

/** Rounds `v` up to a multiple of `a` (any positive integer). */
export function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** Rounds `v` down to a multiple of `a`. */
export function alignDown(v: number, a: number): number {
  return Math.floor(v / a) * a;
}

/** True for a power of two in [1, 2^30]. */
export function isPow2(v: number): boolean {
  return Number.isInteger(v) && v >= 1 && v <= 2 ** 30 && (v & (v - 1)) === 0;
}

/** The smallest power of two ≥ v (v ≥ 1). */
export function nextPow2(v: number): number {
  let p = 1;
  while (p < v) p *= 2;
  return p;
}

/** `0x…` for messages. */
export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

/** Argument check: an integer in [min, max], TypeError for a non-number, RangeError otherwise. */
export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

/** Argument check for an optional boolean. */
export function checkBool(name: string, v: unknown): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${typeof v}`);
  return v;
}

/** The low and high 32-bit halves of a 64-bit feature word. */
export function split64(v: bigint): [number, number] {
  return [Number(v & 0xffff_ffffn), Number((v >> 32n) & 0xffff_ffffn)];
}

/** A 64-bit feature word from two 32-bit halves. */
export function join64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** A number from two 32-bit halves; `BUS_ERROR` above 2^53 − 1 (an address a JS number cannot hold). */
export function joinAddr(lo: number, hi: number, what: string): number {
  if (hi >>> 0 > 0x1f_ffff) throw new PciEpfError('BUS_ERROR', `${what} 0x${(hi >>> 0).toString(16)}_${(lo >>> 0).toString(16).padStart(8, '0')} is above 2^53-1`);
  return (hi >>> 0) * 0x1_0000_0000 + (lo >>> 0);
}

/** A promise and its resolvers (Node 20 has no Promise.withResolvers). */
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

/** A FIFO async mutex (the kernel's `vdev->mutex` / vq lock of RFC §2.2 step 1). */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** True for a value with a callable `then`. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
