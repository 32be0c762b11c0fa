import { VIRTIO_F, VIRTIO_TRANSPORT_F } from '@x/virtio-core';

/**
 * Bits of the transport range (VIRTIO 1.2 §6: 24–41 in 1.3): they describe a ring or
 * the transport, so each side negotiates them for its own ring.
 *
 * @public
 */
export const TRANSPORT_FEATURES_MASK: bigint = ((1n << BigInt(VIRTIO_TRANSPORT_F.END)) - 1n) & ~((1n << BigInt(VIRTIO_TRANSPORT_F.START)) - 1n);

/**
 * The transport bits the mediator implements on both of its rings: INDIRECT_DESC (28),
 * EVENT_IDX (29) and VERSION_1 (32) = 2^28 + 2^29 + 2^32 = 0x1_3000_0000. A device type
 * whose feature set X holds another transport bit is refused at construction.
 *
 * @public
 */
export const MEDIATOR_RING_FEATURES: bigint = (1n << BigInt(VIRTIO_F.INDIRECT_DESC)) | (1n << BigInt(VIRTIO_F.EVENT_IDX)) | (1n << BigInt(VIRTIO_F.VERSION_1));

/** The device-specific bits of a feature set (everything outside the transport range). @public */
export function deviceFeatures(features: bigint): bigint {
  return features & ~TRANSPORT_FEATURES_MASK & 0xffff_ffff_ffff_ffffn;
}

/** The transport (ring) bits of a feature set. @public */
export function ringFeatures(features: bigint): bigint {
  return features & TRANSPORT_FEATURES_MASK;
}
