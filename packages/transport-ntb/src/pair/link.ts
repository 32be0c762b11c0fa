import { NtbError } from '../errors.js';
import { NTB_XLAT } from '../window.js';
import { checkInt, checkPow2, hex } from '../internal/util.js';

/**
 * The register file of a direct NTB pair, in one `SharedArrayBuffer`: a header, then one
 * block per side (side 0 = HOST1, side 1 = HOST2). Byte offsets. Words are host-order
 * `Int32`s accessed with `Atomics` (they never leave the machine). A side's block holds
 * what the NTB presents to that host: its interrupt word, its doorbell and mask
 * registers, the translations of its inbound memory windows, and its own scratchpads
 * (which the other host reaches as peer scratchpads).
 *
 * @public
 */
export const NTB_PAIR_REG = {
  /** u32 magic, {@link NTB_PAIR_MAGIC}. */
  MAGIC: 0x00,
  /** u32 layout version, {@link NTB_PAIR_VERSION}. */
  VERSION: 0x04,
  /** u32 scratchpads per side. */
  SPAD_COUNT: 0x08,
  /** u32 doorbell bits per side. */
  DB_COUNT: 0x0c,
  /** u32 memory windows per side. */
  MW_COUNT: 0x10,
  /** i32 link state: {@link NTB_PAIR_LINK} bits, session number in bits 8..31. */
  LINK_STATE: 0x14,
  /** Bytes of the header; side blocks follow. */
  HEADER_SIZE: 0x40,
  /** Offset in a side block: the host's interrupt line word (i32 counter). */
  SIDE_IRQ: 0x00,
  /** Offset in a side block: pending doorbell bits (u32), set by the peer, cleared by the host. */
  SIDE_DB: 0x04,
  /** Offset in a side block: doorbell mask (u32); masked bits do not interrupt. */
  SIDE_DB_MASK: 0x08,
  /** Offset in a side block: the first inbound window translation block ({@link NTB_XLAT}, 20 bytes each). */
  SIDE_XLAT: 0x10,
  /** Offset in a side block: scratchpad 0 (u32 each). */
  SIDE_SPAD: 0x60,
} as const;

/** `"NTBP"` as a little-endian u32. @public */
export const NTB_PAIR_MAGIC = 0x5042_544e;

/** Version of {@link NTB_PAIR_REG}. @public */
export const NTB_PAIR_VERSION = 1;

/** Bits of {@link NTB_PAIR_REG}.LINK_STATE. @public */
export const NTB_PAIR_LINK = {
  /** Side 0 called link_enable. */
  ENABLE0: 1 << 0,
  /** Side 1 called link_enable. */
  ENABLE1: 1 << 1,
  /** The link is up (both enabled, neither lost). */
  UP: 1 << 2,
  /** Side 0 was lost (its host crashed); cleared when it enables again. */
  LOST0: 1 << 3,
  /** Side 1 was lost. */
  LOST1: 1 << 4,
  /** The session number (incremented at each link-up) starts at this bit. */
  SESSION_SHIFT: 8,
} as const;

/** Most memory windows per side. @public */
export const NTB_PAIR_MAX_MWS = 4;

/** One host of a direct pair, as the link describes it. @public */
export interface NtbPairHostConfig {
  /** Bus address of the host's RAM. */
  readonly ramBase: number;
  /** Bytes of RAM (its SharedArrayBuffer). */
  readonly ramSize: number;
  /** Bus address of the aperture of peer window 0 on this host (window w at `mwBase + w·mwSize`). */
  readonly mwBase: number;
}

/** The sizes and addresses of a direct pair (plain data). @public */
export interface NtbPairLinkConfig {
  /** Layout version. */
  readonly version: number;
  /** Scratchpads per side. */
  readonly spadCount: number;
  /** Doorbell bits per side (≤ 31). */
  readonly dbCount: number;
  /** Memory windows per side. */
  readonly mwCount: number;
  /** Bytes of each window aperture (`peer_mw_get_addr` size, `mw_get_align` size_max). */
  readonly mwSize: number;
  /** `mw_get_align` address alignment. */
  readonly addrAlign: number;
  /** `mw_get_align` size alignment. */
  readonly sizeAlign: number;
  /** HOST1 (side 0) and HOST2 (side 1). */
  readonly hosts: readonly [NtbPairHostConfig, NtbPairHostConfig];
}

/**
 * A direct NTB pair: plain data that can be posted to workers. The shared buffers are
 * the NTB's registers and each host's RAM; nothing else is shared.
 *
 * @public
 */
export interface NtbPairLink {
  /** Discriminant. */
  readonly kind: 'ntb-pair';
  /** Sizes and addresses. */
  readonly config: NtbPairLinkConfig;
  /** The register file ({@link NTB_PAIR_REG}). */
  readonly registers: SharedArrayBuffer;
  /** HOST1's RAM and HOST2's RAM. */
  readonly memory: readonly [SharedArrayBuffer, SharedArrayBuffer];
}

/** Options of {@link createNtbPairLink}. @public */
export interface NtbPairLinkOptions {
  /** Scratchpads per side. Default 64 (pci-epf-ntb's `SPAD_COUNT`). */
  readonly spadCount?: number;
  /** Doorbell bits per side, 10..31. Default 16. */
  readonly dbCount?: number;
  /** Memory windows per side, 1..4. Default 1. */
  readonly mwCount?: number;
  /** Aperture bytes of each window, a power of two ≥ 0x20000 + a page. Default 1 MiB. */
  readonly mwSize?: number;
  /** `mw_get_align` address alignment, a power of two. Default 4096. */
  readonly addrAlign?: number;
  /** `mw_get_align` size alignment, a power of two. Default 4096. */
  readonly sizeAlign?: number;
  /** Bytes of each host's RAM. Default 4 MiB. */
  readonly ramSize?: number;
  /** Bus addresses of HOST1's and HOST2's RAM. Default 0x8000_0000 and 0x9000_0000. */
  readonly ramBase?: readonly [number, number];
  /** Bus addresses of the window apertures on HOST1 and HOST2. Default 0x10_0000_0000 and 0x20_0000_0000. */
  readonly mwBase?: readonly [number, number];
}

/** Bytes of one side block. */
export function pairSideSize(spadCount: number): number {
  return (NTB_PAIR_REG.SIDE_SPAD + 4 * spadCount + 63) & ~63;
}

/** Byte offset of side `side`'s block. */
export function pairSideOffset(spadCount: number, side: number): number {
  return NTB_PAIR_REG.HEADER_SIZE + side * pairSideSize(spadCount);
}

/**
 * Creates the shared buffers of a direct NTB pair and initialises its header. Hand the
 * returned description to both hosts (it is plain data: post it to workers).
 *
 * @public
 */
export function createNtbPairLink(options: NtbPairLinkOptions = {}): NtbPairLink {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const spadCount = checkInt('options.spadCount', options.spadCount ?? 64, 24, 256);
  const dbCount = checkInt('options.dbCount', options.dbCount ?? 16, 10, 31);
  const mwCount = checkInt('options.mwCount', options.mwCount ?? 1, 1, NTB_PAIR_MAX_MWS);
  const mwSize = checkPow2('options.mwSize', options.mwSize ?? 0x10_0000, 2 ** 30);
  if (mwSize < 0x40000) throw new RangeError(`options.mwSize must be ≥ 0x40000 (rings below 0x20000, buffers above), got ${hex(mwSize)}`);
  const addrAlign = checkPow2('options.addrAlign', options.addrAlign ?? 4096, 2 ** 30);
  const sizeAlign = checkPow2('options.sizeAlign', options.sizeAlign ?? 4096, mwSize);
  const ramSize = checkInt('options.ramSize', options.ramSize ?? 4 * 0x10_0000, mwSize, 2 ** 31);
  const ramBase = options.ramBase ?? [0x8000_0000, 0x9000_0000];
  const mwBase = options.mwBase ?? [0x10_0000_0000, 0x20_0000_0000];
  for (const [name, v] of [
    ['options.ramBase[0]', ramBase[0]],
    ['options.ramBase[1]', ramBase[1]],
    ['options.mwBase[0]', mwBase[0]],
    ['options.mwBase[1]', mwBase[1]],
  ] as const) {
    checkInt(name, v, 0, Number.MAX_SAFE_INTEGER - 2 ** 32);
  }
  for (const s of [0, 1] as const) {
    const r0 = ramBase[s];
    const m0 = mwBase[s];
    if (r0 < m0 + mwCount * mwSize && m0 < r0 + ramSize) throw new RangeError(`host ${s + 1}: its RAM overlaps its window apertures`);
    if (r0 % addrAlign !== 0) throw new RangeError(`options.ramBase[${s}] must be aligned to addrAlign ${addrAlign}`);
  }
  const registers = new SharedArrayBuffer(pairSideOffset(spadCount, 2));
  const dv = new DataView(registers);
  dv.setUint32(NTB_PAIR_REG.MAGIC, NTB_PAIR_MAGIC, true);
  dv.setUint32(NTB_PAIR_REG.VERSION, NTB_PAIR_VERSION, true);
  dv.setUint32(NTB_PAIR_REG.SPAD_COUNT, spadCount, true);
  dv.setUint32(NTB_PAIR_REG.DB_COUNT, dbCount, true);
  dv.setUint32(NTB_PAIR_REG.MW_COUNT, mwCount, true);
  const config: NtbPairLinkConfig = Object.freeze({
    version: NTB_PAIR_VERSION,
    spadCount,
    dbCount,
    mwCount,
    mwSize,
    addrAlign,
    sizeAlign,
    hosts: Object.freeze([
      Object.freeze({ ramBase: ramBase[0], ramSize, mwBase: mwBase[0] }),
      Object.freeze({ ramBase: ramBase[1], ramSize, mwBase: mwBase[1] }),
    ]) as unknown as readonly [NtbPairHostConfig, NtbPairHostConfig],
  });
  return Object.freeze({
    kind: 'ntb-pair' as const,
    config,
    registers,
    memory: Object.freeze([new SharedArrayBuffer(ramSize), new SharedArrayBuffer(ramSize)]) as unknown as readonly [SharedArrayBuffer, SharedArrayBuffer],
  });
}

/** Checks a pair description (possibly structured-cloned); throws `BAD_LINK`. */
export function checkPairLink(link: NtbPairLink): void {
  if (typeof link !== 'object' || link === null || link.kind !== 'ntb-pair') throw new NtbError('BAD_LINK', 'not an NTB pair link (kind "ntb-pair")');
  const { registers, memory, config } = link;
  if (!(registers instanceof SharedArrayBuffer)) throw new NtbError('BAD_LINK', 'link.registers must be a SharedArrayBuffer');
  if (!Array.isArray(memory) || memory.length !== 2 || !memory.every((m) => m instanceof SharedArrayBuffer)) {
    throw new NtbError('BAD_LINK', 'link.memory must be two SharedArrayBuffers');
  }
  if (typeof config !== 'object' || config === null) throw new NtbError('BAD_LINK', 'link.config is missing');
  const dv = new DataView(registers);
  if (registers.byteLength < NTB_PAIR_REG.HEADER_SIZE || dv.getUint32(NTB_PAIR_REG.MAGIC, true) !== NTB_PAIR_MAGIC) {
    throw new NtbError('BAD_LINK', 'the register file has no NTB pair magic');
  }
  if (dv.getUint32(NTB_PAIR_REG.VERSION, true) !== NTB_PAIR_VERSION || config.version !== NTB_PAIR_VERSION) {
    throw new NtbError('BAD_LINK', `layout version ${dv.getUint32(NTB_PAIR_REG.VERSION, true)} is not ${NTB_PAIR_VERSION}`);
  }
  if (dv.getUint32(NTB_PAIR_REG.SPAD_COUNT, true) !== config.spadCount || registers.byteLength < pairSideOffset(config.spadCount, 2)) {
    throw new NtbError('BAD_LINK', 'the register file does not match the link configuration');
  }
  for (const s of [0, 1]) {
    if (memory[s]!.byteLength !== config.hosts[s]!.ramSize) throw new NtbError('BAD_LINK', `host ${s + 1}'s RAM is not ${config.hosts[s]!.ramSize} bytes`);
  }
}

/** Words of the translation block of side `side`'s inbound window `w`. */
export function pairXlatOffset(spadCount: number, side: number, w: number): number {
  return pairSideOffset(spadCount, side) + NTB_PAIR_REG.SIDE_XLAT + w * NTB_XLAT.BYTES;
}
