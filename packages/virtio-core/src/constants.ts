/**
 * Device status bits (VIRTIO 1.2 §2.1, Linux `include/uapi/linux/virtio_config.h`
 * `VIRTIO_CONFIG_S_*`). The driver sets them one at a time in the order of §3.1.1;
 * only a reset clears them.
 *
 * @public
 */
export const VIRTIO_CONFIG_S = {
  /** The guest OS has found the device and recognised it as a virtio device. */
  ACKNOWLEDGE: 1,
  /** The guest OS knows how to drive the device. */
  DRIVER: 2,
  /** The driver is set up and ready to drive the device. */
  DRIVER_OK: 4,
  /** The driver has acknowledged the features it understands; negotiation is complete. */
  FEATURES_OK: 8,
  /** Set by the device only: it hit an error it cannot recover from without a reset. */
  NEEDS_RESET: 64,
  /** The driver gave up on the device. */
  FAILED: 128,
} as const;

/**
 * Reserved (transport) feature bits (VIRTIO 1.3 §6, Linux `VIRTIO_F_*` and
 * `VIRTIO_RING_F_*`). Bit numbers, not masks: use {@link featuresFromBits} for a mask.
 *
 * @public
 */
export const VIRTIO_F = {
  /** 24, legacy only: notify when the avail ring is empty. */
  NOTIFY_ON_EMPTY: 24,
  /** 27, legacy only: the device accepts any descriptor layout. */
  ANY_LAYOUT: 27,
  /** 28 (`VIRTIO_RING_F_INDIRECT_DESC`): indirect descriptor tables (§2.7.5.3). */
  INDIRECT_DESC: 28,
  /** 29 (`VIRTIO_RING_F_EVENT_IDX`): `used_event` / `avail_event` (§2.7.7, §2.7.10). */
  EVENT_IDX: 29,
  /** 32: a VIRTIO 1.x (non-legacy) device. */
  VERSION_1: 32,
  /** 33 (formerly IOMMU_PLATFORM): the device is behind a platform IOMMU. */
  ACCESS_PLATFORM: 33,
  /** 34: packed virtqueues (§2.8). */
  RING_PACKED: 34,
  /** 35: buffers are used in the order they were made available. */
  IN_ORDER: 35,
  /** 36: memory accesses are ordered the way the platform orders them. */
  ORDER_PLATFORM: 36,
  /** 37: the device supports single-root I/O virtualisation. */
  SR_IOV: 37,
  /** 38: the driver passes extra data in available-buffer notifications (§2.9). */
  NOTIFICATION_DATA: 38,
  /** 39: the device gives the driver the notification config data. */
  NOTIF_CONFIG_DATA: 39,
  /** 40: individual queues can be reset. */
  RING_RESET: 40,
  /** 41 (VIRTIO 1.3): the device has an administration virtqueue. */
  ADMIN_VQ: 41,
} as const;

/**
 * The range of reserved (transport) feature bits: `START` ≤ bit \< `END`. VIRTIO 1.3 §6
 * reserves 24–41 (1.2: 24–40); Linux's `VIRTIO_TRANSPORT_F_START` is 28 because 24 and
 * 27 are legacy-only, but they are transport bits all the same.
 *
 * @public
 */
export const VIRTIO_TRANSPORT_F = {
  /** First reserved bit (24). */
  START: 24,
  /** One past the last reserved bit (41 + 1 = 42). */
  END: 42,
} as const;

/**
 * Device IDs (VIRTIO 1.2 §5 intro table, Linux `include/uapi/linux/virtio_ids.h`).
 * `VIRTIO_ID['9P']` keeps the kernel's name, which is not a JS identifier.
 *
 * Note: the spec only reserves 7 (rpmsg); the device is defined by the Linux and
 * OpenAMP code.
 *
 * @public
 */
export const VIRTIO_ID = {
  /** 1: network card. */
  NET: 1,
  /** 2: block device. */
  BLOCK: 2,
  /** 3: console. */
  CONSOLE: 3,
  /** 4: entropy source. */
  RNG: 4,
  /** 5: traditional memory balloon. */
  BALLOON: 5,
  /** 6: ioMemory. */
  IOMEM: 6,
  /** 7: remote processor messaging (rpmsg). */
  RPMSG: 7,
  /** 8: SCSI host. */
  SCSI: 8,
  /** 9: 9P transport. */
  '9P': 9,
  /** 10: mac80211 WLAN. */
  MAC80211_WLAN: 10,
  /** 11: remoteproc serial link. */
  RPROC_SERIAL: 11,
  /** 12: CAIF. */
  CAIF: 12,
  /** 13: memory balloon. */
  MEMORY_BALLOON: 13,
  /** 16: GPU. */
  GPU: 16,
  /** 17: timer / clock. */
  CLOCK: 17,
  /** 18: input. */
  INPUT: 18,
  /** 19: socket (vsock). */
  VSOCK: 19,
  /** 20: crypto. */
  CRYPTO: 20,
  /** 21: signal distribution. */
  SIGNAL_DIST: 21,
  /** 22: pstore. */
  PSTORE: 22,
  /** 23: IOMMU. */
  IOMMU: 23,
  /** 24: memory. */
  MEM: 24,
  /** 25: sound. */
  SOUND: 25,
  /** 26: file system. */
  FS: 26,
  /** 27: persistent memory. */
  PMEM: 27,
  /** 28: RPMB. */
  RPMB: 28,
  /** 29: mac80211 hwsim. */
  MAC80211_HWSIM: 29,
  /** 30: video encoder. */
  VIDEO_ENCODER: 30,
  /** 31: video decoder. */
  VIDEO_DECODER: 31,
  /** 32: SCMI. */
  SCMI: 32,
  /** 33: Nitro secure module. */
  NITRO_SEC_MOD: 33,
  /** 34: I2C adapter. */
  I2C_ADAPTER: 34,
  /** 35: watchdog. */
  WATCHDOG: 35,
  /** 36: CAN. */
  CAN: 36,
  /** 37: dmabuf. */
  DMABUF: 37,
  /** 38: parameter server. */
  PARAM_SERV: 38,
  /** 39: audio policy. */
  AUDIO_POLICY: 39,
  /** 40: Bluetooth. */
  BT: 40,
  /** 41: GPIO. */
  GPIO: 41,
} as const;

/**
 * Wildcard in a driver's id table (Linux `VIRTIO_DEV_ANY_ID`, `mod_devicetable.h`):
 * matches any device ID or any vendor.
 *
 * @public
 */
export const VIRTIO_DEV_ANY_ID = 0xffffffff;

/**
 * Alignment of every buffer that {@link VirtioDevice.allocBuffer} returns: 16 bytes, the
 * strictest alignment of any split-ring structure (the descriptor table, §2.7), so a
 * buffer can also hold an indirect table.
 *
 * @public
 */
export const VIRTIO_BUFFER_ALIGN = 16;

/** Mask of one feature bit. */
function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/**
 * The transport bits that core negotiates on every driver's behalf, because `@x/vring`
 * implements them: INDIRECT_DESC (28), EVENT_IDX (29) and VERSION_1 (32), i.e.
 * 2^28 + 2^29 + 2^32 = 0x1_3000_0000. Like Linux `vring_transport_features()`, every
 * other bit of {@link VIRTIO_TRANSPORT_F} is left unaccepted. A transport can narrow
 * this set with {@link VirtioConfigOps.transportFeatures}.
 *
 * @public
 */
export const CORE_TRANSPORT_FEATURES: bigint = bit(VIRTIO_F.INDIRECT_DESC) | bit(VIRTIO_F.EVENT_IDX) | bit(VIRTIO_F.VERSION_1);

/** 2^64 − 1: the feature words are two 32-bit registers. */
const FEATURES_MAX = (1n << 64n) - 1n;

/**
 * A feature mask from bit numbers (each an integer 0…63). Cold path.
 *
 * @public
 */
export function featuresFromBits(bits: Iterable<number>): bigint {
  let m = 0n;
  for (const b of bits) {
    if (typeof b !== 'number') throw new TypeError(`feature bit must be a number, got ${typeof b}`);
    if (!Number.isInteger(b) || b < 0 || b > 63) throw new RangeError(`feature bit must be an integer in 0..63, got ${b}`);
    m |= bit(b);
  }
  return m;
}

/**
 * The bit numbers set in a 64-bit feature mask, ascending. Cold path.
 *
 * @public
 */
export function bitsFromFeatures(features: bigint): number[] {
  if (typeof features !== 'bigint') throw new TypeError(`features must be a bigint, got ${typeof features}`);
  if (features < 0n || features > FEATURES_MAX) throw new RangeError('features must be in [0, 2^64)');
  const out: number[] = [];
  for (let i = 0; i < 64; i++) if (((features >> BigInt(i)) & 1n) === 1n) out.push(i);
  return out;
}

/** @internal */
export function isFeatureWord(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= 0n && v <= FEATURES_MAX;
}

/** @internal True for a bit in the reserved transport range. */
export function isTransportBit(b: number): boolean {
  return b >= VIRTIO_TRANSPORT_F.START && b < VIRTIO_TRANSPORT_F.END;
}
