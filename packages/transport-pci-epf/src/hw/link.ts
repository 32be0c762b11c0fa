import { MAX_BUS_ADDR } from '@x/vring';
import { PciEpfError } from '../errors.js';
import { isPow2 } from '../internal/util.js';

/**
 * What one BAR of the controller allows (Linux `struct pci_epc_bar_desc` of
 * `pci_epc_features`): a function may program it, it has a fixed size, or the
 * controller keeps it for itself (it still shows to the host, with the controller's own
 * registers behind it).
 *
 * @public
 */
export interface PciEpcBarFeature {
  /** `programmable` (BAR_PROGRAMMABLE), `fixed` (BAR_FIXED) or `reserved` (BAR_RESERVED). */
  readonly type: 'programmable' | 'fixed' | 'reserved';
  /** Size of a fixed or reserved BAR (a power of two). */
  readonly size?: number;
  /** The BAR can only be 64-bit (`bar_fixed_64bit`); it then takes the next BAR slot too. */
  readonly only64?: boolean;
}

/** The controller's outbound (EP → RC) address translation windows. @public */
export interface PciEpcOutboundFeature {
  /** Number of windows (outbound ATU regions). */
  readonly count: number;
  /** Bytes one window maps (a power of two). */
  readonly size: number;
  /** Alignment of a window's RC bus address and size (a power of two; Linux `epc->mem->window.page_size`). */
  readonly align: number;
}

/**
 * What the endpoint controller can do (Linux `struct pci_epc_features`, plus the
 * mainline RC→EP doorbell, register emulation and an eDMA).
 *
 * @public
 */
export interface PciEpcFeatures {
  /** MSI capable (`msi_capable`). */
  readonly msi: boolean;
  /** MSI-X capable (`msix_capable`). */
  readonly msix: boolean;
  /** Legacy INTx capable (`intx_capable`). */
  readonly intx: boolean;
  /** The six BARs. */
  readonly bars: readonly PciEpcBarFeature[];
  /** Alignment (and minimum size) of a BAR's backing memory (`align`). */
  readonly barAlign: number;
  /** Outbound windows. */
  readonly outbound: PciEpcOutboundFeature;
  /**
   * An RC→EP doorbell (mainline since 2025, Frank Li's platform-MSI doorbell): a host
   * write to an address in a BAR interrupts the endpoint. Without it the endpoint polls.
   */
  readonly doorbell: boolean;
  /**
   * Register emulation: host accesses to a window of a BAR reach the endpoint function
   * as requests it answers (as a DPU's virtio emulation or a vfio-user endpoint does).
   * Needed by the virtio-pci modern mode, whose selector registers must answer a read
   * that immediately follows a write.
   */
  readonly trap: boolean;
  /** An embedded DMA engine that copies between endpoint and RC memory (eDMA). */
  readonly dma: boolean;
}

/** The controller defaults: DWC-like, 6 programmable 32/64-bit BARs, MSI + MSI-X + INTx, 8 windows of 1 MiB at 64 KiB alignment, no doorbell (the RFC polls), register emulation, no DMA. @public */
export const DEFAULT_EPC_FEATURES: PciEpcFeatures = Object.freeze({
  msi: true,
  msix: true,
  intx: true,
  bars: Object.freeze(Array.from({ length: 6 }, () => Object.freeze({ type: 'programmable' as const }))),
  barAlign: 4096,
  outbound: Object.freeze({ count: 8, size: 0x10_0000, align: 0x1_0000 }),
  doorbell: false,
  trap: true,
  dma: false,
});

/**
 * The plain-data description of one RC ↔ EP link (structured-clone-able, so each side
 * can be built from it in its own worker).
 *
 * @public
 */
export interface PciEpfLinkConfig {
  /** RC bus address of the RC's memory (aligned to the outbound window alignment). */
  readonly rcMemoryBase: number;
  /** Bytes of RC memory (a multiple of the outbound window alignment). */
  readonly rcMemorySize: number;
  /** EP-local physical address of the EP's memory (BAR backings). */
  readonly epMemoryBase: number;
  /** Bytes of EP memory. */
  readonly epMemorySize: number;
  /** EP-local physical address of the outbound address space (window i at `outboundBase + i × window size`). */
  readonly outboundBase: number;
  /** RC bus address from which the RC assigns BAR addresses. */
  readonly rcMmioBase: number;
  /** The endpoint controller. */
  readonly epc: PciEpcFeatures;
}

/** Options of {@link createPciEpfLink}: any field of {@link PciEpfLinkConfig}, and part of the controller's features. @public */
export interface PciEpfLinkOptions {
  /** See {@link PciEpfLinkConfig.rcMemoryBase}. Default 0x8000_0000. */
  readonly rcMemoryBase?: number;
  /** See {@link PciEpfLinkConfig.rcMemorySize}. Default 4 MiB. */
  readonly rcMemorySize?: number;
  /** See {@link PciEpfLinkConfig.epMemoryBase}. Default 0x4000_0000. */
  readonly epMemoryBase?: number;
  /** See {@link PciEpfLinkConfig.epMemorySize}. Default 1 MiB. */
  readonly epMemorySize?: number;
  /** See {@link PciEpfLinkConfig.outboundBase}. Default 0x2000_0000. */
  readonly outboundBase?: number;
  /** See {@link PciEpfLinkConfig.rcMmioBase}. Default 0xC000_0000. */
  readonly rcMmioBase?: number;
  /** Controller features over {@link DEFAULT_EPC_FEATURES}. */
  readonly epc?: Partial<PciEpcFeatures>;
}

/** The shared bytes of one link. @public */
export interface PciEpfLinkBuffers {
  /** RC system memory (rings, buffers), seen by the RC at `rcMemoryBase`. */
  readonly rcMemory: SharedArrayBuffer;
  /** EP local memory; BAR backings live here (the host reaches them through the BARs). */
  readonly epMemory: SharedArrayBuffer;
  /** The link hardware's own state ({@link PCI_FABRIC}): configuration space, pending interrupts, doorbells, the emulated-register mailbox. */
  readonly fabric: SharedArrayBuffer;
}

/** A link: its description and its bytes. Both are plain data and can be posted to a worker. @public */
export interface PciEpfLink {
  /** The description. */
  readonly config: PciEpfLinkConfig;
  /** The bytes. */
  readonly buffers: PciEpfLinkBuffers;
}

/**
 * Layout of the fabric buffer: the state the PCIe hardware of both sides keeps
 * (configuration space and its write mask, the RC's pending-interrupt words, the EP's
 * doorbell word, the routing the EPC programmed, the emulated-register mailbox). Byte
 * offsets; words are little-endian u32 updated with Atomics.
 *
 * @public
 */
export const PCI_FABRIC = {
  /** u32 {@link PCI_FABRIC_MAGIC}, written by the EPC when it initialises the link. */
  MAGIC: 0x000,
  /** u32 layout version (1). */
  VERSION: 0x004,
  /** u32 bit 0: link up (the EPC started). */
  LINK: 0x008,
  /** u32 counts EPC starts (a re-initialised endpoint). */
  EP_GENERATION: 0x00c,
  /** u32 × 2: MSI / MSI-X messages posted to the RC, bit d = message data d (0..63). */
  IRQ_MSG: 0x010,
  /** u32: INTA asserted since the RC last looked. */
  IRQ_INTX: 0x018,
  /** u32: RC events ({@link PCI_FABRIC_RC_EVENT}). */
  IRQ_EVENT: 0x01c,
  /** u32: doorbell writes pending for the EP, bit d = doorbell data d (0..31). */
  DB_PENDING: 0x020,
  /** u32: EP events ({@link PCI_FABRIC_EP_EVENT}). */
  EP_EVENT: 0x024,
  /** u32: doorbell routing: bit 31 enabled, bits 0..2 BAR. */
  DB_CFG: 0x028,
  /** u32: doorbell offset in the BAR. */
  DB_OFFSET: 0x02c,
  /** u32: bytes of the doorbell range. */
  DB_SIZE: 0x030,
  /** u32: emulated-register window: bit 31 enabled, bits 0..2 BAR. */
  TRAP_CFG: 0x034,
  /** u32: window offset in the BAR. */
  TRAP_OFFSET: 0x038,
  /** u32: window bytes. */
  TRAP_SIZE: 0x03c,
  /** u32: read-to-clear byte: bit 31 enabled, bits 0..2 BAR. */
  RTC_CFG: 0x040,
  /** u32: its offset in the BAR. */
  RTC_OFFSET: 0x044,
  /** BAR table: 6 entries of {@link PCI_FABRIC_BAR}. */
  BARS: 0x080,
  /** Bytes per BAR table entry. */
  BAR_STRIDE: 16,
  /** u32: emulated-register requests the RC submitted (free-running). */
  MBOX_HEAD: 0x100,
  /** u32: requests the EP completed (free-running). */
  MBOX_TAIL: 0x104,
  /** First mailbox entry ({@link PCI_FABRIC_MBOX_ENTRY}). */
  MBOX_ENTRIES: 0x110,
  /** Mailbox entries. */
  MBOX_COUNT: 32,
  /** Bytes per mailbox entry. */
  MBOX_ENTRY_SIZE: 16,
  /** The EP function's configuration space (4 KiB). */
  CONFIG: 0x1000,
  /** Its write mask: which bits a host configuration write may change (as QEMU's `wmask`). */
  CONFIG_WMASK: 0x2000,
  /** Bytes of the fabric buffer. */
  SIZE: 0x3000,
} as const;

/** "pcie" read as a little-endian u32: 0x70 'p', 0x63 'c', 0x69 'i', 0x65 'e' → 0x65696370. @public */
export const PCI_FABRIC_MAGIC = 0x65696370;

/** Fields of a {@link PCI_FABRIC} BAR table entry. @public */
export const PCI_FABRIC_BAR = {
  /** u32: bit 0 present, bit 1 64-bit, bit 2 prefetchable, bit 3 the upper half of a 64-bit BAR. */
  FLAGS: 0,
  /** u32: size in bytes. */
  SIZE: 4,
  /** u32: offset of the backing in the EP memory buffer. */
  BACKING: 8,
} as const;

/** Fields of a {@link PCI_FABRIC} mailbox entry. @public */
export const PCI_FABRIC_MBOX_ENTRY = {
  /** u32: op (1 read, 2 write) in bits 0..7, width in bits 8..15, BAR in bits 16..23. */
  CTRL: 0,
  /** u32: offset in the BAR. */
  OFFSET: 4,
  /** u32: value written, or the value read. */
  VALUE: 8,
  /** u32: 0 pending, 1 done, 2 unsupported request. */
  STATUS: 12,
} as const;

/** Bits of `PCI_FABRIC.IRQ_EVENT`. @public */
export const PCI_FABRIC_RC_EVENT = {
  /** An emulated-register request completed. */
  TRAP_DONE: 1,
  /** The link went up or down. */
  LINK: 2,
  /** The EP finished a command (a vendor message of this model). */
  CMD_DONE: 4,
} as const;

/** Bits of `PCI_FABRIC.EP_EVENT`. @public */
export const PCI_FABRIC_EP_EVENT = {
  /** The RC submitted an emulated-register request. */
  TRAP_REQUEST: 1,
} as const;

function num(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

function checkFeatures(f: PciEpcFeatures): PciEpcFeatures {
  for (const k of ['msi', 'msix', 'intx', 'doorbell', 'trap', 'dma'] as const) {
    if (typeof f[k] !== 'boolean') throw new TypeError(`epc.${k} must be a boolean`);
  }
  if (!Array.isArray(f.bars) || f.bars.length !== 6) throw new RangeError('epc.bars must list the 6 BARs');
  const bars = f.bars.map((b, i) => {
    if (typeof b !== 'object' || b === null) throw new TypeError(`epc.bars[${i}] must be an object`);
    if (b.type !== 'programmable' && b.type !== 'fixed' && b.type !== 'reserved') throw new RangeError(`epc.bars[${i}].type must be programmable, fixed or reserved`);
    if (b.type !== 'programmable' && (b.size === undefined || !isPow2(b.size) || b.size < 16)) {
      throw new RangeError(`epc.bars[${i}].size must be a power of two ≥ 16 for a ${b.type} BAR`);
    }
    if (b.only64 === true && i === 5) throw new RangeError('epc.bars[5] cannot be 64-bit: it has no upper slot');
    return Object.freeze({ ...b });
  });
  if (!isPow2(f.barAlign)) throw new RangeError(`epc.barAlign must be a power of two, got ${f.barAlign}`);
  const o = f.outbound;
  if (typeof o !== 'object' || o === null) throw new TypeError('epc.outbound must be an object');
  num('epc.outbound.count', o.count, 1, 64);
  if (!isPow2(o.size)) throw new RangeError(`epc.outbound.size must be a power of two, got ${o.size}`);
  if (!isPow2(o.align) || o.align > o.size) throw new RangeError(`epc.outbound.align must be a power of two ≤ the window size, got ${o.align}`);
  return Object.freeze({ ...f, bars: Object.freeze(bars), outbound: Object.freeze({ count: o.count, size: o.size, align: o.align }) });
}

/**
 * Fills in and checks a link description. Throws TypeError / RangeError naming the
 * field that is wrong.
 *
 * @public
 */
export function resolvePciEpfLinkConfig(options: PciEpfLinkOptions = {}): PciEpfLinkConfig {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const epc = checkFeatures({
    ...DEFAULT_EPC_FEATURES,
    ...(options.epc ?? {}),
    outbound: { ...DEFAULT_EPC_FEATURES.outbound, ...(options.epc?.outbound ?? {}) },
  });
  const c: PciEpfLinkConfig = {
    rcMemoryBase: num('rcMemoryBase', options.rcMemoryBase ?? 0x8000_0000, 0, MAX_BUS_ADDR),
    rcMemorySize: num('rcMemorySize', options.rcMemorySize ?? 4 * 1024 * 1024, 0x1_0000, 2 ** 31),
    epMemoryBase: num('epMemoryBase', options.epMemoryBase ?? 0x4000_0000, 0, MAX_BUS_ADDR),
    epMemorySize: num('epMemorySize', options.epMemorySize ?? 1024 * 1024, 0x1000, 2 ** 31),
    outboundBase: num('outboundBase', options.outboundBase ?? 0x2000_0000, 0, MAX_BUS_ADDR),
    rcMmioBase: num('rcMmioBase', options.rcMmioBase ?? 0xc000_0000, 0, MAX_BUS_ADDR),
    epc,
  };
  const a = epc.outbound.align;
  if (c.rcMemoryBase % a !== 0 || c.rcMemorySize % a !== 0) {
    throw new RangeError(`rcMemoryBase and rcMemorySize must be multiples of the outbound alignment ${a} (a window never straddles the end of RC memory)`);
  }
  if (c.rcMemoryBase + c.rcMemorySize > MAX_BUS_ADDR || c.outboundBase + epc.outbound.count * epc.outbound.size > MAX_BUS_ADDR) {
    throw new RangeError('an address range of the link exceeds 2^53-1');
  }
  return Object.freeze(c);
}

/** Bytes of each buffer of a link, e.g. to declare `@x/platform` regions. @public */
export function pciEpfLinkSizes(config: PciEpfLinkConfig): { readonly rcMemory: number; readonly epMemory: number; readonly fabric: number } {
  return { rcMemory: config.rcMemorySize, epMemory: config.epMemorySize, fabric: PCI_FABRIC.SIZE };
}

/**
 * Creates a link: its checked description and fresh shared buffers. Hand
 * `link` (or `config` and `buffers` separately) to both sides.
 *
 * @public
 */
export function createPciEpfLink(options: PciEpfLinkOptions = {}): PciEpfLink {
  const config = resolvePciEpfLinkConfig(options);
  return Object.freeze({
    config,
    buffers: Object.freeze({
      rcMemory: new SharedArrayBuffer(config.rcMemorySize),
      epMemory: new SharedArrayBuffer(config.epMemorySize),
      fabric: new SharedArrayBuffer(PCI_FABRIC.SIZE),
    }),
  });
}

/** Checks buffers against a link description. @internal */
export function checkLink(link: PciEpfLink): void {
  if (typeof link !== 'object' || link === null) throw new TypeError('link must be a PciEpfLink');
  const { config, buffers } = link;
  if (typeof config !== 'object' || config === null || typeof buffers !== 'object' || buffers === null) {
    throw new TypeError('link must have config and buffers');
  }
  for (const k of ['rcMemory', 'epMemory', 'fabric'] as const) {
    if (!(buffers[k] instanceof SharedArrayBuffer)) throw new TypeError(`link.buffers.${k} must be a SharedArrayBuffer`);
  }
  if (buffers.rcMemory.byteLength < config.rcMemorySize) throw new PciEpfError('BAD_CONFIG', `rcMemory holds ${buffers.rcMemory.byteLength} bytes, the link says ${config.rcMemorySize}`);
  if (buffers.epMemory.byteLength < config.epMemorySize) throw new PciEpfError('BAD_CONFIG', `epMemory holds ${buffers.epMemory.byteLength} bytes, the link says ${config.epMemorySize}`);
  if (buffers.fabric.byteLength < PCI_FABRIC.SIZE) throw new PciEpfError('BAD_CONFIG', `fabric holds ${buffers.fabric.byteLength} bytes, needs ${PCI_FABRIC.SIZE}`);
}
