import { VringError } from './errors.js';
import { MAX_BUS_ADDR, checkBusAddr } from './memory.js';

/**
 * Descriptor flags (VIRTIO 1.2 §2.7.5, `include/uapi/linux/virtio_ring.h`).
 * @public
 */
export const VRING_DESC_F = {
  /** The buffer continues via the `next` field. */
  NEXT: 1,
  /** The buffer is device-writable (otherwise device-readable). */
  WRITE: 2,
  /** The buffer contains a table of descriptors (§2.7.5.3). */
  INDIRECT: 4,
} as const;

/** `avail.flags` bit: the driver asks for no used-buffer notifications (§2.7.7). @public */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
/** `used.flags` bit: the device asks for no available-buffer notifications (§2.7.10). @public */
export const VRING_USED_F_NO_NOTIFY = 1;

/**
 * Ring feature bits (VIRTIO 1.2 §6). Feature numbers, not masks.
 * @public
 */
export const VIRTIO_RING_F = {
  /** Indirect descriptor tables (§2.7.5.3). */
  INDIRECT_DESC: 28,
  /** `used_event` / `avail_event` notification suppression (§2.7.7, §2.7.10). */
  EVENT_IDX: 29,
} as const;

/** Largest split-ring queue size: the 16-bit index must tell full from empty (§2.7). @public */
export const VIRTQUEUE_MAX_SIZE = 32768;

/**
 * `struct virtq_desc` (§2.7.5): offsets and sizes in bytes.
 * @public
 */
export const VIRTQ_DESC = {
  /** le64 addr */
  ADDR: 0,
  /** le32 len */
  LEN: 8,
  /** le16 flags */
  FLAGS: 12,
  /** le16 next */
  NEXT: 14,
  /** 8 + 4 + 2 + 2 */
  SIZE: 16,
  /** Required alignment of the table. */
  ALIGN: 16,
} as const;

/**
 * `struct virtq_avail` (§2.7.6): offsets in bytes; the ring has `num` u16 entries, then
 * `used_event` when EVENT_IDX is negotiated.
 * @public
 */
export const VIRTQ_AVAIL = {
  /** le16 flags */
  FLAGS: 0,
  /** le16 idx */
  IDX: 2,
  /** le16 ring[num] */
  RING: 4,
  /** Size of one ring entry. */
  ENTRY: 2,
  /** Required alignment. */
  ALIGN: 2,
} as const;

/**
 * `struct virtq_used` (§2.7.8): offsets in bytes; the ring has `num` 8-byte
 * `{le32 id; le32 len}` entries, then `avail_event` when EVENT_IDX is negotiated.
 * @public
 */
export const VIRTQ_USED = {
  /** le16 flags */
  FLAGS: 0,
  /** le16 idx */
  IDX: 2,
  /** struct virtq_used_elem ring[num] */
  RING: 4,
  /** Size of one `virtq_used_elem`: le32 id + le32 len. */
  ENTRY: 8,
  /** Offset of `id` in an element. */
  ELEM_ID: 0,
  /** Offset of `len` in an element. */
  ELEM_LEN: 4,
  /** Required alignment. */
  ALIGN: 4,
} as const;

/** The legacy vring alignment the RFC and remoteproc use. @public */
export const VRING_LEGACY_ALIGN = 4096;

/**
 * Where the three parts of one split virtqueue live, as bus addresses.
 * @public
 */
export interface SplitRingLayout {
  /** Queue size: a power of two, 1…32768. */
  readonly num: number;
  /** Bus address of the descriptor table (16-byte aligned). */
  readonly desc: number;
  /** Bus address of the available ring (2-byte aligned). */
  readonly avail: number;
  /** Bus address of the used ring (4-byte aligned). */
  readonly used: number;
}

/** Bytes of the descriptor table for `num` entries: 16·num. @public */
export function descTableSize(num: number): number {
  return VIRTQ_DESC.SIZE * num;
}

/** Bytes of the available ring including `used_event`: 6 + 2·num (§2.7). @public */
export function availRingSize(num: number): number {
  return VIRTQ_AVAIL.RING + VIRTQ_AVAIL.ENTRY * num + 2;
}

/** Bytes of the used ring including `avail_event`: 6 + 8·num (§2.7). @public */
export function usedRingSize(num: number): number {
  return VIRTQ_USED.RING + VIRTQ_USED.ENTRY * num + 2;
}

/** Byte offset of `used_event` inside the available ring: 4 + 2·num. @public */
export function usedEventOffset(num: number): number {
  return VIRTQ_AVAIL.RING + VIRTQ_AVAIL.ENTRY * num;
}

/** Byte offset of `avail_event` inside the used ring: 4 + 8·num. @public */
export function availEventOffset(num: number): number {
  return VIRTQ_USED.RING + VIRTQ_USED.ENTRY * num;
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** Throws RangeError unless `num` is a power of two in 1…32768. @internal */
export function checkQueueSize(num: number): void {
  if (!Number.isInteger(num) || num < 1 || num > VIRTQUEUE_MAX_SIZE || (num & (num - 1)) !== 0) {
    throw new RangeError(`queue size must be a power of two in 1..${VIRTQUEUE_MAX_SIZE}, got ${num}`);
  }
}

function checkAlign(align: number): void {
  if (!Number.isInteger(align) || align < 1 || align > 2 ** 30 || (align & (align - 1)) !== 0) {
    throw new RangeError(`align must be a power of two, got ${align}`);
  }
}

/**
 * Size in bytes of a legacy contiguous split ring, as Linux `vring_size()` computes it
 * (VIRTIO 1.2 §2.7.2): `align_up(16·num + 2·(3 + num), align) + 6 + 8·num`.
 *
 * @public
 */
export function vringSize(num: number, align: number = VRING_LEGACY_ALIGN): number {
  checkQueueSize(num);
  checkAlign(align);
  return alignUp(descTableSize(num) + availRingSize(num), align) + usedRingSize(num);
}

/**
 * The legacy contiguous layout (§2.7.2, Linux `vring_init()`): descriptors at `base`,
 * the available ring right after them, the used ring at the next `align` boundary.
 *
 * @public
 */
export function vringLegacyLayout(base: number, num: number, align: number = VRING_LEGACY_ALIGN): SplitRingLayout {
  checkBusAddr('base', base);
  checkQueueSize(num);
  checkAlign(align);
  const avail = base + descTableSize(num);
  const used = alignUp(avail + availRingSize(num), align);
  return validateLayout({ num, desc: base, avail, used });
}

/**
 * A VIRTIO 1.x layout with three separate areas (§2.7, PCI `queue_desc` /
 * `queue_driver` / `queue_device`). When only `base` is given the areas are packed one
 * after the other at their minimum alignments.
 *
 * @public
 */
export function vringModernLayout(
  num: number,
  areas: { desc: number; avail?: number; used?: number },
): SplitRingLayout {
  checkQueueSize(num);
  const desc = areas.desc;
  const avail = areas.avail ?? desc + descTableSize(num);
  const used = areas.used ?? alignUp(avail + availRingSize(num), VIRTQ_USED.ALIGN);
  return validateLayout({ num, desc, avail, used });
}

/** Bytes spanned by a layout from its lowest to its highest byte. @public */
export function layoutSpan(layout: SplitRingLayout): { start: number; end: number } {
  const ends = [
    layout.desc + descTableSize(layout.num),
    layout.avail + availRingSize(layout.num),
    layout.used + usedRingSize(layout.num),
  ];
  return { start: Math.min(layout.desc, layout.avail, layout.used), end: Math.max(...ends) };
}

/**
 * Checks the §2.7 rules of a layout: queue size, the alignment of each part, and that
 * no two parts overlap. Throws a {@link VringError} with code `BAD_LAYOUT`.
 *
 * @public
 */
export function validateLayout(layout: SplitRingLayout): SplitRingLayout {
  const { num, desc, avail, used } = layout;
  try {
    checkQueueSize(num);
    checkBusAddr('layout.desc', desc);
    checkBusAddr('layout.avail', avail);
    checkBusAddr('layout.used', used);
    // Every part must end at or below 2^53 − 1; compare by subtraction so the sum
    // cannot round at the top of the safe range.
    for (const [name, start, len] of [
      ['descriptor table', desc, descTableSize(num)],
      ['available ring', avail, availRingSize(num)],
      ['used ring', used, usedRingSize(num)],
    ] as const) {
      if (start > MAX_BUS_ADDR - (len - 1)) throw new RangeError(`${name} at 0x${start.toString(16)} runs past 2^53-1`);
    }
  } catch (e) {
    throw new VringError('BAD_LAYOUT', (e as Error).message, { cause: e });
  }
  if (desc % VIRTQ_DESC.ALIGN !== 0) throw new VringError('BAD_LAYOUT', `descriptor table 0x${desc.toString(16)} is not 16-byte aligned`);
  if (avail % VIRTQ_AVAIL.ALIGN !== 0) throw new VringError('BAD_LAYOUT', `available ring 0x${avail.toString(16)} is not 2-byte aligned`);
  if (used % VIRTQ_USED.ALIGN !== 0) throw new VringError('BAD_LAYOUT', `used ring 0x${used.toString(16)} is not 4-byte aligned`);
  const parts: Array<[string, number, number]> = [
    ['descriptor table', desc, descTableSize(num)],
    ['available ring', avail, availRingSize(num)],
    ['used ring', used, usedRingSize(num)],
  ];
  for (let i = 0; i < 3; i++) {
    for (let j = i + 1; j < 3; j++) {
      const [na, a, la] = parts[i]!;
      const [nb, b, lb] = parts[j]!;
      if (a < b + lb && b < a + la) throw new VringError('BAD_LAYOUT', `${na} overlaps ${nb}`);
    }
  }
  return Object.freeze({ num, desc, avail, used });
}

/**
 * `vring_need_event()` (VIRTIO 1.2 Appendix A): true when moving an index from `oldIdx`
 * to `newIdx` passes the event index `eventIdx`, all modulo 2^16.
 *
 * @public
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
