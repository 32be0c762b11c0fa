import { NTB_EPF_CTRL } from '../constants.js';
import { NtbError } from '../errors.js';
import { checkInt, checkPow2, hex } from '../internal/util.js';

/**
 * The shared state of the three-system bridge's hardware model (an SoC with two PCIe
 * endpoint controllers, EPC1 facing HOST1 and EPC2 facing HOST2), in one
 * `SharedArrayBuffer`: a header, then one block per controller. Byte offsets; host-order
 * `Int32` words accessed with `Atomics`. This is the minimal endpoint-controller model the
 * bridge runs on (inbound BAR translations, an outbound ATU, the host's MSI-X
 * doorbells), behind the {@link NtbBridgeEpc} interface.
 *
 * @public
 */
export const NTB_BRIDGE_FABRIC = {
  /** u32 magic, {@link NTB_BRIDGE_MAGIC}. */
  MAGIC: 0x00,
  /** u32 layout version. */
  VERSION: 0x04,
  /** Bytes of the header; controller blocks follow. */
  HEADER_SIZE: 0x40,
  /** Bytes of one controller block. */
  EPC_SIZE: 0x400,
  /** In a block: BAR sequence word, bumped whenever the BAR table or BOUND changes. */
  EPC_BAR_SEQ: 0x00,
  /** In a block: 1 while the NTB function is bound (BARs set, control region valid). */
  EPC_BOUND: 0x04,
  /** In a block: the host's interrupt line word (i32 counter). */
  EPC_IRQ: 0x08,
  /** In a block: the host's pending MSI-X vectors (bit v = vector v). */
  EPC_MSI_PENDING: 0x0c,
  /** In a block: MSI-X vectors the host enabled. */
  EPC_MSIX_VECTORS: 0x10,
  /** In a block: offset of the MSI-X table in BAR0 (the function's MSI-X capability). */
  EPC_MSIX_TABLE: 0x14,
  /** In a block: BAR table, 6 entries × (phys lo, phys hi, size lo, size hi). */
  EPC_BAR: 0x18,
  /** In a block: the outbound ATU: a generation word, then {@link NTB_BRIDGE_ATU_SLOTS} slots. */
  EPC_ATU: 0x80,
  /** Words per ATU slot: (ob lo, ob hi, pci lo, pci hi, size lo, size hi). */
  ATU_SLOT_WORDS: 6,
} as const;

/** `"NTBB"` as a little-endian u32. @public */
export const NTB_BRIDGE_MAGIC = 0x4242_544e;

/** Version of {@link NTB_BRIDGE_FABRIC}. @public */
export const NTB_BRIDGE_VERSION = 1;

/** Outbound ATU slots per controller: 32 doorbell entries, then memory window 1. @public */
export const NTB_BRIDGE_ATU_SLOTS = 33;

/** ATU slot of memory window 1 (slots 0–31 are doorbell entries). @public */
export const NTB_BRIDGE_MW_SLOT = 32;

/** `PCI_MSIX_ENTRY_SIZE`: bytes per MSI-X table entry (addr lo, addr hi, data, vector control). @public */
export const PCI_MSIX_ENTRY_SIZE = 16;

/** One host of the bridge topology. @public */
export interface NtbBridgeHostConfig {
  /** Bus address of the host's RAM. */
  readonly ramBase: number;
  /** Bytes of RAM. */
  readonly ramSize: number;
  /** Where the host assigns BAR0 of its endpoint; BAR n at `barBase + n·barStride`. */
  readonly barBase: number;
  /** Bus address of the host's MSI doorbell page (a write of data v raises vector v). */
  readonly msiBase: number;
}

/** The sizes and addresses of the bridge topology (plain data). @public */
export interface NtbBridgeLinkConfig {
  /** Layout version. */
  readonly version: number;
  /** Scratchpads per host (`spad_count`). */
  readonly spadCount: number;
  /** MSI-X vectors each endpoint offers (`db_count` of the function; a host uses vector 0 for the link). */
  readonly dbCount: number;
  /** Bytes of memory window 1 (`mw1` of the function). */
  readonly mwSize: number;
  /** The controllers' address alignment (`epc_features->align`), also the doorbell entry size. */
  readonly align: number;
  /** Host address distance between two BARs. */
  readonly barStride: number;
  /** Bridge-local address of the bridge's RAM (BAR0 backings). */
  readonly bridgeRamBase: number;
  /** Bridge-local address of EPC1's and EPC2's outbound address spaces. */
  readonly obBase: readonly [number, number];
  /** HOST1 and HOST2. */
  readonly hosts: readonly [NtbBridgeHostConfig, NtbBridgeHostConfig];
}

/**
 * The three-system NTB bridge: plain data that can be posted to the three workers. The
 * shared buffers are the hardware model's state (`fabric`), the bridge SoC's RAM (the
 * control regions and scratchpads behind BAR0), and each host's RAM.
 *
 * @public
 */
export interface NtbBridgeLink {
  /** Discriminant. */
  readonly kind: 'ntb-bridge';
  /** Sizes and addresses. */
  readonly config: NtbBridgeLinkConfig;
  /** The hardware model ({@link NTB_BRIDGE_FABRIC}). */
  readonly fabric: SharedArrayBuffer;
  /** The bridge SoC's RAM. */
  readonly bridgeMemory: SharedArrayBuffer;
  /** HOST1's RAM and HOST2's RAM. */
  readonly memory: readonly [SharedArrayBuffer, SharedArrayBuffer];
}

/** Options of {@link createNtbBridgeLink}. @public */
export interface NtbBridgeLinkOptions {
  /** Scratchpads per host. Default 64 (pci-epf-ntb `SPAD_COUNT`). */
  readonly spadCount?: number;
  /** MSI-X vectors per endpoint, 11..32 (the protocol's doorbells need bits 0–9). Default 16. */
  readonly dbCount?: number;
  /** Bytes of memory window 1, a power of two ≥ 0x40000. Default 1 MiB. */
  readonly mwSize?: number;
  /** Controller alignment, a power of two ≥ 4096. Default 4096. */
  readonly align?: number;
  /** Bytes of each host's RAM. Default 4 MiB. */
  readonly ramSize?: number;
}

/** The layout of one controller's BAR0 (control region, MSI-X table, scratchpads) and BAR2, as pci-epf-ntb computes it. */
export interface BridgeBarLayout {
  readonly msixTableOffset: number;
  readonly spadOffset: number;
  readonly spadSize: number;
  readonly bar0Size: number;
  readonly mw1Offset: number;
  readonly bar2Size: number;
}

function align(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** `epf_ntb_config_spad_bar_alloc` and `epf_ntb_db_mw_bar_init`: where things sit in BAR0 and BAR2. */
export function bridgeBarLayout(c: Pick<NtbBridgeLinkConfig, 'spadCount' | 'dbCount' | 'mwSize' | 'align'>): BridgeBarLayout {
  // ctrl_size = ALIGN(sizeof(struct epf_ntb_ctrl), 8), then the MSI-X table and its PBA.
  const msixTableOffset = align(NTB_EPF_CTRL.SIZE, 8);
  let ctrlSize = msixTableOffset + PCI_MSIX_ENTRY_SIZE * c.dbCount + align(Math.ceil(c.dbCount / 8), 8);
  ctrlSize = align(ctrlSize, c.align);
  const spadSize = align(c.spadCount * 4, c.align);
  if (spadSize > ctrlSize) ctrlSize = spadSize;
  // mw1_offset = ALIGN(db_count · align, mws_size[0]).
  const mw1Offset = align(c.dbCount * c.align, c.mwSize);
  return { msixTableOffset, spadOffset: ctrlSize, spadSize, bar0Size: ctrlSize + spadSize, mw1Offset, bar2Size: mw1Offset + c.mwSize };
}

/**
 * Creates the shared buffers of the three-system bridge. Hand the returned description
 * to the bridge and to both hosts.
 *
 * @public
 */
export function createNtbBridgeLink(options: NtbBridgeLinkOptions = {}): NtbBridgeLink {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const spadCount = checkInt('options.spadCount', options.spadCount ?? 64, 24, 256);
  const dbCount = checkInt('options.dbCount', options.dbCount ?? 16, 11, 32);
  const mwSize = checkPow2('options.mwSize', options.mwSize ?? 0x10_0000, 2 ** 28);
  if (mwSize < 0x40000) throw new RangeError(`options.mwSize must be ≥ 0x40000, got ${hex(mwSize)}`);
  const al = checkPow2('options.align', options.align ?? 4096, 2 ** 20);
  if (al < 4096) throw new RangeError(`options.align must be ≥ 4096, got ${al}`);
  const ramSize = checkInt('options.ramSize', options.ramSize ?? 4 * 0x10_0000, mwSize, 2 ** 31);
  const lay = bridgeBarLayout({ spadCount, dbCount, mwSize, align: al });
  const barStride = 2 ** Math.ceil(Math.log2(Math.max(lay.bar2Size, lay.bar0Size, 0x10_0000)));
  const config: NtbBridgeLinkConfig = Object.freeze({
    version: NTB_BRIDGE_VERSION,
    spadCount,
    dbCount,
    mwSize,
    align: al,
    barStride,
    bridgeRamBase: 0x8000_0000,
    obBase: Object.freeze([0x1_0000_0000, 0x2_0000_0000]) as unknown as readonly [number, number],
    hosts: Object.freeze([
      Object.freeze({ ramBase: 0x8000_0000, ramSize, barBase: 0x40_0000_0000, msiBase: 0xfee0_0000 }),
      Object.freeze({ ramBase: 0x9000_0000, ramSize, barBase: 0x50_0000_0000, msiBase: 0xfee0_0000 }),
    ]) as unknown as readonly [NtbBridgeHostConfig, NtbBridgeHostConfig],
  });
  const fabric = new SharedArrayBuffer(NTB_BRIDGE_FABRIC.HEADER_SIZE + 2 * NTB_BRIDGE_FABRIC.EPC_SIZE);
  const dv = new DataView(fabric);
  dv.setUint32(NTB_BRIDGE_FABRIC.MAGIC, NTB_BRIDGE_MAGIC, true);
  dv.setUint32(NTB_BRIDGE_FABRIC.VERSION, NTB_BRIDGE_VERSION, true);
  return Object.freeze({
    kind: 'ntb-bridge' as const,
    config,
    fabric,
    bridgeMemory: new SharedArrayBuffer(2 * lay.bar0Size),
    memory: Object.freeze([new SharedArrayBuffer(ramSize), new SharedArrayBuffer(ramSize)]) as unknown as readonly [SharedArrayBuffer, SharedArrayBuffer],
  });
}

/** Checks a bridge description (possibly structured-cloned); throws `BAD_LINK`. */
export function checkBridgeLink(link: NtbBridgeLink): BridgeBarLayout {
  if (typeof link !== 'object' || link === null || link.kind !== 'ntb-bridge') throw new NtbError('BAD_LINK', 'not an NTB bridge link (kind "ntb-bridge")');
  const { fabric, bridgeMemory, memory, config } = link;
  if (!(fabric instanceof SharedArrayBuffer) || !(bridgeMemory instanceof SharedArrayBuffer)) throw new NtbError('BAD_LINK', 'link.fabric and link.bridgeMemory must be SharedArrayBuffers');
  if (!Array.isArray(memory) || memory.length !== 2 || !memory.every((m) => m instanceof SharedArrayBuffer)) throw new NtbError('BAD_LINK', 'link.memory must be two SharedArrayBuffers');
  if (typeof config !== 'object' || config === null || config.version !== NTB_BRIDGE_VERSION) throw new NtbError('BAD_LINK', 'link.config is missing or of another version');
  const dv = new DataView(fabric);
  if (fabric.byteLength < NTB_BRIDGE_FABRIC.HEADER_SIZE + 2 * NTB_BRIDGE_FABRIC.EPC_SIZE || dv.getUint32(NTB_BRIDGE_FABRIC.MAGIC, true) !== NTB_BRIDGE_MAGIC) {
    throw new NtbError('BAD_LINK', 'the fabric has no NTB bridge magic');
  }
  const lay = bridgeBarLayout(config);
  if (bridgeMemory.byteLength < 2 * lay.bar0Size) throw new NtbError('BAD_LINK', 'the bridge RAM does not match the configuration');
  return lay;
}

/** Byte offset of controller `k`'s block. */
export function epcOffset(k: number): number {
  return NTB_BRIDGE_FABRIC.HEADER_SIZE + k * NTB_BRIDGE_FABRIC.EPC_SIZE;
}
