import { VirtioError, isVirtioError, type VirtioErrorCode } from '../errors.js';

/** True for anything with a callable `then` (a Promise from any realm). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/** Keeps a VirtioError as it is; wraps anything else in one of `code`. */
export function wrapError(code: VirtioErrorCode, what: string, e: unknown): VirtioError {
  if (isVirtioError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new VirtioError(code, `${what} failed: ${msg}`, { cause: e });
}

/**
 * Awaits `p`, rejecting with `TIMEOUT` after `ms` milliseconds (0 or Infinity: no
 * limit). The timer is unref'd and always cleared; a late rejection of `p` is
 * observed, so it never becomes an unhandled rejection.
 */
export function awaitWithTimeout<T>(p: PromiseLike<T>, ms: number, what: string, code: VirtioErrorCode): Promise<T> {
  if (!(ms > 0) || ms === Infinity) {
    return Promise.resolve(p).then(undefined, (e: unknown) => {
      throw wrapError(code, what, e);
    });
  }
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      reject(new VirtioError('TIMEOUT', `${what} did not answer within ${ms} ms`));
    }, ms);
    (timer as { unref?: () => void }).unref?.();
    Promise.resolve(p).then(
      (v) => {
        clearTimeout(timer);
        if (done) return;
        done = true;
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        if (done) return;
        done = true;
        reject(wrapError(code, what, e));
      },
    );
  });
}
