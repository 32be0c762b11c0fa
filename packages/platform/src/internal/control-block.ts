// Typed access to the control region (see ../control.ts for the layout). Every access
// is an Atomics operation: the words are written by other threads.
import {
  CONTROL_LAYOUT as L,
  CONTROL_MAGIC,
  CONTROL_VERSION,
  SYSTEM_STATUS,
  controlRegionSize,
  lineBlockOffset,
  systemBlockOffset,
} from '../control.js';
import type { LineStats } from '../types.js';

export class ControlBlock {
  readonly i32: Int32Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly systems: number,
    readonly lines: number,
  ) {
    this.i32 = new Int32Array(buffer, 0, controlRegionSize(systems, lines) >>> 2);
  }

  /** Allocates and formats a control region. */
  static create(systems: number, lines: number): ControlBlock {
    const c = new ControlBlock(new SharedArrayBuffer(controlRegionSize(systems, lines)), systems, lines);
    Atomics.store(c.i32, L.MAGIC >>> 2, CONTROL_MAGIC);
    Atomics.store(c.i32, L.VERSION >>> 2, CONTROL_VERSION);
    Atomics.store(c.i32, L.SYSTEMS >>> 2, systems);
    Atomics.store(c.i32, L.LINES >>> 2, lines);
    return c;
  }

  /** Int32 index of a word in system `i`'s block. */
  sysWord(i: number, field: number): number {
    return (systemBlockOffset(i) + field) >>> 2;
  }

  /** Int32 index of a word in line `j`'s block. */
  lineWord(j: number, field: number = L.LINE_COUNT): number {
    return (lineBlockOffset(this.systems, j) + field) >>> 2;
  }

  status(i: number): number {
    return Atomics.load(this.i32, this.sysWord(i, L.SYSTEM_STATUS));
  }

  reason(i: number): number {
    return Atomics.load(this.i32, this.sysWord(i, L.SYSTEM_REASON));
  }

  exitCode(i: number): number {
    return Atomics.load(this.i32, this.sysWord(i, L.SYSTEM_EXIT_CODE));
  }

  stopAsked(i: number): boolean {
    return Atomics.load(this.i32, this.sysWord(i, L.SYSTEM_STOP)) !== 0;
  }

  askStop(i: number): void {
    Atomics.store(this.i32, this.sysWord(i, L.SYSTEM_STOP), 1);
  }

  /** Sets a live status (STARTING, RUNNING) unless the system is already down. */
  setLive(i: number, status: number): boolean {
    const w = this.sysWord(i, L.SYSTEM_STATUS);
    for (;;) {
      const cur = Atomics.load(this.i32, w);
      if (isDown(cur)) return false;
      if (Atomics.compareExchange(this.i32, w, cur, status) === cur) return true;
    }
  }

  /**
   * Marks a system down (EXITED, STOPPED or CRASHED) once: the first writer wins. The
   * reason and exit code are written before the status, so a reader that sees the
   * status sees them too.
   */
  setDown(i: number, status: number, reason: number, exitCode = 0): boolean {
    const w = this.sysWord(i, L.SYSTEM_STATUS);
    if (isDown(Atomics.load(this.i32, w))) return false;
    Atomics.store(this.i32, this.sysWord(i, L.SYSTEM_REASON), reason);
    Atomics.store(this.i32, this.sysWord(i, L.SYSTEM_EXIT_CODE), exitCode);
    for (;;) {
      const cur = Atomics.load(this.i32, w);
      if (isDown(cur)) return false;
      if (Atomics.compareExchange(this.i32, w, cur, status) === cur) return true;
    }
  }

  lineStats(j: number): LineStats {
    const a = this.i32;
    return {
      rings: Atomics.load(a, this.lineWord(j, L.LINE_COUNT)) >>> 0,
      wakeups: Atomics.load(a, this.lineWord(j, L.LINE_WAKEUPS)) >>> 0,
      spinHits: Atomics.load(a, this.lineWord(j, L.LINE_SPIN_HITS)) >>> 0,
      sleeps: Atomics.load(a, this.lineWord(j, L.LINE_SLEEPS)) >>> 0,
      recoveries: Atomics.load(a, this.lineWord(j, L.LINE_RECOVERIES)) >>> 0,
    };
  }

  /** Wakes every waiter on every line word and stop word (stop, crash: re-check now). */
  wakeAll(): void {
    for (let j = 0; j < this.lines; j++) Atomics.notify(this.i32, this.lineWord(j));
    for (let i = 0; i < this.systems; i++) Atomics.notify(this.i32, this.sysWord(i, L.SYSTEM_STOP));
  }
}

export function isDown(status: number): boolean {
  return status === SYSTEM_STATUS.EXITED || status === SYSTEM_STATUS.STOPPED || status === SYSTEM_STATUS.CRASHED;
}
