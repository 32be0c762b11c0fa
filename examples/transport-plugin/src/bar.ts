// The wire of this transport: the RFC's BAR register block (rfc-protocol §2.1), as the
// endpoint (EP, the vhost side) exposes it and the root complex (RC, the virtio side)
// maps it, plus a doorbell page and the RC's memory. Everything here is plain data: the
// two sides each build their own views over the same SharedArrayBuffers.

/**
 * Register offsets of the RFC's `__packed` BAR block (rfc-protocol §2.1), little-endian.
 * Offsets are the RFC's; see the README for the fixes to what it left unused.
 */
export const BAR = {
  /** u64, EP writes: the device features (RFC `host_features`). */
  HOST_FEATURES: 0x00,
  /** u64, RC writes: the driver features (RFC `guest_features`). */
  GUEST_FEATURES: 0x08,
  /** u16, RC writes: the configuration-change MSI-X vector. */
  MSIX_CONFIG: 0x10,
  /** u16, EP writes: queues created (the RFC never wrote it; this transport does). */
  NUM_QUEUES: 0x12,
  /** u8, RC writes then SET_STATUS; EP writes on reset, refusal, NEEDS_RESET. */
  DEVICE_STATUS: 0x14,
  /** u8, EP writes: bumped on every configuration change (unused in the RFC). */
  CONFIG_GENERATION: 0x15,
  /** u32 at a 2-aligned offset, EP writes: bit 0 vring, bit 1 config (the RFC never wrote it, so INTx could not work). */
  ISR: 0x16,
  /** u8, RC writes: a device command. */
  CMD: 0x1a,
  /** u8, EP writes: the command's result. */
  CMD_STATUS: 0x1b,
  /** First of 8 queue blocks, 16 bytes each. */
  QUEUE: 0x1c,
  /** Bytes per queue block. */
  QUEUE_STRIDE: 16,
  /** Queue blocks (the RFC's MAX_VQS). */
  MAX_QUEUES: 8,
  /** End of the RFC's struct: 0x1c + 8 × 16 = 0x9c (156 bytes). */
  END: 0x9c,
  /** Device configuration space: the 1 KiB reserve after the struct, 8-aligned (0x9c → 0xa0). */
  CONFIG: 0xa0,
  /** Bytes of configuration space. */
  CONFIG_SIZE: 0x400,
} as const;

/** Fields inside a queue block (offsets from its start). */
export const QREG = {
  /** u8, RC writes: a queue command. */
  CMD: 0,
  /** u8, EP writes: its result. */
  CMD_STATUS: 1,
  /** u16, EP writes: bit 0 ENABLE. */
  STATUS: 2,
  /** u16: the EP writes the ring size it allows (0: no queue); the RC writes back the size it chose (see README). */
  NUM_BUFFERS: 4,
  /** u16, RC writes: the MSI-X vector of the queue's interrupt. */
  MSIX_VECTOR: 6,
  /** u64, RC writes: the RC bus address of one contiguous legacy ring (§2.7.2, align 4096). */
  QUEUE_ADDR: 8,
} as const;

/** Byte offset of field `f` of queue block `q`. */
export function qreg(q: number, f: number): number {
  return BAR.QUEUE + BAR.QUEUE_STRIDE * q + f;
}

/** `host_cmd` values (rfc-protocol §2.1). */
export const CMD = { NONE: 0, SET_STATUS: 1, FINALIZE_FEATURES: 2, RESET: 3 } as const;
/** `queue_cmd` values. */
export const QCMD = { NONE: 0, ACTIVATE: 1, DEACTIVATE: 2, NOTIFY: 3 } as const;
/** Both status enums. */
export const CMD_STATUS = { NONE: 0, OKAY: 1, ERROR: 2 } as const;
/** Queue status bit 0. */
export const Q_ENABLE = 1;
/** The RFC's ring alignment (rfc-protocol §2.10). */
export const RING_ALIGN = 4096;

/**
 * Doorbell page (host-order Int32 words from byte 0x1000 of the BAR buffer). Not in the
 * RFC: it is where this transport keeps what PCIe gives for free — the PCI config header
 * (subsystem ids), a doorbell the RC rings after writing a command (SigmaStar's
 * `trigger_irq`, rfc-protocol §2.5) and MSI-X messages from the EP.
 */
export const DB = {
  /** Byte offset of the page. */
  PAGE: 0x1000,
  /** RC → EP: incremented after each command written (the doorbell). */
  DOORBELL: 0,
  /** EP → RC: incremented after each command result written. */
  ACK: 1,
  /** EP → RC: incremented with every MSI-X message (summary of the vectors below). */
  MSI: 2,
  /** 1 while an EP is bound (the function is on the bus). */
  EP_ATTACHED: 3,
  /** 1 while an RC driver is bound. */
  RC_ATTACHED: 4,
  /** PCI config header: subsystem vendor id (the RFC takes the virtio vendor from it). */
  SUBSYS_VENDOR: 5,
  /** PCI config header: subsystem id (the virtio device id). */
  SUBSYS_ID: 6,
  /** `MSI_VECTOR + v`: messages sent on vector v (9 vectors, the RFC's count). */
  MSI_VECTOR: 16,
  /** Vectors. */
  VECTORS: 9,
} as const;

/** Bytes of the BAR buffer: page 0 registers and config, page 1 the doorbell page. */
export const BAR_SIZE = 0x2000;

/** What both sides share: plain data, structured-clonable to a worker. */
export interface BarLink {
  /** The BAR: registers (page 0) and the doorbell page (page 1). */
  readonly bar: SharedArrayBuffer;
  /** The RC's memory, at `rcBase` on the RC bus. */
  readonly memory: SharedArrayBuffer;
  /** RC bus address of `memory`. */
  readonly rcBase: number;
  /** Subsystem ids the EP publishes. */
  readonly vendorId: number;
  readonly deviceId: number;
}

/** Options of {@link createBarLink}. */
export interface BarLinkOptions {
  /** The virtio device id the EP publishes as PCI subsystem id (rpmsg: 7). */
  deviceId: number;
  /** Subsystem vendor. Default 0x104c (TI, whose parts the RFC's RC driver matches). */
  vendorId?: number;
  /** Bytes of RC memory. Default 1 MiB. */
  memorySize?: number;
  /** RC bus address of that memory. Default 0x8000_0000. */
  rcBase?: number;
}

/** Creates the shared bytes of one EP ↔ RC link. */
export function createBarLink(options: BarLinkOptions): BarLink {
  const { deviceId } = options;
  if (!Number.isInteger(deviceId) || deviceId < 1 || deviceId > 0xfffffffe) throw new RangeError(`options.deviceId must be in 1..0xfffffffe, got ${deviceId}`);
  const memorySize = options.memorySize ?? 1 << 20;
  if (!Number.isInteger(memorySize) || memorySize < 65536 || memorySize % 4096 !== 0) throw new RangeError(`options.memorySize must be a multiple of 4096 ≥ 65536, got ${memorySize}`);
  const rcBase = options.rcBase ?? 0x8000_0000;
  if (!Number.isSafeInteger(rcBase) || rcBase < 0 || rcBase % 4096 !== 0) throw new RangeError(`options.rcBase must be a 4096-aligned bus address, got ${rcBase}`);
  return Object.freeze({
    bar: new SharedArrayBuffer(BAR_SIZE),
    memory: new SharedArrayBuffer(memorySize),
    rcBase,
    vendorId: options.vendorId ?? 0x104c,
    deviceId,
  });
}
