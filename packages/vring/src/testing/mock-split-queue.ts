import type { GuestMemory } from '@x/vring';
import { VIRTQ_AVAIL, VIRTQ_DESC, VIRTQ_USED, usedEventOffset, availEventOffset, type SplitRingLayout } from '@x/vring';

/** A raw descriptor for {@link MockSplitQueue}. @public */
export interface MockDesc {
  /** le64 addr */
  addr: number;
  /** le32 len */
  len: number;
  /** le16 flags */
  flags?: number;
  /** le16 next */
  next?: number;
}

/**
 * A driver double that writes raw bytes into a split ring with no checks at all, after
 * rust-vmm's `MockSplitQueue`. Use it to feed a `Vringh` malformed rings.
 *
 * @public
 */
export class MockSplitQueue {
  /** The memory the ring lives in. */
  readonly memory: GuestMemory;
  /** The ring layout. */
  readonly layout: SplitRingLayout;
  private availIdx = 0;

  constructor(memory: GuestMemory, layout: SplitRingLayout) {
    this.memory = memory;
    this.layout = layout;
  }

  /** Writes descriptor `i` verbatim. */
  writeDesc(i: number, d: MockDesc): void {
    const a = this.layout.desc + i * VIRTQ_DESC.SIZE;
    this.writeDescAt(a, d);
  }

  /** Writes a descriptor at any address (an indirect table entry). */
  writeDescAt(at: number, d: MockDesc): void {
    this.memory.write32(at, d.addr % 0x1_0000_0000);
    this.memory.write32(at + 4, Math.floor(d.addr / 0x1_0000_0000));
    this.memory.write32(at + VIRTQ_DESC.LEN, d.len >>> 0);
    this.memory.write16(at + VIRTQ_DESC.FLAGS, d.flags ?? 0);
    this.memory.write16(at + VIRTQ_DESC.NEXT, d.next ?? 0);
  }

  /** Puts `head` in the next avail slot and publishes it. */
  pushAvail(head: number): void {
    const slot = this.availIdx % this.layout.num;
    this.memory.write16(this.layout.avail + VIRTQ_AVAIL.RING + slot * VIRTQ_AVAIL.ENTRY, head);
    this.setAvailIdx(this.availIdx + 1);
  }

  /** Writes avail.idx verbatim. */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.memory.store16Release(this.layout.avail + VIRTQ_AVAIL.IDX, this.availIdx);
  }

  /** Writes avail.flags verbatim. */
  setAvailFlags(flags: number): void {
    this.memory.store16Release(this.layout.avail + VIRTQ_AVAIL.FLAGS, flags);
  }

  /** Writes used_event verbatim. */
  setUsedEvent(v: number): void {
    this.memory.store16Release(this.layout.avail + usedEventOffset(this.layout.num), v);
  }

  /** Reads used.idx. */
  usedIdx(): number {
    return this.memory.load16Acquire(this.layout.used + VIRTQ_USED.IDX);
  }

  /** Reads used.flags. */
  usedFlags(): number {
    return this.memory.load16Acquire(this.layout.used + VIRTQ_USED.FLAGS);
  }

  /** Reads avail_event. */
  availEvent(): number {
    return this.memory.load16Acquire(this.layout.used + availEventOffset(this.layout.num));
  }

  /** Reads used element `slot`. */
  usedElem(slot: number): { id: number; len: number } {
    const a = this.layout.used + VIRTQ_USED.RING + slot * VIRTQ_USED.ENTRY;
    return { id: this.memory.read32(a + VIRTQ_USED.ELEM_ID), len: this.memory.read32(a + VIRTQ_USED.ELEM_LEN) };
  }
}
