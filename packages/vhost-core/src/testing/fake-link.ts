import { VhostError } from '@x/vhost-core';

/** How many doorbell / interrupt rounds one drain may run before it gives up. */
const MAX_ROUNDS = 1_000_000;

/**
 * The wires between the two sides of a {@link FakeVhostTransport}: doorbell lines
 * (peer → device) and interrupt lines (device → peer), each a bit in a mask. Raising a
 * line queues delivery as a task; the handlers get only the bit mask — numbers, as
 * hardware gives — never an object of the other side.
 *
 * @internal
 */
export class FakeLink {
  #doorbells = 0;
  #irqs = 0;
  #running: Promise<void> | undefined = undefined;
  #errors: unknown[] = [];
  #disposed = false;
  #onDoorbell: ((bits: number) => void | Promise<void>) | undefined = undefined;
  #onInterrupt: ((bits: number) => void) | undefined = undefined;

  /** The device side's doorbell handler. */
  set onDoorbell(h: (bits: number) => void | Promise<void>) {
    this.#onDoorbell = h;
  }

  /** The peer side's interrupt handler. */
  set onInterrupt(h: (bits: number) => void) {
    this.#onInterrupt = h;
  }

  /** Peer → device: rings doorbell `bit`. */
  ringDoorbell(bit: number): void {
    if (this.#disposed) return;
    this.#doorbells |= 1 << bit;
    this.#schedule();
  }

  /** Device → peer: raises interrupt line `bit`. */
  raiseInterrupt(bit: number): void {
    if (this.#disposed) return;
    this.#irqs |= 1 << bit;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#running === undefined) this.#running = this.#drain();
  }

  async #drain(): Promise<void> {
    // A doorbell is asynchronous: it is delivered after the code that rang it returns.
    await Promise.resolve();
    try {
      let rounds = 0;
      while ((this.#doorbells | this.#irqs) !== 0 && !this.#disposed) {
        if (++rounds > MAX_ROUNDS) {
          this.#errors.push(new VhostError('TIMEOUT', `fake link: still busy after ${MAX_ROUNDS} rounds`));
          this.#doorbells = 0;
          this.#irqs = 0;
          break;
        }
        const d = this.#doorbells;
        this.#doorbells = 0;
        if (d !== 0 && this.#onDoorbell !== undefined) {
          try {
            await this.#onDoorbell(d);
          } catch (e) {
            this.#errors.push(e);
          }
        }
        const i = this.#irqs;
        this.#irqs = 0;
        if (i !== 0 && this.#onInterrupt !== undefined) {
          try {
            this.#onInterrupt(i);
          } catch (e) {
            this.#errors.push(e);
          }
        }
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** Waits until no doorbell or interrupt is pending; rethrows the first handler error since the last call. */
  async settle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
    if (this.#errors.length > 0) {
      const e = this.#errors[0];
      this.#errors = [];
      throw e;
    }
  }

  /** Cuts the wires: nothing more is delivered. */
  dispose(): void {
    this.#disposed = true;
    this.#doorbells = 0;
    this.#irqs = 0;
  }
}
