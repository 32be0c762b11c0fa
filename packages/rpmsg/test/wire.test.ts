import { describe, expect, it } from 'vitest';
import {
  RPMSG_ADDR_ANY,
  RPMSG_AS_ADDR,
  RPMSG_AS_FLAGS,
  RPMSG_AS_MSG,
  RPMSG_BUF_SIZE,
  RPMSG_HDR,
  RPMSG_MAX_PAYLOAD,
  RPMSG_NAME_SIZE,
  RPMSG_NS_ADDR,
  RPMSG_NS_FLAGS,
  RPMSG_NS_MSG,
  RPMSG_NUM_BUFS,
  RPMSG_RESERVED_ADDRESSES,
  RPMSG_SEND_TIMEOUT_MS,
  VIRTIO_ID_RPMSG,
  VIRTIO_RPMSG_F,
  checkRpmsgName,
  isRpmsgError,
  readAsMsg,
  readNsMsg,
  readRpmsgHeader,
  writeAsMsg,
  writeNsMsg,
  writeRpmsgHeader,
} from '@x/rpmsg';

/** Bytes from a string of hex pairs ("00 04 …"), written by hand in the tests below. */
function hex(s: string): Uint8Array {
  const parts = s.trim().split(/\s+/);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

// "rpmsg-client-sample" in ASCII, 19 bytes: r=72 p=70 m=6d s=73 g=67 -=2d c=63 l=6c
// i=69 e=65 n=6e t=74 a=61.
const SAMPLE_NAME = '72 70 6d 73 67 2d 63 6c 69 65 6e 74 2d 73 61 6d 70 6c 65';
// 32 − 19 = 13 NUL bytes of padding.
const PAD13 = '00 00 00 00 00 00 00 00 00 00 00 00 00';

describe('constants (spec-and-peers §2.1, rfc-protocol §2.9–2.10)', () => {
  it('addresses, feature bits and sizes have their Linux / RFC values', () => {
    expect(RPMSG_NS_ADDR).toBe(53);
    expect(RPMSG_AS_ADDR).toBe(54);
    expect(RPMSG_ADDR_ANY).toBe(0xffffffff);
    expect(RPMSG_RESERVED_ADDRESSES).toBe(1024);
    expect(VIRTIO_RPMSG_F).toEqual({ NS: 0, AS: 1 });
    expect(RPMSG_NAME_SIZE).toBe(32);
    expect(RPMSG_BUF_SIZE).toBe(512);
    expect(RPMSG_MAX_PAYLOAD).toBe(496);
    expect(RPMSG_NUM_BUFS).toBe(256);
    expect(RPMSG_SEND_TIMEOUT_MS).toBe(15_000);
    expect(VIRTIO_ID_RPMSG).toBe(7);
    expect(RPMSG_NS_FLAGS).toEqual({ CREATE: 0, DESTROY: 1, AS_ANNOUNCE: 2 });
    expect(RPMSG_AS_FLAGS).toEqual({ ASSIGN: 1, FREE: 2 });
  });

  it('struct layouts: rpmsg_hdr 4+4+4+2+2 = 16, rpmsg_ns_msg 32+4+4 = 40, rpmsg_as_msg 32+4+4+4 = 44', () => {
    expect(RPMSG_HDR).toEqual({ SRC: 0, DST: 4, RESERVED: 8, LEN: 12, FLAGS: 14, SIZE: 16 });
    expect(RPMSG_NS_MSG).toEqual({ NAME: 0, ADDR: 32, FLAGS: 36, SIZE: 40 });
    expect(RPMSG_AS_MSG).toEqual({ NAME: 0, DST: 32, SRC: 36, FLAGS: 40, SIZE: 44 });
  });
});

describe('rpmsg_hdr (16 bytes, little-endian)', () => {
  it('encodes src 0x400 → dst 0x35, len 40: 00 04 00 00 | 35 00 00 00 | 00×4 | 28 00 | 00 00', () => {
    const b = new Uint8Array(16).fill(0xee);
    writeRpmsgHeader(b, 0, 0x400, 0x35, 40);
    expect(b).toEqual(hex('00 04 00 00  35 00 00 00  00 00 00 00  28 00  00 00'));
  });

  it('encodes every byte of every field little-endian, at an offset', () => {
    // src 0x12345678, dst 0xfffffffe, len 496 = 0x01f0, flags 0xabcd.
    const b = new Uint8Array(20).fill(0xee);
    writeRpmsgHeader(b, 4, 0x12345678, 0xfffffffe, 496, 0xabcd);
    expect(b).toEqual(hex('ee ee ee ee  78 56 34 12  fe ff ff ff  00 00 00 00  f0 01  cd ab'));
  });

  it('writes reserved as 0 and reads it back as received (OpenAMP keeps state there)', () => {
    const b = new Uint8Array(16).fill(0xff);
    writeRpmsgHeader(b, 0, 1, 2, 3);
    expect(b.subarray(8, 12)).toEqual(hex('00 00 00 00'));
    // A peer's header with reserved = descriptor 7, held-count 2 (OpenAMP: idx in bits 0–15, count in 16–31).
    const h = readRpmsgHeader(hex('01 00 00 00  02 00 00 00  07 00 02 00  03 00  00 00'));
    expect(h).toEqual({ src: 1, dst: 2, reserved: 0x0002_0007, len: 3, flags: 0 });
  });

  it('decodes into a caller object without allocating a new one', () => {
    const out = { src: 0, dst: 0, reserved: 0, len: 0, flags: 0 };
    const got = readRpmsgHeader(hex('78 56 34 12  fe ff ff ff  00 00 00 00  f0 01  cd ab'), 0, out);
    expect(got).toBe(out);
    expect(out).toEqual({ src: 0x12345678, dst: 0xfffffffe, reserved: 0, len: 496, flags: 0xabcd });
  });

  it('refuses values that do not fit their fields, and buffers too short, naming the argument', () => {
    const b = new Uint8Array(16);
    expect(() => writeRpmsgHeader(b, 0, 2 ** 32, 0, 0)).toThrow(/src/);
    expect(() => writeRpmsgHeader(b, 0, 0, -1, 0)).toThrow(RangeError);
    expect(() => writeRpmsgHeader(b, 0, 0, 0, 0x10000)).toThrow(/len/);
    expect(() => writeRpmsgHeader(b, 1, 0, 0, 0)).toThrow(RangeError);
    expect(() => writeRpmsgHeader(b, 0, '1' as unknown as number, 0, 0)).toThrow(TypeError);
    expect(() => readRpmsgHeader(new Uint8Array(15))).toThrow(RangeError);
  });
});

describe('rpmsg_ns_msg (40 bytes)', () => {
  it('encodes {"rpmsg-client-sample", 0x400, CREATE|AS_ANNOUNCE}: name NUL-padded to 32, then addr and flags', () => {
    const b = new Uint8Array(40).fill(0xee);
    writeNsMsg(b, 0, 'rpmsg-client-sample', 0x400, RPMSG_NS_FLAGS.CREATE | RPMSG_NS_FLAGS.AS_ANNOUNCE);
    expect(b).toEqual(hex(`${SAMPLE_NAME} ${PAD13}  00 04 00 00  02 00 00 00`));
    expect(readNsMsg(b)).toEqual({ name: 'rpmsg-client-sample', addr: 0x400, flags: 2 });
  });

  it('encodes DESTROY (flags 1) for a 31-byte name, the longest that keeps its NUL', () => {
    const name = 'a'.repeat(31);
    const b = new Uint8Array(40);
    writeNsMsg(b, 0, name, 0x35, RPMSG_NS_FLAGS.DESTROY);
    expect(b).toEqual(hex(`${'61 '.repeat(31)} 00  35 00 00 00  01 00 00 00`));
    expect(readNsMsg(b)).toEqual({ name, addr: 0x35, flags: 1 });
  });

  it('a received NS message must be exactly 40 bytes (Linux rpmsg_ns_cb) → MALFORMED', () => {
    const b = new Uint8Array(44);
    writeNsMsg(b, 0, 'x', 1, 0);
    expect(() => readNsMsg(b)).toThrow(expect.objectContaining({ name: 'RpmsgError', code: 'MALFORMED' }));
    expect(() => readNsMsg(b, 0, 39)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(readNsMsg(b, 0, 40).name).toBe('x');
  });

  it('a name with no NUL in its 32 bytes is refused (NAME_UNTERMINATED), not truncated', () => {
    const b = hex(`${'62 '.repeat(32)} 00 04 00 00  00 00 00 00`);
    let err: unknown;
    try {
      readNsMsg(b);
    } catch (e) {
      err = e;
    }
    expect(isRpmsgError(err, 'NAME_UNTERMINATED')).toBe(true);
  });

  it('names are at most 31 UTF-8 bytes without NUL (RPMSG_NAME_SIZE − 1)', () => {
    expect(checkRpmsgName('a'.repeat(31))).toBe(31);
    expect(() => checkRpmsgName('a'.repeat(32))).toThrow(RangeError);
    // "é" is 2 UTF-8 bytes: 16 of them are 32 bytes.
    expect(() => checkRpmsgName('é'.repeat(16))).toThrow(RangeError);
    expect(() => checkRpmsgName('a\0b')).toThrow(RangeError);
    expect(() => checkRpmsgName(3 as unknown as string)).toThrow(TypeError);
    expect(() => writeNsMsg(new Uint8Array(40), 0, 'a'.repeat(32), 0, 0)).toThrow(RangeError);
  });
});

describe('rpmsg_as_msg (44 bytes, RFC patch 10)', () => {
  it('encodes {"rpmsg-client-sample", dst 0x401, src 0x400, ASSIGN}', () => {
    const b = new Uint8Array(44).fill(0xee);
    writeAsMsg(b, 0, 'rpmsg-client-sample', 0x401, 0x400, RPMSG_AS_FLAGS.ASSIGN);
    expect(b).toEqual(hex(`${SAMPLE_NAME} ${PAD13}  01 04 00 00  00 04 00 00  01 00 00 00`));
    expect(readAsMsg(b)).toEqual({ name: 'rpmsg-client-sample', dst: 0x401, src: 0x400, flags: 1 });
  });

  it('encodes FREE (flags 2)', () => {
    const b = new Uint8Array(44);
    writeAsMsg(b, 0, 'ch', 0xdeadbeef, 0x10, RPMSG_AS_FLAGS.FREE);
    // "ch" = 63 68, then 30 NULs.
    expect(b).toEqual(hex(`63 68 ${'00 '.repeat(30)}  ef be ad de  10 00 00 00  02 00 00 00`));
  });

  it('len must be exactly 44 (the RFC vhost callback) → MALFORMED; name needs its NUL', () => {
    const b = new Uint8Array(44);
    writeAsMsg(b, 0, 'x', 1, 2, 1);
    expect(() => readAsMsg(b, 0, 40)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(() => readAsMsg(new Uint8Array(48))).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    const bad = new Uint8Array(44).fill(0x41);
    expect(() => readAsMsg(bad)).toThrow(expect.objectContaining({ code: 'NAME_UNTERMINATED' }));
  });
});
