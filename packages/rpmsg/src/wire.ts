import { RpmsgError } from './errors.js';

// Wire formats of Linux `drivers/rpmsg/virtio_rpmsg_bus.c`, `include/linux/rpmsg/ns.h`
// and OpenAMP `lib/rpmsg/rpmsg_internal.h`, plus the RFC's Address Service (patch 10).
// Every struct is packed and little-endian.

/**
 * Byte offsets in `struct rpmsg_hdr` (16 bytes, packed): `u32 src` at 0, `u32 dst` at 4,
 * `u32 reserved` at 8, `u16 len` at 12, `u16 flags` at 14, then the payload at 16
 * (4 + 4 + 4 + 2 + 2 = 16).
 *
 * @public
 */
export const RPMSG_HDR = {
  SRC: 0,
  DST: 4,
  RESERVED: 8,
  LEN: 12,
  FLAGS: 14,
  SIZE: 16,
} as const;

/** `RPMSG_NAME_SIZE`: bytes of a name in NS and AS messages, NUL included. @public */
export const RPMSG_NAME_SIZE = 32;

/**
 * Byte offsets in `struct rpmsg_ns_msg` (40 bytes, packed): `char name[32]` at 0,
 * `u32 addr` at 32, `u32 flags` at 36 (32 + 4 + 4 = 40).
 *
 * @public
 */
export const RPMSG_NS_MSG = {
  NAME: 0,
  ADDR: 32,
  FLAGS: 36,
  SIZE: 40,
} as const;

/**
 * Byte offsets in the RFC's `struct rpmsg_as_msg` (44 bytes, packed; patch 10):
 * `char name[32]` at 0, `u32 dst` at 32, `u32 src` at 36, `u32 flags` at 40
 * (32 + 4 + 4 + 4 = 44).
 *
 * @public
 */
export const RPMSG_AS_MSG = {
  NAME: 0,
  DST: 32,
  SRC: 36,
  FLAGS: 40,
  SIZE: 44,
} as const;

/**
 * Flags of an NS message (Linux `enum rpmsg_ns_flags`; AS_ANNOUNCE is the RFC's,
 * patch 10). CREATE is the absence of DESTROY; AS_ANNOUNCE asks the receiver to
 * answer with an AS ASSIGN.
 *
 * @public
 */
export const RPMSG_NS_FLAGS = {
  CREATE: 0,
  DESTROY: 1,
  AS_ANNOUNCE: 2,
} as const;

/** Flags of an AS message (RFC patch 10). @public */
export const RPMSG_AS_FLAGS = {
  ASSIGN: 1,
  FREE: 2,
} as const;

/** Address of the name-service endpoint (`RPMSG_NS_ADDR`, 0x35). @public */
export const RPMSG_NS_ADDR = 53;
/** Address of the RFC's Address Service endpoint (`RPMSG_AS_ADDR`, 0x36). @public */
export const RPMSG_AS_ADDR = 54;
/** "Any address" (`RPMSG_ADDR_ANY`): ask for allocation, or "not bound yet". @public */
export const RPMSG_ADDR_ANY = 0xffffffff;
/** Addresses below this are never allocated automatically (`RPMSG_RESERVED_ADDRESSES`). @public */
export const RPMSG_RESERVED_ADDRESSES = 1024;

/**
 * Feature bit numbers of the rpmsg virtio device: `VIRTIO_RPMSG_F_NS` (0, name
 * service) and the RFC's `VIRTIO_RPMSG_F_AS` (1, address service).
 *
 * @public
 */
export const VIRTIO_RPMSG_F = {
  NS: 0,
  AS: 1,
} as const;

/** Virtio device ID of rpmsg (VIRTIO 1.2 §5, `VIRTIO_ID_RPMSG`). @public */
export const VIRTIO_ID_RPMSG = 7;

/** Default bytes per buffer, header included (Linux `MAX_RPMSG_BUF_SIZE`, OpenAMP `RPMSG_BUFFER_SIZE`). @public */
export const RPMSG_BUF_SIZE = 512;
/** Default buffers per direction (Linux `MAX_RPMSG_NUM_BUFS` / 2). @public */
export const RPMSG_NUM_BUFS = 256;
/** Largest payload of a default buffer: 512 − 16 = 496. @public */
export const RPMSG_MAX_PAYLOAD = RPMSG_BUF_SIZE - RPMSG_HDR.SIZE;
/** Linux `rpmsg_send` waits this long for a TX buffer (15 s). @public */
export const RPMSG_SEND_TIMEOUT_MS = 15_000;

/** A decoded `struct rpmsg_hdr`. @public */
export interface RpmsgHeader {
  /** Source address. */
  src: number;
  /** Destination address. */
  dst: number;
  /** The reserved word as received (OpenAMP keeps private state there; ignore it). */
  reserved: number;
  /** Payload length. */
  len: number;
  /** Flags (unused by Linux and OpenAMP). */
  flags: number;
}

/** A decoded name-service message. @public */
export interface RpmsgNsMsg {
  /** Channel name (the bytes before the NUL, UTF-8). */
  name: string;
  /** The announcing endpoint's address. */
  addr: number;
  /** {@link RPMSG_NS_FLAGS} bits. */
  flags: number;
}

/** A decoded address-service message (RFC patch 10). @public */
export interface RpmsgAsMsg {
  /** Channel name. */
  name: string;
  /** The address the sender bound (becomes the receiver's channel dst). */
  dst: number;
  /** The receiver's own endpoint address (finds the channel). */
  src: number;
  /** {@link RPMSG_AS_FLAGS} value. */
  flags: number;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

function checkSpace(buf: Uint8Array, offset: number, size: number, what: string): void {
  if (!(buf instanceof Uint8Array)) throw new TypeError(`buf must be a Uint8Array`);
  if (!Number.isInteger(offset) || offset < 0 || offset + size > buf.length) {
    throw new RangeError(`offset ${offset}: a ${what} needs ${size} bytes in a buffer of ${buf.length}`);
  }
}

function checkU32(name: string, v: number): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be a u32, got ${v}`);
}

function checkU16(name: string, v: number): void {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${name} must be a u16, got ${v}`);
}

/** @internal */
export function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

/** @internal */
export function putU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
}

/** @internal */
export function getU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** @internal */
export function getU16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

/**
 * Writes a `struct rpmsg_hdr` at `buf[offset…offset+16)`. `reserved` is always written
 * as 0 (OpenAMP stores private state in that word while it holds a buffer).
 *
 * @public
 */
export function writeRpmsgHeader(buf: Uint8Array, offset: number, src: number, dst: number, len: number, flags = 0): void {
  checkSpace(buf, offset, RPMSG_HDR.SIZE, 'rpmsg header');
  checkU32('src', src);
  checkU32('dst', dst);
  checkU16('len', len);
  checkU16('flags', flags);
  putU32(buf, offset + RPMSG_HDR.SRC, src);
  putU32(buf, offset + RPMSG_HDR.DST, dst);
  putU32(buf, offset + RPMSG_HDR.RESERVED, 0);
  putU16(buf, offset + RPMSG_HDR.LEN, len);
  putU16(buf, offset + RPMSG_HDR.FLAGS, flags);
}

/**
 * Reads a `struct rpmsg_hdr` at `buf[offset…]` into `out` (reused, so the data path
 * allocates nothing) and returns it.
 *
 * @public
 */
export function readRpmsgHeader(
  buf: Uint8Array,
  offset = 0,
  out: RpmsgHeader = { src: 0, dst: 0, reserved: 0, len: 0, flags: 0 },
): RpmsgHeader {
  checkSpace(buf, offset, RPMSG_HDR.SIZE, 'rpmsg header');
  out.src = getU32(buf, offset + RPMSG_HDR.SRC);
  out.dst = getU32(buf, offset + RPMSG_HDR.DST);
  out.reserved = getU32(buf, offset + RPMSG_HDR.RESERVED);
  out.len = getU16(buf, offset + RPMSG_HDR.LEN);
  out.flags = getU16(buf, offset + RPMSG_HDR.FLAGS);
  return out;
}

/**
 * Checks that `name` fits an rpmsg name field: at most 31 UTF-8 bytes (the 32nd is the
 * NUL a receiver needs) and no NUL inside. Returns its UTF-8 length.
 *
 * @public
 */
export function checkRpmsgName(name: string): number {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${typeof name}`);
  if (name.includes('\0')) throw new RangeError('name must not contain NUL');
  const n = utf8Encoder.encode(name).length;
  if (n > RPMSG_NAME_SIZE - 1) throw new RangeError(`name "${name}" is ${n} bytes; at most ${RPMSG_NAME_SIZE - 1} fit with the NUL`);
  return n;
}

/** Writes `name` NUL-padded to 32 bytes. */
function writeName(buf: Uint8Array, at: number, name: string): void {
  checkRpmsgName(name);
  buf.fill(0, at, at + RPMSG_NAME_SIZE);
  utf8Encoder.encodeInto(name, buf.subarray(at, at + RPMSG_NAME_SIZE - 1));
}

/** Reads a NUL-terminated name of at most 32 bytes; throws NAME_UNTERMINATED. */
function readName(buf: Uint8Array, at: number, what: string): string {
  let end = -1;
  for (let i = 0; i < RPMSG_NAME_SIZE; i++) {
    if (buf[at + i] === 0) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new RpmsgError('NAME_UNTERMINATED', `${what} name has no NUL within ${RPMSG_NAME_SIZE} bytes`);
  return utf8Decoder.decode(buf.subarray(at, at + end));
}

/**
 * Writes a 40-byte `struct rpmsg_ns_msg` at `buf[offset…]`: the name NUL-padded to
 * 32 bytes, then `addr` and `flags`.
 *
 * @public
 */
export function writeNsMsg(buf: Uint8Array, offset: number, name: string, addr: number, flags: number): void {
  checkSpace(buf, offset, RPMSG_NS_MSG.SIZE, 'name-service message');
  checkU32('addr', addr);
  checkU32('flags', flags);
  writeName(buf, offset + RPMSG_NS_MSG.NAME, name);
  putU32(buf, offset + RPMSG_NS_MSG.ADDR, addr);
  putU32(buf, offset + RPMSG_NS_MSG.FLAGS, flags);
}

/**
 * Decodes an NS message of `len` bytes at `buf[offset…]`. Throws an
 * {@link RpmsgError}: `MALFORMED` unless `len` is exactly 40 (as Linux `rpmsg_ns_cb`),
 * `NAME_UNTERMINATED` when the name has no NUL (Linux would truncate it; this package
 * refuses it).
 *
 * @public
 */
export function readNsMsg(buf: Uint8Array, offset = 0, len = buf.length - offset): RpmsgNsMsg {
  if (len !== RPMSG_NS_MSG.SIZE) throw new RpmsgError('MALFORMED', `name-service message of ${len} bytes; it must be ${RPMSG_NS_MSG.SIZE}`, { len });
  checkSpace(buf, offset, RPMSG_NS_MSG.SIZE, 'name-service message');
  const name = readName(buf, offset + RPMSG_NS_MSG.NAME, 'name-service');
  return { name, addr: getU32(buf, offset + RPMSG_NS_MSG.ADDR), flags: getU32(buf, offset + RPMSG_NS_MSG.FLAGS) };
}

/**
 * Writes a 44-byte `struct rpmsg_as_msg` (RFC patch 10) at `buf[offset…]`.
 *
 * @public
 */
export function writeAsMsg(buf: Uint8Array, offset: number, name: string, dst: number, src: number, flags: number): void {
  checkSpace(buf, offset, RPMSG_AS_MSG.SIZE, 'address-service message');
  checkU32('dst', dst);
  checkU32('src', src);
  checkU32('flags', flags);
  writeName(buf, offset + RPMSG_AS_MSG.NAME, name);
  putU32(buf, offset + RPMSG_AS_MSG.DST, dst);
  putU32(buf, offset + RPMSG_AS_MSG.SRC, src);
  putU32(buf, offset + RPMSG_AS_MSG.FLAGS, flags);
}

/**
 * Decodes an AS message of `len` bytes. Throws `MALFORMED` unless `len` is exactly 44
 * (the RFC's vhost callback requires it), `NAME_UNTERMINATED` for a name without NUL.
 *
 * @public
 */
export function readAsMsg(buf: Uint8Array, offset = 0, len = buf.length - offset): RpmsgAsMsg {
  if (len !== RPMSG_AS_MSG.SIZE) throw new RpmsgError('MALFORMED', `address-service message of ${len} bytes; it must be ${RPMSG_AS_MSG.SIZE}`, { len });
  checkSpace(buf, offset, RPMSG_AS_MSG.SIZE, 'address-service message');
  const name = readName(buf, offset + RPMSG_AS_MSG.NAME, 'address-service');
  return {
    name,
    dst: getU32(buf, offset + RPMSG_AS_MSG.DST),
    src: getU32(buf, offset + RPMSG_AS_MSG.SRC),
    flags: getU32(buf, offset + RPMSG_AS_MSG.FLAGS),
  };
}
