/**
 * A FIFO async mutex: callers run one at a time in call order. Stands in for the
 * kernel's `vdev->mutex` / device lock / configfs `su_mutex`. Not re-entrant: a holder
 * that calls back into something taking the same lock waits forever, so callers keep
 * lock scopes free of such calls.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    // The chain must continue whether fn succeeded or not, and must never reject.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** True for a value with a callable `then` (a promise or thenable). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
