import { vringSize } from '@x/vring';

// The wire constants of the RFC's NTB clients (`drivers/ntb/ntb_virtio.h`, rfc-protocol
// §2.6) and of the mainline NTB endpoint function's control region (`ntb_hw_epf.c` ↔
// `pci-epf-ntb.c`, rfc-protocol §2.11). Kernel names, as `as const` objects.

/**
 * The RFC's scratchpad map (`ntb_virtio.h`, rfc-protocol §2.6): the index of each u32
 * scratchpad. Indexes 1–23… live in the **vhost host's own** scratchpads; the virtio host
 * reaches them as peer scratchpads. Index 0 is the exception: each side writes its type
 * into the *peer's* scratchpad 0.
 *
 * @public
 */
export const NTB_VIRTIO_SPAD = {
  /** `VIRTIO_TYPE`: {@link NTB_VIRTIO_TYPE}, written into the peer's spad 0. */
  VIRTIO_TYPE: 0,
  /** `VHOST_VENDORID`: the vhost device's vendor id (vhost writes). */
  VHOST_VENDORID: 1,
  /** `VHOST_DEVICEID`: the vhost device's device id (vhost writes). */
  VHOST_DEVICEID: 2,
  /** `VHOST_FEATURES_UPPER`: device features, bits 63..32 (vhost writes). */
  VHOST_FEATURES_UPPER: 3,
  /** `VHOST_FEATURES_LOWER`: device features, bits 31..0 (vhost writes). */
  VHOST_FEATURES_LOWER: 4,
  /** `VIRTIO_FEATURES_UPPER`: driver features, bits 63..32 (virtio writes, then FINALIZE_FEATURES). */
  VIRTIO_FEATURES_UPPER: 5,
  /** `VIRTIO_FEATURES_LOWER`: driver features, bits 31..0 (virtio writes). */
  VIRTIO_FEATURES_LOWER: 6,
  /** `VHOST_MW0_SIZE_LOWER`: size of the vhost host's peer memory window 0, bits 31..0. */
  VHOST_MW0_SIZE_LOWER: 7,
  /** `VHOST_MW0_SIZE_UPPER`: size of memory window 0, bits 63..32. */
  VHOST_MW0_SIZE_UPPER: 8,
  /** `VIRTIO_MW0_LOWER_ADDR`: the virtio host's DMA address behind window 0, bits 31..0. */
  VIRTIO_MW0_LOWER_ADDR: 9,
  /** `VIRTIO_MW0_UPPER_ADDR`: the DMA address, bits 63..32. */
  VIRTIO_MW0_UPPER_ADDR: 10,
  /** `VHOST_DEVICE_STATUS`: the virtio status byte (virtio writes, then SET_STATUS; vhost core may clear bits). */
  VHOST_DEVICE_STATUS: 11,
  /** `VHOST_CONFIG_GENERATION`: the configuration generation (vhost writes). */
  VHOST_CONFIG_GENERATION: 12,
  /** `VHOST_COMMAND`: {@link NTB_HOST_CMD} (virtio writes; vhost clears it when it takes the command). */
  VHOST_COMMAND: 13,
  /** `VHOST_COMMAND_STATUS`: {@link NTB_HOST_CMD_STATUS} (vhost writes; virtio resets it to NONE). */
  VHOST_COMMAND_STATUS: 14,
  /** `VHOST_QUEUE_BASE`: `VHOST_QUEUE_NUM_BUFFERS(n)` = 15 + n, for n from 0 to 7. */
  VHOST_QUEUE_BASE: 15,
  /** `VHOST_DEVICE_CFG_SPACE`: first scratchpad of the device configuration space. */
  VHOST_DEVICE_CFG_SPACE: 23,
} as const;

/**
 * `VHOST_QUEUE_NUM_BUFFERS(n)` (`ntb_virtio.h`): the scratchpad holding queue n's size,
 * 15 + n.
 *
 * @public
 */
export function ntbVhostQueueNumBuffers(n: number): number {
  if (typeof n !== 'number') throw new TypeError(`n must be a number, got ${typeof n}`);
  if (!Number.isInteger(n) || n < 0 || n >= NTB_VIRTIO_MAX_VQS) throw new RangeError(`n must be an integer in 0..${NTB_VIRTIO_MAX_VQS - 1}, got ${n}`);
  return NTB_VIRTIO_SPAD.VHOST_QUEUE_BASE + n;
}

/** `enum virtio_type` (`ntb_virtio.h`): what each side writes into the peer's spad 0. @public */
export const NTB_VIRTIO_TYPE = {
  /** `TYPE_VIRTIO`: the virtio host (HOST1) finished its half of the handshake. */
  VIRTIO: 1,
  /** `TYPE_VHOST`: the vhost host (HOST2) published its ids and window size. */
  VHOST: 2,
} as const;

/** `enum host_cmd` (`ntb_virtio.h`; the same values as the PCIe transport, rfc-protocol §2.1). @public */
export const NTB_HOST_CMD = {
  /** `HOST_CMD_NONE`. */
  NONE: 0,
  /** `HOST_CMD_SET_STATUS`: the status byte in spad 11 changed. */
  SET_STATUS: 1,
  /** `HOST_CMD_FINALIZE_FEATURES`: the driver features are in spads 5/6. */
  FINALIZE_FEATURES: 2,
  /** `HOST_CMD_RESET`: reset the device. */
  RESET: 3,
} as const;

/** `enum host_cmd_status` (`ntb_virtio.h`). @public */
export const NTB_HOST_CMD_STATUS = {
  /** `HOST_CMD_STATUS_NONE`. */
  NONE: 0,
  /** `HOST_CMD_STATUS_OKAY`. */
  OKAY: 1,
  /** `HOST_CMD_STATUS_ERROR`. */
  ERROR: 2,
} as const;

/** `MAX_VQS` (`ntb_virtio.h`): queues per device. @public */
export const NTB_VIRTIO_MAX_VQS = 8;

/** `NTB_LINK_DOWN_TIMEOUT` (`ntb_virtio.h`): the handshake's retry period, ms. @public */
export const NTB_VIRTIO_LINK_RETRY_MS = 10;

/** `COMMAND_TIMEOUT` (`ntb_virtio.h`): how long virtio waits for a command status, ms. @public */
export const NTB_VIRTIO_COMMAND_TIMEOUT_MS = 1000;

/** The vhost host's command poll period (`ntb_vhost_cmd_handler` re-queues itself every 1 ms). @public */
export const NTB_VHOST_COMMAND_POLL_MS = 1;

/**
 * `BUFFER_OFFSET` (`ntb_virtio.c`): the memory window holds the rings in [0, 0x20000)
 * and the buffer pool (`gen_pool`, RFC patch 12 `alloc_buffer`) in [0x20000, size).
 *
 * @public
 */
export const NTB_VIRTIO_BUFFER_OFFSET = 0x20000;

/**
 * The one ring alignment both sides use: 4096 (`VIRTIO_PCI_VRING_ALIGN`, the legacy
 * vring alignment). The RFC's virtio side used the window's `xlat_align` instead while
 * the vhost side used 4096 (rfc-protocol §2.6, "inconsistency"); here both use this.
 *
 * @public
 */
export const NTB_VIRTIO_VRING_ALIGN = 4096;

/**
 * The doorbell bits of the NTB virtio protocol, defined explicitly (the RFC passed a
 * queue index where `ntb_peer_db_set` expects a bit mask, rfc-protocol §2.6): bit `i` of
 * the doorbell is queue `i` for i from 0 to 7, in both directions (virtio → vhost: a kick;
 * vhost → virtio: a used-buffer interrupt). Two more bits, used when the device's valid
 * mask has them (otherwise the RFC's polling is all there is): a configuration change
 * (vhost → virtio) and a command (virtio → vhost: "a command is in spad 13"; vhost →
 * virtio: "its status is in spad 14").
 *
 * @public
 */
export const NTB_VIRTIO_DB = {
  /** Bit of queue 0; queue i is bit `QUEUE0 + i`, for i below {@link NTB_VIRTIO_MAX_VQS}. */
  QUEUE0: 0,
  /** Configuration-change interrupt, vhost → virtio. */
  CONFIG: 8,
  /** Command written / command answered. */
  COMMAND: 9,
} as const;

/**
 * The doorbell bit mask of queue `index` (bit i = queue i, {@link NTB_VIRTIO_DB}).
 *
 * @public
 */
export function ntbVirtioQueueDbBits(index: number): number {
  if (typeof index !== 'number') throw new TypeError(`index must be a number, got ${typeof index}`);
  if (!Number.isInteger(index) || index < 0 || index >= NTB_VIRTIO_MAX_VQS) {
    throw new RangeError(`index must be an integer in 0..${NTB_VIRTIO_MAX_VQS - 1}, got ${index}`);
  }
  return 1 << (NTB_VIRTIO_DB.QUEUE0 + index);
}

/**
 * The control region of the NTB endpoint function (mainline `struct epf_ntb_ctrl`,
 * `__packed`, in BAR0 of each endpoint controller, rfc-protocol §2.11): byte offsets.
 * Little-endian; `CMD_STATUS` and `LINK_STATUS` are u16, everything else u32.
 *
 * @public
 */
export const NTB_EPF_CTRL = {
  /** `NTB_EPF_COMMAND` (u32): {@link NTB_EPF_CMD}, written by the host, cleared by the function. */
  COMMAND: 0x00,
  /** `NTB_EPF_ARGUMENT` (u32): bits 0–15 doorbell count, bit 16 MSI-X; or a window index. */
  ARGUMENT: 0x04,
  /** `NTB_EPF_CMD_STATUS` (u16): {@link NTB_EPF_CMD_STATUS}; the host writes 0 after reading it. */
  CMD_STATUS: 0x08,
  /** `NTB_EPF_LINK_STATUS` (u16): bit 0 = link up. */
  LINK_STATUS: 0x0a,
  /** `NTB_EPF_TOPOLOGY` (u32). */
  TOPOLOGY: 0x0c,
  /** `NTB_EPF_LOWER_ADDR` (u32): CONFIGURE_MW address, bits 31..0. */
  ADDR_LOWER: 0x10,
  /** `NTB_EPF_UPPER_ADDR` (u32): bits 63..32. */
  ADDR_UPPER: 0x14,
  /** `NTB_EPF_LOWER_SIZE` (u32): CONFIGURE_MW size, bits 31..0. */
  SIZE_LOWER: 0x18,
  /** `NTB_EPF_UPPER_SIZE` (u32): bits 63..32. */
  SIZE_UPPER: 0x1c,
  /** `NTB_EPF_MW_COUNT` (u32). */
  MW_COUNT: 0x20,
  /** `NTB_EPF_MW1_OFFSET` (u32): where memory window 1 starts in the doorbell BAR. */
  MW1_OFFSET: 0x24,
  /** `NTB_EPF_SPAD_OFFSET` (u32): where the self scratchpads start in BAR0. */
  SPAD_OFFSET: 0x28,
  /** `NTB_EPF_SPAD_COUNT` (u32). */
  SPAD_COUNT: 0x2c,
  /** `NTB_EPF_DB_ENTRY_SIZE` (u32): bytes between two doorbell entries in the doorbell BAR. */
  DB_ENTRY_SIZE: 0x30,
  /** `NTB_EPF_DB_DATA(0)` (u32 each): `DB_DATA(n)` = 0x34 + 4n, for n from 0 to 31. */
  DB_DATA: 0x34,
  /** `NTB_EPF_DB_OFFSET(0)` (u32 each): `DB_OFFSET(n)` = 0xB4 + 4n, for n from 0 to 31. */
  DB_OFFSET: 0xb4,
  /** `sizeof(struct epf_ntb_ctrl)`: 0xB4 + 32·4 = 0x134. */
  SIZE: 0x134,
} as const;

/** `COMMAND_*` of the NTB endpoint function (`pci-epf-ntb.c`, `ntb_hw_epf.c`). @public */
export const NTB_EPF_CMD = {
  /** `CMD_CONFIGURE_DOORBELL`: argument = doorbell count (bits 0–15) | MSI-X (bit 16). */
  CONFIGURE_DOORBELL: 1,
  /** `CMD_TEARDOWN_DOORBELL`. */
  TEARDOWN_DOORBELL: 2,
  /** `CMD_CONFIGURE_MW`: argument = window index; address and size in ADDR/SIZE. */
  CONFIGURE_MW: 3,
  /** `CMD_TEARDOWN_MW`: argument = window index. */
  TEARDOWN_MW: 4,
  /** `CMD_LINK_UP`. */
  LINK_UP: 5,
  /** `CMD_LINK_DOWN`. */
  LINK_DOWN: 6,
} as const;

/** `COMMAND_STATUS_*` of the NTB endpoint function. @public */
export const NTB_EPF_CMD_STATUS = {
  /** Not answered yet (the host writes 0 after it read an answer). */
  NONE: 0,
  /** `COMMAND_STATUS_OK`. */
  OK: 1,
  /** `COMMAND_STATUS_ERROR`. */
  ERROR: 2,
} as const;

/** `MSIX_ENABLE` (`ntb_hw_epf.c`): bit 16 of the CONFIGURE_DOORBELL argument. @public */
export const NTB_EPF_MSIX_ENABLE = 0x1_0000;

/** `LINK_STATUS_UP` (`ntb_hw_epf.c`): bit 0 of LINK_STATUS. @public */
export const NTB_EPF_LINK_STATUS_UP = 1;

/** `NTB_EPF_COMMAND_TIMEOUT` (`ntb_hw_epf.c`): 1000 ms. @public */
export const NTB_EPF_COMMAND_TIMEOUT_MS = 1000;

/** `NTB_EPF_MIN_DB_COUNT` / `NTB_EPF_MAX_DB_COUNT` (`ntb_hw_epf.c`): doorbells a host asks for. @public */
export const NTB_EPF_DB_COUNT = {
  /** At least 3 doorbells (4 vectors with the link vector). */
  MIN: 3,
  /** At most 31 doorbells (32 vectors). */
  MAX: 31,
} as const;

/** The function's command poll period (`epf_ntb_cmd_handler` re-queues itself every 5 ms). @public */
export const NTB_EPF_POLL_PERIOD_MS = 5;

/**
 * Where queue `index`'s ring starts in the memory window: after the rings of queues
 * 0..index−1, each `vring_size(num_j, 4096)` rounded up to 4096 (`nums[j]` = the size
 * the vhost host published, 0 = no queue). The RFC placed queue i at
 * `i · vring_size(num, align)`, which for num = 256 is 10246 — a descriptor table 6 bytes
 * off the 16-byte alignment VIRTIO 1.2 §2.7 requires; rounding each ring up closes that.
 *
 * @public
 */
export function ntbVirtioQueueOffset(nums: ArrayLike<number>, index: number): number {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= NTB_VIRTIO_MAX_VQS) {
    throw new RangeError(`index must be an integer in 0..${NTB_VIRTIO_MAX_VQS - 1}, got ${index}`);
  }
  let offset = 0;
  for (let j = 0; j < index; j++) offset += ntbVirtioRingSpan(nums[j] ?? 0);
  return offset;
}

/**
 * Bytes one ring of `num` entries takes in the memory window: `vring_size(num, 4096)`
 * rounded up to 4096; 0 for `num` 0 (no queue).
 *
 * @public
 */
export function ntbVirtioRingSpan(num: number): number {
  if (num === 0) return 0;
  const n = vringSize(num, NTB_VIRTIO_VRING_ALIGN);
  return Math.ceil(n / NTB_VIRTIO_VRING_ALIGN) * NTB_VIRTIO_VRING_ALIGN;
}
