import { ArrayBufferMemory, RegionMemory, type GuestMemory } from '@x/vring';
import { layoutSpan, vringLegacyLayout, vringModernLayout, VRING_LEGACY_ALIGN, type SplitRingLayout, Virtqueue, Vringh } from '@x/vring';

/** Options of {@link createRingPair}. @public */
export interface RingPairOptions {
  /** Queue size. Default 256. */
  num?: number;
  /** `legacy` contiguous (align {@link RingPairOptions.align}) or `modern` separate areas. Default legacy. */
  layout?: 'legacy' | 'modern';
  /** Legacy alignment. Default 4096. */
  align?: number;
  /** Negotiate EVENT_IDX on both halves. Default false. */
  eventIdx?: boolean;
  /** Indirect tables of this many segments (0 = no INDIRECT_DESC). Default 0. */
  indirectSegments?: number;
  /** Bytes of buffer space after the ring. Default 64 KiB. */
  dataSize?: number;
  /** Bus address of the memory as the driver sees it. Default 0x1000_0000. */
  driverBase?: number;
  /** Address of the same bytes in the device's local memory. Default 0x8_0000_0000. */
  deviceBase?: number;
  /** Back the memory with a SharedArrayBuffer. Default false. */
  shared?: boolean;
}

/** What {@link createRingPair} returns. @public */
export interface RingPair<T> {
  /** The bytes both halves share. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** The driver's memory (bus addresses from `driverBase`). */
  readonly driverMemory: ArrayBufferMemory;
  /** The device's memory: a window translating driver bus addresses to its local copy. */
  readonly deviceMemory: GuestMemory;
  /** The ring layout in driver bus addresses. */
  readonly layout: SplitRingLayout;
  /** Driver half. */
  readonly vq: Virtqueue<T>;
  /** Device half. */
  readonly vrh: Vringh;
  /** Driver bus address of the free buffer space. */
  readonly dataAddr: number;
  /** Bytes of buffer space. */
  readonly dataSize: number;
}

/**
 * Builds both halves of one split ring over a single buffer that the driver sees at
 * `driverBase` and the device reaches through a window onto its own mapping at
 * `deviceBase`, as Linux `tools/virtio/vringh_test.c` runs them.
 *
 * @public
 */
export function createRingPair<T = unknown>(options: RingPairOptions = {}): RingPair<T> {
  const num = options.num ?? 256;
  const align = options.align ?? VRING_LEGACY_ALIGN;
  const driverBase = options.driverBase ?? 0x1000_0000;
  const deviceBase = options.deviceBase ?? 0x8_0000_0000;
  const dataSize = options.dataSize ?? 64 * 1024;
  const segs = options.indirectSegments ?? 0;
  const layout =
    options.layout === 'modern'
      ? vringModernLayout(num, { desc: driverBase })
      : vringLegacyLayout(driverBase, num, align);
  const ringEnd = Math.ceil(layoutSpan(layout).end / 16) * 16;
  const indirectBytes = segs > 0 ? num * segs * 16 : 0;
  const dataAddr = ringEnd + indirectBytes;
  const total = dataAddr - driverBase + dataSize;
  const buffer = options.shared ? new SharedArrayBuffer(total) : new ArrayBuffer(total);
  const driverMemory = new ArrayBufferMemory(buffer, { base: driverBase, name: 'driver memory' });
  const local = new ArrayBufferMemory(buffer, { base: deviceBase, name: 'device local mapping' });
  const deviceMemory = new RegionMemory({ name: 'device window' });
  deviceMemory.map({ busAddr: driverBase, size: total, target: local, targetAddr: deviceBase, name: 'window' });
  const vq = new Virtqueue<T>({
    memory: driverMemory,
    layout,
    eventIdx: options.eventIdx ?? false,
    ...(segs > 0 ? { indirect: { area: ringEnd, maxSegments: segs } } : {}),
  });
  const vrh = new Vringh({ memory: deviceMemory, layout, eventIdx: options.eventIdx ?? false, indirect: segs > 0 });
  return { buffer, driverMemory, deviceMemory, layout, vq, vrh, dataAddr, dataSize };
}
