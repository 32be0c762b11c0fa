import { VringIov, type Virtqueue, type Vringh } from '@x/vring';
import { isVhostError, type VhostVirtqueue } from '@x/vhost-core';
import { MediatorError, type MediatorSide } from '../errors.js';

/**
 * One end of a copy route: a queue the mediator is the device of, on one side. Both
 * implementations are the device half of a split ring (`Vringh`), so the copy loop is
 * written once.
 */
export interface QueueEnd {
  readonly side: MediatorSide;
  readonly index: number;
  /** Entries of the ring (the copy budget per batch). */
  readonly num: number;
  /** The ring is live: the side set DRIVER_OK and the queue is attached. */
  ready(): boolean;
  /** The next device-readable chain into `riov`: its head, or -1. */
  takeReadable(riov: VringIov): number;
  /** The next device-writable chain into `wiov`: its head, or -1. */
  takeWritable(wiov: VringIov): number;
  pull(riov: VringIov, dst: Uint8Array): number;
  push(wiov: VringIov, src: Uint8Array, offset: number, length: number): number;
  complete(head: number, len: number): void;
  /** Interrupts the side's driver if its ring asks for it. */
  notify(): void;
  /** Asks for kicks again; true when the ring is still empty. */
  enable(): boolean;
  disable(): void;
}

function ringError(side: MediatorSide, index: number, e: unknown): MediatorError {
  if (e instanceof MediatorError) return e;
  const code = isVhostError(e, 'WRONG_DIRECTION') ? 'WRONG_DIRECTION' : 'RING_ERROR';
  const msg = e instanceof Error ? e.message : String(e);
  return new MediatorError(code, `${side} queue ${index}: ${msg}`, { cause: e, side });
}

/** The remote end: a `VhostVirtqueue` over whatever transport the vhost device uses. */
export class RemoteEnd implements QueueEnd {
  readonly side = 'remote';
  readonly index: number;
  readonly #vq: VhostVirtqueue;

  constructor(vq: VhostVirtqueue) {
    this.#vq = vq;
    this.index = vq.index;
  }

  get num(): number {
    return this.#vq.vringh?.num ?? this.#vq.num;
  }
  ready(): boolean {
    return this.#vq.isReady;
  }
  takeReadable(riov: VringIov): number {
    try {
      return this.#vq.getInbuf(riov);
    } catch (e) {
      throw ringError('remote', this.index, e);
    }
  }
  takeWritable(wiov: VringIov): number {
    try {
      return this.#vq.getOutbuf(wiov);
    } catch (e) {
      throw ringError('remote', this.index, e);
    }
  }
  pull(riov: VringIov, dst: Uint8Array): number {
    try {
      return this.#vq.pull(riov, dst);
    } catch (e) {
      throw ringError('remote', this.index, e);
    }
  }
  push(wiov: VringIov, src: Uint8Array, offset: number, length: number): number {
    try {
      return this.#vq.push(wiov, src, offset, length);
    } catch (e) {
      throw ringError('remote', this.index, e);
    }
  }
  complete(head: number, len: number): void {
    try {
      this.#vq.putBuf(head, len);
    } catch (e) {
      throw ringError('remote', this.index, e);
    }
  }
  notify(): void {
    this.#vq.notify();
  }
  enable(): boolean {
    return this.#vq.enableCb();
  }
  disable(): void {
    this.#vq.disableCb();
  }
}

/** A local queue: the driver half the local driver uses, and the mediator's device half over the same memory. */
export interface LocalQueue {
  readonly vq: Virtqueue;
  readonly ringAddr: number;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  /** Set at DRIVER_OK, cleared by reset / FAILED / NEEDS_RESET. */
  vrh: Vringh | undefined;
  irqQueued: boolean;
}

/** The local end: `Vringh` on the mediator's own memory, interrupts delivered as tasks. */
export class LocalEnd implements QueueEnd {
  readonly side = 'local';
  readonly index: number;
  readonly #queue: () => LocalQueue | undefined;
  readonly #live: () => boolean;
  readonly #scratch = new VringIov(64);

  constructor(index: number, queue: () => LocalQueue | undefined, live: () => boolean) {
    this.index = index;
    this.#queue = queue;
    this.#live = live;
  }

  #vrh(): Vringh {
    const v = this.#queue()?.vrh;
    if (v === undefined) throw new MediatorError('BAD_STATE', `local queue ${this.index} is not live`, { side: 'local' });
    return v;
  }

  get num(): number {
    return this.#queue()?.vq.num ?? 0;
  }
  ready(): boolean {
    return this.#live() && this.#queue()?.vrh !== undefined;
  }
  #take(riov: VringIov, wiov: VringIov, wrong: VringIov, what: string): number {
    const v = this.#vrh();
    let head: number;
    try {
      head = v.getDesc(riov, wiov);
    } catch (e) {
      throw ringError('local', this.index, e);
    }
    if (head >= 0 && wrong.count !== 0) {
      v.abandon(1);
      throw new MediatorError('WRONG_DIRECTION', `local queue ${this.index}: chain ${head} has ${wrong.count} ${what} segment(s)`, { side: 'local' });
    }
    return head;
  }
  takeReadable(riov: VringIov): number {
    return this.#take(riov, this.#scratch, this.#scratch, 'device-writable');
  }
  takeWritable(wiov: VringIov): number {
    return this.#take(this.#scratch, wiov, this.#scratch, 'device-readable');
  }
  pull(riov: VringIov, dst: Uint8Array): number {
    try {
      return this.#vrh().pull(riov, dst);
    } catch (e) {
      throw ringError('local', this.index, e);
    }
  }
  push(wiov: VringIov, src: Uint8Array, offset: number, length: number): number {
    try {
      return this.#vrh().push(wiov, src, offset, length);
    } catch (e) {
      throw ringError('local', this.index, e);
    }
  }
  complete(head: number, len: number): void {
    try {
      this.#vrh().complete(head, len);
    } catch (e) {
      throw ringError('local', this.index, e);
    }
  }
  notify(): void {
    const q = this.#queue();
    if (q?.vrh === undefined || !q.vrh.needNotify() || q.irqQueued) return;
    // The used-buffer interrupt arrives after the mediator's work, as an interrupt would.
    q.irqQueued = true;
    queueMicrotask(() => {
      q.irqQueued = false;
      if (this.#queue() !== q || q.vrh === undefined) return;
      try {
        q.vq.interrupt();
      } catch {
        // A broken queue stays broken; the local driver sees it on its next call.
      }
    });
  }
  enable(): boolean {
    const v = this.#queue()?.vrh;
    return v === undefined ? true : v.notifyEnable();
  }
  disable(): void {
    this.#queue()?.vrh?.notifyDisable();
  }
}
