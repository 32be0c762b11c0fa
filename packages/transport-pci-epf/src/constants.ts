/**
 * The RFC's BAR register block (rfc-protocol §2.1; `struct epf_vhost_reg` of
 * pci-epf-vhost.c and virtio_pci_epf.c, `__packed`, little-endian in the model): byte
 * offsets of the device part. Queue `n` (below {@link EPF_VHOST_MAX_VQS}) starts at
 * `QUEUE + n × QUEUE_STRIDE`; see {@link EPF_VHOST_QUEUE_REG} for its fields.
 *
 * @public
 */
export const EPF_VHOST_REG = {
  /** u64, EP writes: device features (the RC reads 0x00 low, 0x04 high). */
  HOST_FEATURES: 0x00,
  /** u64, RC writes: driver features (0x08 low, 0x0C high). */
  GUEST_FEATURES: 0x08,
  /** u16, RC writes: configuration-change vector (then reads it back). */
  MSIX_CONFIG: 0x10,
  /** u16, EP writes: queues created (the RFC never wrote it; this model does). */
  NUM_QUEUES: 0x12,
  /** u8, RC writes (EP may correct it): device status. */
  DEVICE_STATUS: 0x14,
  /** u8, EP writes: configuration generation (unused in the RFC; counts device-config changes here). */
  CONFIG_GENERATION: 0x15,
  /** u32, EP sets, RC reads to clear: bit 0 queue interrupt, bit 1 configuration change (INTx). */
  ISR: 0x16,
  /** u8, RC writes: device command ({@link EPF_VHOST_HOST_CMD}). */
  CMD: 0x1a,
  /** u8, EP writes the result, RC writes NONE after reading it ({@link EPF_VHOST_CMD_STATUS}). */
  CMD_STATUS: 0x1b,
  /** First queue block. */
  QUEUE: 0x1c,
  /** Bytes per queue block. */
  QUEUE_STRIDE: 16,
  /** End of the RFC's struct: 0x1C + 8 × 16 = 0x9C (156 bytes). */
  END: 0x9c,
} as const;

/**
 * Fields of one queue block of the RFC's register block (rfc-protocol §2.1), relative
 * to `EPF_VHOST_REG.QUEUE + n × 16`.
 *
 * @public
 */
export const EPF_VHOST_QUEUE_REG = {
  /** u8, RC writes: queue command ({@link EPF_VHOST_QUEUE_CMD}). */
  CMD: 0,
  /** u8, EP writes the result, RC writes NONE after reading it. */
  CMD_STATUS: 1,
  /** u16, EP writes: bit 0 = ENABLE ({@link EPF_VHOST_Q_STATUS_ENABLE}). */
  STATUS: 2,
  /** u16, EP writes the ring size; 0 = no such queue. The RC may write a smaller power of two before ACTIVATE (this model). */
  NUM_BUFFERS: 4,
  /** u16, RC writes: the queue's MSI-X (or MSI) vector; 0xFFFF = none. */
  MSIX_VECTOR: 6,
  /** u64, RC writes: RC bus address of the legacy contiguous ring (low +8, high +0xC). */
  QUEUE_ADDR: 8,
} as const;

/** The RFC's MAX_VQS: queue blocks in the register block (rfc-protocol §2.10). @public */
export const EPF_VHOST_MAX_VQS = 8;

/** Bit 0 of a queue's `status`: the EP activated the ring. @public */
export const EPF_VHOST_Q_STATUS_ENABLE = 1;

/** The RFC's device commands (`enum host_cmd`, rfc-protocol §2.1). @public */
export const EPF_VHOST_HOST_CMD = {
  /** No command pending. */
  NONE: 0,
  /** The RC wrote `device_status`; the EP raises NOTIFY_SET_STATUS. */
  SET_STATUS: 1,
  /** The RC wrote `guest_features`; the EP raises NOTIFY_FINALIZE_FEATURES. */
  FINALIZE_FEATURES: 2,
  /** The EP raises NOTIFY_RESET. */
  RESET: 3,
} as const;

/** The RFC's queue commands (`enum queue_cmd`, rfc-protocol §2.1). @public */
export const EPF_VHOST_QUEUE_CMD = {
  /** No command pending. */
  NONE: 0,
  /** Map the ring at `queue_addr` and set ENABLE. */
  ACTIVATE: 1,
  /** Unmap the ring and clear ENABLE. */
  DEACTIVATE: 2,
  /** The RC kicked the queue (posted in this model: the EP writes no status for it). */
  NOTIFY: 3,
} as const;

/** The RFC's command results (`enum host_cmd_status` / `queue_cmd_status`). @public */
export const EPF_VHOST_CMD_STATUS = {
  /** No result (the RC writes it after reading one). */
  NONE: 0,
  /** Done. */
  OKAY: 1,
  /** Refused (the RC returns -EINVAL). */
  ERROR: 2,
} as const;

/**
 * This model's extension block, right after the RFC's struct rounded up to 8 bytes
 * (0x9C → 0xA0), and the device-configuration area the RFC reserved but never defined.
 * The RC finds the register block by scanning every BAR for {@link EPF_VHOST_MAGIC} at
 * `MAGIC` (the RFC assumed BAR 0). The MSI-X table follows the device-config area in the
 * same BAR, as in the RFC.
 *
 * @public
 */
export const EPF_VHOST_EXT = {
  /** u32, EP writes: {@link EPF_VHOST_MAGIC}. */
  MAGIC: 0xa0,
  /** u16, EP writes: {@link EPF_VHOST_EXT_VERSION}. */
  VERSION: 0xa4,
  /** u16, EP writes: {@link EPF_VHOST_EXT_F} bits. */
  FLAGS: 0xa6,
  /** u8, EP writes: the BAR holding the RC→EP doorbell (valid with `EPF_VHOST_EXT_F.DOORBELL`). */
  DB_BAR: 0xa8,
  /** u32, EP writes: the doorbell's offset in that BAR; write a {@link EPF_VHOST_DB} value there. */
  DB_OFFSET: 0xac,
  /** u32, EP writes: its command poll period in µs (0 with a doorbell). */
  POLL_PERIOD_US: 0xb0,
  /** u32, EP writes: offset of the device-configuration area ({@link EPF_VHOST_DEVICE_CFG}). */
  DEVICE_CFG_OFFSET: 0xb4,
  /** u32, EP writes: bytes of device configuration the device defines (≤ 1 KiB). */
  DEVICE_CFG_SIZE: 0xb8,
  /** u16, EP writes: queue blocks in the register block (8). */
  MAX_QUEUES: 0xbc,
  /** End of the extension block. */
  END: 0xc0,
} as const;

/** "vhep" read as a little-endian u32 at `EPF_VHOST_EXT.MAGIC`: 0x76 'v', 0x68 'h', 0x65 'e', 0x70 'p' → 0x70656876. @public */
export const EPF_VHOST_MAGIC = 0x70656876;

/** Version of {@link EPF_VHOST_EXT}. @public */
export const EPF_VHOST_EXT_VERSION = 1;

/** Bits of `EPF_VHOST_EXT.FLAGS`. @public */
export const EPF_VHOST_EXT_F = {
  /** The EP has an RC→EP doorbell (mainline 2025); commands and kicks ring it instead of waiting for the poller. */
  DOORBELL: 1,
  /** The EP signals command completion on the RC's event line (the RC still polls `cmd_status`). */
  CMD_DONE_EVENT: 2,
} as const;

/**
 * Values written to the doorbell (`EPF_VHOST_EXT.DB_OFFSET`): each is one doorbell
 * event id (like the data of a GIC ITS translation register).
 *
 * @public
 */
export const EPF_VHOST_DB = {
  /** A device command was written to `cmd`. */
  DEVICE_CMD: 0,
  /** A queue command was written to some queue's `cmd`. */
  QUEUE_CMD: 1,
  /** Queue `n` was kicked: `KICK + n` (replaces the NOTIFY command). */
  KICK: 2,
} as const;

/**
 * The device-configuration area of the RFC BAR (the "1 KiB device-config reserve" of
 * rfc-protocol §2.1, at the offset SigmaStar's RC uses), and the MSI-X table after it.
 *
 * @public
 */
export const EPF_VHOST_DEVICE_CFG = {
  /** Offset of device configuration in the BAR. */
  OFFSET: 0x110,
  /** Bytes reserved: 1 KiB. */
  SIZE: 0x400,
  /** The MSI-X table follows: 0x110 + 0x400 = 0x510. */
  MSIX_TABLE: 0x510,
} as const;

/** The RFC's EPF interrupt count: 9 MSI and 9 MSI-X vectors (rfc-protocol §2.3, §2.10). @public */
export const EPF_VHOST_IRQ_VECTORS = 9;

/** The RFC's ring alignment (rfc-protocol §2.10). @public */
export const EPF_VHOST_VRING_ALIGN = 4096;

/** The RFC's EP command poll period, ms (rfc-protocol §2.2). @public */
export const EPF_VHOST_POLL_PERIOD_MS = 1;

/** The RFC RC driver's command timeout, ms (Kishon's 1 s, rfc-protocol §2.2). @public */
export const EPF_VHOST_CMD_TIMEOUT_MS = 1000;

/** TI's PCI ids that the RFC's RC driver matches (DRA74x, DRA72x). @public */
export const PCI_ID_TI = {
  /** Texas Instruments. */
  VENDOR: 0x104c,
  /** DRA74x. */
  DRA74X: 0xb500,
  /** DRA72x. */
  DRA72X: 0xb501,
} as const;

/** A 16-bit PCI id that matches any (`PCI_ANY_ID` truncated to the register). @public */
export const PCI_ANY_ID16 = 0xffff;

/** "No vector" for MSI-X vector registers (Linux `VIRTIO_MSI_NO_VECTOR`). @public */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/**
 * Type 0 configuration header offsets (Linux `include/uapi/linux/pci_regs.h`) and the
 * bits this model uses.
 *
 * @public
 */
export const PCI_CFG = {
  /** u16 `PCI_VENDOR_ID`. */
  VENDOR_ID: 0x00,
  /** u16 `PCI_DEVICE_ID`. */
  DEVICE_ID: 0x02,
  /** u16 `PCI_COMMAND`. */
  COMMAND: 0x04,
  /** u16 `PCI_STATUS`. */
  STATUS: 0x06,
  /** u8 `PCI_REVISION_ID`. */
  REVISION_ID: 0x08,
  /** u8 `PCI_CLASS_PROG`. */
  CLASS_PROG: 0x09,
  /** u8 subclass (`PCI_CLASS_DEVICE` low byte). */
  SUBCLASS: 0x0a,
  /** u8 base class (`PCI_CLASS_DEVICE` high byte). */
  BASE_CLASS: 0x0b,
  /** u8 `PCI_HEADER_TYPE`. */
  HEADER_TYPE: 0x0e,
  /** u32 `PCI_BASE_ADDRESS_0`; BAR n at 0x10 + 4n. */
  BAR0: 0x10,
  /** u16 `PCI_SUBSYSTEM_VENDOR_ID`. */
  SUBSYSTEM_VENDOR_ID: 0x2c,
  /** u16 `PCI_SUBSYSTEM_ID`. */
  SUBSYSTEM_ID: 0x2e,
  /** u8 `PCI_CAPABILITY_LIST`. */
  CAPABILITY_LIST: 0x34,
  /** u8 `PCI_INTERRUPT_LINE`. */
  INTERRUPT_LINE: 0x3c,
  /** u8 `PCI_INTERRUPT_PIN` (1 = INTA). */
  INTERRUPT_PIN: 0x3d,
  /** First byte after the header: capabilities start here. */
  CAP_START: 0x40,
  /** Bytes of configuration space (PCIe extended). */
  SIZE: 0x1000,
  /** `PCI_COMMAND_MEMORY`. */
  COMMAND_MEMORY: 0x2,
  /** `PCI_COMMAND_MASTER`. */
  COMMAND_MASTER: 0x4,
  /** `PCI_COMMAND_INTX_DISABLE`. */
  COMMAND_INTX_DISABLE: 0x400,
  /** `PCI_STATUS_INTERRUPT`. */
  STATUS_INTERRUPT: 0x8,
  /** `PCI_STATUS_CAP_LIST`. */
  STATUS_CAP_LIST: 0x10,
  /** `PCI_BASE_ADDRESS_MEM_TYPE_64`. */
  BAR_MEM_TYPE_64: 0x4,
  /** `PCI_BASE_ADDRESS_MEM_PREFETCH`. */
  BAR_MEM_PREFETCH: 0x8,
  /** `PCI_CLASS_OTHERS` (base class 0xff): the RFC's EP header class. */
  CLASS_OTHERS: 0xff,
} as const;

/** Capability ids (`PCI_CAP_ID_*`). @public */
export const PCI_CAP_ID = {
  /** Message Signalled Interrupts. */
  MSI: 0x05,
  /** Vendor-specific (virtio-pci uses it). */
  VNDR: 0x09,
  /** MSI-X. */
  MSIX: 0x11,
} as const;

/** MSI capability, 64-bit layout (Linux `PCI_MSI_*`). @public */
export const PCI_MSI = {
  /** u16 Message Control. */
  FLAGS: 0x02,
  /** u32 Message Address. */
  ADDRESS_LO: 0x04,
  /** u32 Message Upper Address. */
  ADDRESS_HI: 0x08,
  /** u16 Message Data. */
  DATA: 0x0c,
  /** Bytes of the capability (rounded to 16). */
  SIZE: 0x10,
  /** `PCI_MSI_FLAGS_ENABLE`. */
  FLAGS_ENABLE: 0x0001,
  /** `PCI_MSI_FLAGS_QMASK`: Multiple Message Capable, log2 of the vectors the function asks. */
  FLAGS_QMASK: 0x000e,
  /** `PCI_MSI_FLAGS_QSIZE`: Multiple Message Enable, log2 of the vectors the host granted. */
  FLAGS_QSIZE: 0x0070,
  /** `PCI_MSI_FLAGS_64BIT`. */
  FLAGS_64BIT: 0x0080,
} as const;

/** MSI-X capability and table entry (Linux `PCI_MSIX_*`). @public */
export const PCI_MSIX = {
  /** u16 Message Control. */
  FLAGS: 0x02,
  /** u32 table offset | BIR. */
  TABLE: 0x04,
  /** u32 PBA offset | BIR. */
  PBA: 0x08,
  /** Bytes of the capability (rounded to 16). */
  SIZE: 0x10,
  /** `PCI_MSIX_FLAGS_QSIZE`: table size − 1. */
  FLAGS_QSIZE: 0x07ff,
  /** `PCI_MSIX_FLAGS_MASKALL`. */
  FLAGS_MASKALL: 0x4000,
  /** `PCI_MSIX_FLAGS_ENABLE`. */
  FLAGS_ENABLE: 0x8000,
  /** `PCI_MSIX_TABLE_BIR`. */
  BIR_MASK: 0x7,
  /** Table entry: u32 `PCI_MSIX_ENTRY_LOWER_ADDR`. */
  ENTRY_LOWER_ADDR: 0x0,
  /** Table entry: u32 `PCI_MSIX_ENTRY_UPPER_ADDR`. */
  ENTRY_UPPER_ADDR: 0x4,
  /** Table entry: u32 `PCI_MSIX_ENTRY_DATA`. */
  ENTRY_DATA: 0x8,
  /** Table entry: u32 `PCI_MSIX_ENTRY_VECTOR_CTRL` (bit 0 masked). */
  ENTRY_VECTOR_CTRL: 0xc,
  /** Bytes per table entry. */
  ENTRY_SIZE: 16,
} as const;

/** The address the model's root complex gives MSI / MSI-X messages (its interrupt controller). @public */
export const RC_MSI_ADDRESS = 0xfee0_0000;

/** virtio-pci ids (VIRTIO 1.2 §4.1.2). @public */
export const VIRTIO_PCI_ID = {
  /** Vendor 0x1AF4 (Red Hat). */
  VENDOR: 0x1af4,
  /** Modern device id = 0x1040 + virtio device id. */
  MODERN_BASE: 0x1040,
} as const;

/** `virtio_pci_cap` fields and `cfg_type` values (VIRTIO 1.2 §4.1.4). @public */
export const VIRTIO_PCI_CAP = {
  /** u8 cap_vndr (0x09). */
  VNDR: 0,
  /** u8 cap_next. */
  NEXT: 1,
  /** u8 cap_len. */
  LEN: 2,
  /** u8 cfg_type. */
  CFG_TYPE: 3,
  /** u8 bar. */
  BAR: 4,
  /** u8 id. */
  ID: 5,
  /** le32 offset within the BAR. */
  OFFSET: 8,
  /** le32 length. */
  LENGTH: 12,
  /** Bytes of `virtio_pci_cap`. */
  SIZE: 16,
  /** le32 notify_off_multiplier of `virtio_pci_notify_cap` (cap_len 20). */
  NOTIFY_OFF_MULTIPLIER: 16,
  /** cfg_type: common configuration. */
  COMMON_CFG: 1,
  /** cfg_type: notifications. */
  NOTIFY_CFG: 2,
  /** cfg_type: ISR status. */
  ISR_CFG: 3,
  /** cfg_type: device-specific configuration. */
  DEVICE_CFG: 4,
  /** cfg_type: PCI configuration access. */
  PCI_CFG: 5,
} as const;

/**
 * `struct virtio_pci_common_cfg` offsets (VIRTIO 1.2 §4.1.4.3; Linux
 * `VIRTIO_PCI_COMMON_*`), with the 1.3 admin-queue fields; 64 bytes.
 *
 * @public
 */
export const VIRTIO_PCI_COMMON = {
  /** le32 device_feature_select. */
  DFSELECT: 0x00,
  /** le32 device_feature (RO). */
  DF: 0x04,
  /** le32 driver_feature_select. */
  GFSELECT: 0x08,
  /** le32 driver_feature. */
  GF: 0x0c,
  /** le16 config_msix_vector. */
  MSIX: 0x10,
  /** le16 num_queues (RO). */
  NUMQ: 0x12,
  /** u8 device_status. */
  STATUS: 0x14,
  /** u8 config_generation (RO). */
  CFGGENERATION: 0x15,
  /** le16 queue_select. */
  Q_SELECT: 0x16,
  /** le16 queue_size. */
  Q_SIZE: 0x18,
  /** le16 queue_msix_vector. */
  Q_MSIX: 0x1a,
  /** le16 queue_enable. */
  Q_ENABLE: 0x1c,
  /** le16 queue_notify_off (RO). */
  Q_NOFF: 0x1e,
  /** le64 queue_desc, low half. */
  Q_DESCLO: 0x20,
  /** le64 queue_desc, high half. */
  Q_DESCHI: 0x24,
  /** le64 queue_driver (avail), low half. */
  Q_AVAILLO: 0x28,
  /** le64 queue_driver, high half. */
  Q_AVAILHI: 0x2c,
  /** le64 queue_device (used), low half. */
  Q_USEDLO: 0x30,
  /** le64 queue_device, high half. */
  Q_USEDHI: 0x34,
  /** le16 queue_notify_data (1.2; `queue_notif_config_data` in 1.3) (RO). */
  Q_NDATA: 0x38,
  /** le16 queue_reset. */
  Q_RESET: 0x3a,
  /** le16 admin_queue_index (1.3, RO). */
  ADM_Q_IDX: 0x3c,
  /** le16 admin_queue_num (1.3, RO). */
  ADM_Q_NUM: 0x3e,
  /** Bytes of the structure (1.3). */
  SIZE: 0x40,
} as const;

/** ISR status bits (VIRTIO 1.2 §4.1.4.5). @public */
export const VIRTIO_PCI_ISR = {
  /** A queue interrupt. */
  QUEUE: 1,
  /** A configuration-change interrupt. */
  CONFIG: 2,
} as const;

/**
 * Where the mode-2 endpoint function puts each virtio-pci structure in its BAR (4 KiB
 * apart, as QEMU's virtio-pci does).
 *
 * @public
 */
export const VIRTIO_PCI_EPF_LAYOUT = {
  /** Common configuration (emulated registers). */
  COMMON: 0x0000,
  /** ISR status (one byte, read-to-clear). */
  ISR: 0x1000,
  /** Device configuration. */
  DEVICE: 0x2000,
  /** Bytes of device configuration. */
  DEVICE_SIZE: 0x1000,
  /** Notification area: queue n at NOTIFY + n × NOTIFY_MULTIPLIER. */
  NOTIFY: 0x3000,
  /** notify_off_multiplier. */
  NOTIFY_MULTIPLIER: 4,
  /** Bytes of the notification area. */
  NOTIFY_SIZE: 0x1000,
  /** MSI-X table. */
  MSIX_TABLE: 0x4000,
  /** MSI-X pending-bit array. */
  MSIX_PBA: 0x5000,
  /** BAR size: a power of two above everything: 0x8000. */
  BAR_SIZE: 0x8000,
} as const;
