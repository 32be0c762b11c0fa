/**
 * The control region: the platform's own shared memory, holding one status block per
 * system and one doorbell block per interrupt line. It is the register file of the
 * modelled interrupt controller: everything the systems learn about each other's
 * doorbells and health, they read from these words, never from a JS object.
 *
 * Layout (all words little-endian Int32, accessed with Atomics):
 *
 * ```
 * 0x00            header (HEADER_SIZE = 64 bytes: magic, version, counts)
 * 0x40            system block 0 … n−1   (SYSTEM_BLOCK_SIZE = 64 bytes each)
 * 0x40 + 64·n     line block 0 … m−1     (LINE_BLOCK_SIZE = 64 bytes each;
 *                                         line 0 is the reserved peer-status line)
 * size            = 64 + 64·n + 64·m
 * ```
 *
 * Each block is one 64-byte cache line, so a doorbell word never shares a line with
 * another doorbell (no false sharing between two directions of a ping-pong).
 *
 * @public
 */
export const CONTROL_LAYOUT = {
  /** u32 {@link CONTROL_MAGIC}. */
  MAGIC: 0x00,
  /** u32 layout version ({@link CONTROL_VERSION}). */
  VERSION: 0x04,
  /** u32 number of systems. */
  SYSTEMS: 0x08,
  /** u32 number of lines, the reserved peer-status line included. */
  LINES: 0x0c,
  /** Bytes of the header: 4 words used, padded to one cache line. */
  HEADER_SIZE: 0x40,
  /** Bytes per system block: 4 words used, padded to one cache line. */
  SYSTEM_BLOCK_SIZE: 0x40,
  /** In a system block: the {@link SYSTEM_STATUS} word. */
  SYSTEM_STATUS: 0x00,
  /** In a system block: the {@link DOWN_REASON} word, written before the status. */
  SYSTEM_REASON: 0x04,
  /** In a system block: the worker's exit code when the reason is `EXIT_CODE`. */
  SYSTEM_EXIT_CODE: 0x08,
  /** In a system block: non-zero once the owner asked the system to stop. */
  SYSTEM_STOP: 0x0c,
  /** Bytes per line block: 6 words used, padded to one cache line. */
  LINE_BLOCK_SIZE: 0x40,
  /** In a line block: the doorbell counter (rings, modulo 2^32); ringing adds 1. */
  LINE_COUNT: 0x00,
  /** In a line block: times a receiver saw the counter move (handler runs and wait returns). */
  LINE_WAKEUPS: 0x04,
  /** In a line block: wake-ups seen without sleeping (spinning, polling, or already moved). */
  LINE_SPIN_HITS: 0x08,
  /** In a line block: times a receiver blocked (Atomics.waitAsync / Atomics.wait). */
  LINE_SLEEPS: 0x0c,
  /**
   * In a line block: wake-ups found only by the bounded re-check after a sleep timed
   * out, i.e. rings whose notify never arrived. Zero when no wake-up is lost.
   */
  LINE_RECOVERIES: 0x10,
  /**
   * In a line block: receivers blocked, or about to block, on the counter
   * (Atomics.waitAsync / Atomics.wait). A receiver adds 1 before it sleeps and takes 1
   * off once it woke; a ringer calls Atomics.notify only when this is not 0. Both are
   * sequentially consistent, so either the ringer sees the sleeper or the sleeper sees
   * the new count and does not sleep: no wake-up is lost, and a ring that nobody sleeps
   * on costs no notify.
   */
  LINE_WAITERS: 0x14,
} as const;

/** The control region's magic word: the bytes `X P L T`. @public */
export const CONTROL_MAGIC = 0x544c5058;

/** The control region layout version. @public */
export const CONTROL_VERSION = 1;

/**
 * Index of the reserved line every system listens on: whoever changes a system's
 * status word rings it, and each system then re-reads the status words.
 *
 * @public
 */
export const PEER_STATUS_LINE = 0;

/**
 * Values of a system block's status word.
 *
 * @public
 */
export const SYSTEM_STATUS = {
  /** The block is not in use. */
  ABSENT: 0,
  /** The owner is starting the system (loading its module). */
  STARTING: 1,
  /** The system's function has been called. */
  RUNNING: 2,
  /** The system's function returned before any stop was asked. */
  EXITED: 3,
  /** The system ended because the topology stopped it. */
  STOPPED: 4,
  /** The system crashed; the reason word says how. */
  CRASHED: 5,
} as const;

/**
 * Values of a system block's reason word (why a system went down).
 *
 * @public
 */
export const DOWN_REASON = {
  /** No failure. */
  NONE: 0,
  /** The system's function (or one of its handlers) threw or rejected. */
  THREW: 1,
  /** The system's worker raised an uncaught error. */
  WORKER_ERROR: 2,
  /** The system's worker exited on its own (the exit code word holds the code). */
  EXIT_CODE: 3,
  /** The owner killed the system (fault injection). */
  KILLED: 4,
  /** The system's module could not be loaded or has no such function. */
  START_FAILED: 5,
} as const;

/**
 * A system's status as a name: {@link SYSTEM_STATUS} in lower case, or `unknown` for
 * a word holding any other value.
 *
 * @public
 */
export type SystemStatus = 'absent' | 'starting' | 'running' | 'exited' | 'stopped' | 'crashed' | 'unknown';

/**
 * Why a system went down, as a name ({@link DOWN_REASON} in kebab case).
 *
 * @public
 */
export type DownReason = 'threw' | 'worker-error' | 'exit-code' | 'killed' | 'start-failed';

/**
 * Bytes of a control region for `systems` systems and `lines` lines (the reserved
 * peer-status line included).
 *
 * @public
 */
export function controlRegionSize(systems: number, lines: number): number {
  checkCount('systems', systems);
  checkCount('lines', lines);
  return CONTROL_LAYOUT.HEADER_SIZE + systems * CONTROL_LAYOUT.SYSTEM_BLOCK_SIZE + lines * CONTROL_LAYOUT.LINE_BLOCK_SIZE;
}

/**
 * Byte offset of system `index`'s block in the control region.
 *
 * @public
 */
export function systemBlockOffset(index: number): number {
  checkCount('index', index);
  return CONTROL_LAYOUT.HEADER_SIZE + index * CONTROL_LAYOUT.SYSTEM_BLOCK_SIZE;
}

/**
 * Byte offset of line `index`'s block in a control region of `systems` systems.
 *
 * @public
 */
export function lineBlockOffset(systems: number, index: number): number {
  checkCount('systems', systems);
  checkCount('index', index);
  return CONTROL_LAYOUT.HEADER_SIZE + systems * CONTROL_LAYOUT.SYSTEM_BLOCK_SIZE + index * CONTROL_LAYOUT.LINE_BLOCK_SIZE;
}

function checkCount(name: string, n: number): void {
  if (typeof n !== 'number') throw new TypeError(`${name} must be a number, got ${typeof n}`);
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${name} must be an integer in [0, 65535], got ${n}`);
}

const STATUS_NAMES: readonly SystemStatus[] = ['absent', 'starting', 'running', 'exited', 'stopped', 'crashed'];
const REASON_NAMES: readonly (DownReason | undefined)[] = [undefined, 'threw', 'worker-error', 'exit-code', 'killed', 'start-failed'];

/** @internal */
export function statusName(word: number): SystemStatus {
  return STATUS_NAMES[word] ?? 'unknown';
}

/** @internal */
export function reasonName(word: number): DownReason | undefined {
  return REASON_NAMES[word];
}

/** @internal */
export function reasonWord(reason: DownReason): number {
  return REASON_NAMES.indexOf(reason);
}
