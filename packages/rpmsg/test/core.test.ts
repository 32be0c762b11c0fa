import { describe, expect, it } from 'vitest';
import {
  RPMSG_ADDR_ANY,
  RPMSG_AS_ADDR,
  RPMSG_NS_ADDR,
  RPMSG_NS_FLAGS,
  isRpmsgError,
  writeAsMsg,
  writeNsMsg,
  writeRpmsgHeader,
  type RpmsgChannel,
  type RpmsgDriver,
} from '@x/rpmsg';
import { createRpmsgPair } from '@x/rpmsg/testing';
import { MockSplitQueue } from '@x/vring/testing';
import { collect, text, until, utf8 } from './helpers.js';

/** One raw message: header (src, dst, len = payload length) + payload. */
function frame(src: number, dst: number, payload: Uint8Array, len = payload.length): Uint8Array {
  const b = new Uint8Array(16 + payload.length);
  writeRpmsgHeader(b, 0, src, dst, len);
  b.set(payload, 16);
  return b;
}

describe('endpoints and addresses (Linux rpmsg_create_ept, idr_alloc from RPMSG_RESERVED_ADDRESSES)', () => {
  it('the NS endpoint (53) exists with VIRTIO_RPMSG_F_NS and the AS endpoint (54) with F_AS', () => {
    const both = createRpmsgPair();
    expect(both.driver.endpoint(RPMSG_NS_ADDR)).toBeDefined();
    expect(both.device.endpoint(RPMSG_AS_ADDR)).toBeDefined();
    both.close();
    const none = createRpmsgPair({ features: 0 });
    expect(none.driver.endpoint(RPMSG_NS_ADDR)).toBeUndefined();
    expect(none.device.endpoint(RPMSG_AS_ADDR)).toBeUndefined();
    none.close();
    const nsOnly = createRpmsgPair({ features: 1 });
    expect(nsOnly.device.endpoint(RPMSG_NS_ADDR)).toBeDefined();
    expect(nsOnly.device.endpoint(RPMSG_AS_ADDR)).toBeUndefined();
    nsOnly.close();
  });

  it('allocates the lowest free address from 1024 up; a fixed src is used as given; a taken one is refused', () => {
    const { driver, close } = createRpmsgPair();
    const a = driver.createEndpoint();
    const b = driver.createEndpoint();
    const c = driver.createEndpoint();
    expect([a.addr, b.addr, c.addr]).toEqual([1024, 1025, 1026]);
    b.destroy();
    expect(driver.createEndpoint().addr).toBe(1025);
    expect(driver.createEndpoint({ src: 0x2000 }).addr).toBe(0x2000);
    expect(driver.createEndpoint().addr).toBe(1027);
    expect(() => driver.createEndpoint({ src: 0x2000 })).toThrow(expect.objectContaining({ code: 'ADDRESS_IN_USE' }));
    expect(() => driver.createEndpoint({ src: RPMSG_NS_ADDR })).toThrow(expect.objectContaining({ code: 'ADDRESS_IN_USE' }));
    expect(() => driver.createEndpoint({ src: 2 ** 32 })).toThrow(RangeError);
    close();
  });

  it('a message reaches the endpoint at its dst with the sender src; strings are sent as UTF-8', async () => {
    const { driver, device, close } = createRpmsgPair();
    const got: Array<[string, number]> = [];
    const rx = device.createEndpoint({ callback: (data, src) => got.push([text(data), src]) });
    const tx = driver.createEndpoint({ dst: rx.addr });
    await tx.send('hello world!');
    await tx.sendTo(utf8.encode('bytes'), rx.addr);
    await tx.sendOffchannel(0x777, rx.addr, 'offchannel');
    await until(() => got.length === 3);
    expect(got).toEqual([
      ['hello world!', tx.addr],
      ['bytes', tx.addr],
      ['offchannel', 0x777],
    ]);
    expect(rx.stats).toMatchObject({ rxMessages: 3, rxBytes: 12 + 5 + 10 });
    // sendOffchannel counts for the endpoint that sent it, whatever src it wrote.
    expect(tx.stats).toMatchObject({ txMessages: 3, txBytes: 27 });
    close();
  });

  it('sending to RPMSG_ADDR_ANY is refused with BAD_ADDRESS (Linux -EINVAL); a payload over 496 bytes with RangeError', async () => {
    const { driver, close } = createRpmsgPair();
    const ept = driver.createEndpoint();
    await expect(ept.send('x')).rejects.toMatchObject({ code: 'BAD_ADDRESS' });
    expect(() => ept.trySendTo('x', RPMSG_ADDR_ANY)).toThrow(expect.objectContaining({ code: 'BAD_ADDRESS' }));
    await expect(ept.sendTo(new Uint8Array(497), 0x400)).rejects.toBeInstanceOf(RangeError);
    await expect(ept.sendTo('é'.repeat(249), 0x400)).rejects.toBeInstanceOf(RangeError);
    await expect(ept.sendTo(new Uint8Array(496), 0x400)).resolves.toBeUndefined();
    close();
  });
});

describe('name service at 53 (Linux rpmsg_ns.c; RFC patch 10 AS_ANNOUNCE)', () => {
  it('CREATE makes a channel {name, src ANY, dst addr} on the peer, probed by the driver matching its name', async () => {
    const { driver, device, close } = createRpmsgPair();
    const probed: RpmsgChannel[] = [];
    driver.registerDriver({ name: 'sample', idTable: ['rpmsg-client-sample'], probe: (ch) => probed.push(ch), callback: () => {} });
    const local = device.createChannel({ name: 'rpmsg-client-sample' }, { announce: true });
    device.registerDriver({ name: 'sample', idTable: ['rpmsg-client-sample'], callback: () => {} });
    expect(local.endpoint?.addr).toBe(1024);
    await until(() => probed.length === 1);
    const ch = probed[0]!;
    expect(ch).toMatchObject({ name: 'rpmsg-client-sample', origin: 'remote', dst: local.endpoint!.addr, announce: true });
    // The default endpoint took an allocated address, which became the channel's src.
    expect(ch.src).toBe(ch.endpoint!.addr);
    expect(ch.src).toBeGreaterThanOrEqual(1024);
    close();
  });

  it('DESTROY removes the peer-created channel (driver remove runs)', async () => {
    const { driver, device, close } = createRpmsgPair();
    const removed: string[] = [];
    driver.registerDriver({ name: 'd', idTable: ['svc'], callback: () => {}, remove: (ch) => removed.push(ch.name) });
    device.registerDriver({ name: 'd', idTable: ['svc'], callback: () => {} });
    const local = device.createChannel({ name: 'svc' }, { announce: true });
    await until(() => driver.channels.length === 1);
    device.releaseChannel(local);
    await until(() => driver.channels.length === 0);
    expect(removed).toEqual(['svc']);
    close();
  });

  it('a driver registered after the announcement probes the channel then', async () => {
    const { driver, device, close } = createRpmsgPair();
    device.registerDriver({ name: 'd', idTable: ['late'], callback: () => {} });
    device.createChannel({ name: 'late' }, { announce: true });
    await until(() => driver.channels.length === 1);
    expect(driver.channels[0]!.driver).toBeUndefined();
    const drv: RpmsgDriver = { name: 'late-driver', idTable: ['late'], callback: () => {} };
    driver.registerDriver(drv);
    expect(driver.channels[0]!.driver).toBe(drv);
    close();
  });

  it('a channel announced without AS is bound on the device side by the first message (OpenAMP rx callback)', async () => {
    const { driver, device, close } = createRpmsgPair({ features: 1 });
    const replies: string[] = [];
    driver.registerDriver({
      name: 'd',
      idTable: ['svc'],
      probe: (ch) => void ch.endpoint!.send('ping'),
      callback: (_ch, data) => replies.push(text(data)),
    });
    device.registerDriver({ name: 'd', idTable: ['svc'], callback: (ch, data) => void ch.endpoint!.send(`re: ${text(data)}`) });
    const local = device.createChannel({ name: 'svc' }, { announce: true });
    await until(() => replies.length === 1);
    expect(replies).toEqual(['re: ping']);
    expect(local.dst).toBe(driver.channels[0]!.src);
    close();
  });

  it('an NS message that is not 40 bytes, or whose name has no NUL, is dropped and reported', async () => {
    const { driver, link, close } = createRpmsgPair();
    const ev = collect(driver);
    const ns = new Uint8Array(40);
    writeNsMsg(ns, 0, 'x', 0x400, RPMSG_NS_FLAGS.CREATE);
    expect(link.inject('device', frame(0x400, RPMSG_NS_ADDR, ns.subarray(0, 39)))).toBe(true);
    ns.fill(0x61, 0, 32); // 32 × 'a', no NUL
    expect(link.inject('device', frame(0x400, RPMSG_NS_ADDR, ns))).toBe(true);
    await until(() => ev.dropped.length === 2);
    expect(ev.dropped.map((e) => e.code)).toEqual(['MALFORMED', 'NAME_UNTERMINATED']);
    expect(driver.channels).toHaveLength(0);
    expect(driver.stats.drops).toEqual({ MALFORMED: 1, NAME_UNTERMINATED: 1 });
    close();
  });
});

describe('address service at 54 (RFC patch 10, rfc-protocol §2.9)', () => {
  function announced() {
    const pair = createRpmsgPair();
    const cb = (): void => {};
    pair.driver.registerDriver({ name: 'd', idTable: ['svc'], callback: cb });
    pair.device.registerDriver({ name: 'd', idTable: ['svc'], callback: cb });
    const local = pair.device.createChannel({ name: 'svc' }, { announce: true });
    return { ...pair, local };
  }

  it('the virtio side answers CREATE|AS_ANNOUNCE with AS ASSIGN: the vhost side learns the address it bound', async () => {
    const { driver, device, local, close } = announced();
    const ev = collect(device);
    const seen: number[] = [];
    device.on('channelDst', (ch, dst) => ch === local && seen.push(dst));
    await until(() => local.dst !== RPMSG_ADDR_ANY);
    const remote = driver.channels[0]!;
    expect(local.dst).toBe(remote.src);
    // ASSIGN, then the NS CREATE the RFC's vhost side had no endpoint for: it binds the
    // same address again (no duplicate channel, nothing dropped).
    await until(() => device.endpoint(RPMSG_NS_ADDR)!.stats.rxMessages === 1);
    expect(seen).toEqual([remote.src]);
    expect(device.channels).toHaveLength(1);
    expect(ev.dropped).toEqual([]);
    expect(device.endpoint(RPMSG_AS_ADDR)!.stats.rxMessages).toBe(1);
    close();
  });

  it('FREE resets dst to RPMSG_ADDR_ANY when the virtio side lets go of the channel', async () => {
    const { driver, device, local, close } = announced();
    await until(() => local.dst !== RPMSG_ADDR_ANY);
    driver.releaseChannel(driver.channels[0]!);
    await until(() => local.dst === RPMSG_ADDR_ANY);
    expect(device.channels).toEqual([local]);
    close();
  });

  it('ASSIGN for a channel bound to another address is refused (BUSY); the same address is accepted again', async () => {
    const { device, link, local, close } = announced();
    await until(() => local.dst !== RPMSG_ADDR_ANY);
    const bound = local.dst;
    const ev = collect(device);
    const as = new Uint8Array(44);
    writeAsMsg(as, 0, 'svc', 0x9999, local.src, 1);
    link.inject('driver', frame(0x500, RPMSG_AS_ADDR, as));
    writeAsMsg(as, 0, 'svc', bound, local.src, 1);
    link.inject('driver', frame(0x500, RPMSG_AS_ADDR, as));
    await until(() => device.endpoint(RPMSG_AS_ADDR)!.stats.rxMessages === 3);
    expect(ev.dropped.map((e) => e.code)).toEqual(['BUSY']);
    expect(local.dst).toBe(bound);
    close();
  });

  it('an AS message must be 44 bytes, name an existing channel, and carry ASSIGN or FREE', async () => {
    const { device, link, local, close } = announced();
    await until(() => local.dst !== RPMSG_ADDR_ANY);
    const ev = collect(device);
    const as = new Uint8Array(44);
    writeAsMsg(as, 0, 'svc', 0x500, local.src, 1);
    link.inject('driver', frame(0x500, RPMSG_AS_ADDR, as.subarray(0, 40)));
    writeAsMsg(as, 0, 'nope', 0x500, local.src, 1);
    link.inject('driver', frame(0x500, RPMSG_AS_ADDR, as));
    writeAsMsg(as, 0, 'svc', 0x500, local.src, 3);
    link.inject('driver', frame(0x500, RPMSG_AS_ADDR, as));
    as.fill(0x41, 0, 32);
    link.inject('driver', frame(0x500, RPMSG_AS_ADDR, as));
    await until(() => ev.dropped.length === 4);
    expect(ev.dropped.map((e) => e.code)).toEqual(['MALFORMED', 'NO_CHANNEL', 'BAD_FLAGS', 'NAME_UNTERMINATED']);
    expect(ev.dropped[0]).toMatchObject({ src: 0x500, dst: RPMSG_AS_ADDR, len: 40 });
    close();
  });
});

describe('RX drain with vq0 callbacks off (RFC patch 8)', () => {
  it('while messages are delivered avail.flags has VRING_AVAIL_F_NO_INTERRUPT (1); after the drain it is 0 again', async () => {
    const { driver, device, link, close } = createRpmsgPair({ queueSize: 16 });
    const availFlags = (): number => link.driverMemory.read16(link.layouts[0].avail);
    const seen: number[] = [];
    const rx = driver.createEndpoint({ callback: () => seen.push(availFlags()) });
    const tx = device.createEndpoint({ dst: rx.addr });
    for (let i = 0; i < 5; i++) await tx.send(`m${i}`);
    await until(() => seen.length === 5);
    expect(seen).toEqual([1, 1, 1, 1, 1]);
    expect(availFlags()).toBe(0);
    close();
  });
});

describe('many endpoints on one channel', () => {
  it('32 endpoints talk to one channel endpoint; each reply goes back to its own sender', async () => {
    const { driver, device, close } = createRpmsgPair();
    device.registerDriver({
      name: 'echo',
      idTable: ['echo'],
      callback: (ch, data, src) => void ch.endpoint!.sendTo(`${text(data)} from 0x${src.toString(16)}`, src),
    });
    const ch = device.createChannel({ name: 'echo', src: 0x50 });
    const got = new Map<number, string[]>();
    const epts = Array.from({ length: 32 }, () =>
      driver.createEndpoint({ dst: ch.src, callback: (data, _src, e) => got.set(e.addr, [...(got.get(e.addr) ?? []), text(data)]) }),
    );
    await Promise.all(epts.map((e, i) => e.send(`m${i}`)));
    await until(() => got.size === 32);
    for (const [i, e] of epts.entries()) expect(got.get(e.addr)).toEqual([`m${i} from 0x${e.addr.toString(16)}`]);
    close();
  });
});

describe('buffer exhaustion (Linux rpmsg_send waits up to 15 s; rpmsg_trysend fails with -ENOMEM)', () => {
  /** A 16-buffer link whose device endpoint holds every message it gets until told. */
  function holding() {
    const pair = createRpmsgPair({ queueSize: 16 });
    const held: Uint8Array[] = [];
    const rx = pair.device.createEndpoint({
      callback: (data, _src, e) => {
        e.holdRxBuffer(data);
        held.push(data);
      },
    });
    const tx = pair.driver.createEndpoint({ dst: rx.addr });
    return { ...pair, held, rx, tx };
  }

  it('send waits when all 16 TX buffers are out, and goes when one comes back', async () => {
    const { held, rx, tx, close } = holding();
    for (let i = 0; i < 16; i++) await tx.send(`m${i}`);
    await until(() => held.length === 16);
    expect(tx.stats.txWaits).toBe(0);
    let sent = false;
    const p = tx.send('m16').then(() => (sent = true));
    await until(() => tx.stats.txWaits === 1);
    expect(sent).toBe(false);
    expect(rx.stats.rxHeld).toBe(16);
    rx.releaseRxBuffer(held.shift()!);
    await p;
    await until(() => held.length === 16);
    expect(text(held[15]!)).toBe('m16');
    close();
  });

  it('trySend fails at once with NO_BUFFER; getTxBuffer-less try returns undefined', async () => {
    const { held, tx, close } = holding();
    for (let i = 0; i < 16; i++) tx.trySend(`m${i}`);
    await until(() => held.length === 16);
    let err: unknown;
    try {
      tx.trySend('one more');
    } catch (e) {
      err = e;
    }
    expect(isRpmsgError(err, 'NO_BUFFER')).toBe(true);
    expect(tx.tryGetTxBuffer()).toBeUndefined();
    close();
  });

  it('a waiting send rejects with ABORTED when its signal aborts, and TIMEOUT after timeoutMs', async () => {
    const { held, rx, tx, close } = holding();
    for (let i = 0; i < 16; i++) await tx.send(`m${i}`);
    await until(() => held.length === 16);
    const ac = new AbortController();
    const aborted = tx.send('a', { signal: ac.signal });
    ac.abort(new Error('user'));
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(tx.send('t', { timeoutMs: 1 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(tx.send('s', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    // Neither took a buffer: the next one released goes to the next sender.
    rx.releaseRxBuffer(held.shift()!);
    await tx.send('after');
    await until(() => held.length === 16);
    expect(text(held[15]!)).toBe('after');
    close();
  });

  it('waiting sends keep their order, and a later send does not overtake them', async () => {
    const { held, rx, tx, close } = holding();
    for (let i = 0; i < 16; i++) await tx.send(`m${i}`);
    await until(() => held.length === 16);
    const ps = [tx.send('w1'), tx.send('w2'), tx.send('w3')];
    while (held.length > 0) rx.releaseRxBuffer(held.shift()!);
    await Promise.all(ps);
    await until(() => held.length === 3);
    expect(held.map(text)).toEqual(['w1', 'w2', 'w3']);
    close();
  });

  it('the device side waits too when the driver holds its RX buffers', async () => {
    const { driver, device, close } = createRpmsgPair({ queueSize: 16 });
    const held: Uint8Array[] = [];
    const rx = driver.createEndpoint({ callback: (d, _s, e) => (e.holdRxBuffer(d), held.push(d)) });
    const tx = device.createEndpoint({ dst: rx.addr });
    for (let i = 0; i < 16; i++) await tx.send(`d${i}`);
    const p = tx.send('d16');
    await until(() => tx.stats.txWaits === 1);
    rx.releaseRxBuffer(held.shift()!);
    await p;
    await until(() => held.length === 16);
    expect(text(held[15]!)).toBe('d16');
    close();
  });

  it('close fails waiting sends with CLOSED', async () => {
    const { held, tx, driver, close } = holding();
    for (let i = 0; i < 16; i++) await tx.send(`m${i}`);
    await until(() => held.length === 16);
    const p = tx.send('x');
    driver.close();
    await expect(p).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(tx.send('y')).rejects.toMatchObject({ code: 'CLOSED' });
    close();
  });

  it('close({ linkDown }) (issue 6: a lost link): waiting sends and later calls fail with LINK_DOWN carrying the cause; an endpoint its owner destroyed before stays CLOSED', async () => {
    const { held, tx, driver, close } = holding();
    const gone = driver.createEndpoint({});
    gone.destroy();
    for (let i = 0; i < 16; i++) await tx.send(`m${i}`);
    await until(() => held.length === 16);
    const waiting = tx.send('x');
    await until(() => tx.stats.txWaits === 1);
    const cause = new Error('the NTB link went down');
    driver.close({ linkDown: cause });
    const e = await waiting.then(() => undefined, (x: unknown) => x);
    expect(isRpmsgError(e, 'LINK_DOWN')).toBe(true);
    expect((e as Error).cause).toBe(cause);
    // Later calls on the endpoint the lost link destroyed, and on the virtproc, say why too.
    await expect(tx.send('y')).rejects.toMatchObject({ code: 'LINK_DOWN', cause });
    expect(() => tx.trySend('y')).toThrow(expect.objectContaining({ code: 'LINK_DOWN' }));
    expect(() => driver.createEndpoint({})).toThrow(expect.objectContaining({ code: 'LINK_DOWN' }));
    // Destroyed by its owner before the link went: an orderly CLOSED.
    await expect(gone.send('z')).rejects.toMatchObject({ code: 'CLOSED' });
    // { linkDown: true } when the transport has no error to give; a wrong options type is refused.
    const other = createRpmsgPair();
    const ep = other.driver.createEndpoint({ dst: 0x400 });
    other.driver.close({ linkDown: true });
    await expect(ep.send('w')).rejects.toMatchObject({ code: 'LINK_DOWN' });
    expect(() => other.device.close(7 as never)).toThrow(TypeError);
    other.close();
    close();
  });
});

describe('zero copy (OpenAMP rpmsg_get_tx_payload_buffer / rpmsg_send_nocopy / rpmsg_hold_rx_buffer)', () => {
  it('a lent TX buffer is filled in place and sent; sending it twice is INVALID_BUFFER', async () => {
    const { driver, device, close } = createRpmsgPair();
    const got: string[] = [];
    const rx = device.createEndpoint({ callback: (d) => got.push(text(d)) });
    const tx = driver.createEndpoint({ dst: rx.addr });
    const buf = await tx.getTxBuffer();
    expect(buf.payload.length).toBe(496);
    const n = utf8.encodeInto('zero copy', buf.payload).written;
    tx.sendNoCopy(buf, n);
    expect(() => tx.sendNoCopy(buf, n)).toThrow(expect.objectContaining({ code: 'INVALID_BUFFER' }));
    const unused = tx.tryGetTxBuffer()!;
    tx.releaseTxBuffer(unused);
    expect(() => tx.releaseTxBuffer(unused)).toThrow(expect.objectContaining({ code: 'INVALID_BUFFER' }));
    expect(() => tx.sendNoCopy(tx.tryGetTxBuffer()!, 497)).toThrow(RangeError);
    await until(() => got.length === 1);
    expect(got).toEqual(['zero copy']);
    close();
  });

  it('holdRxBuffer works only on the message being delivered; a held buffer stays valid until released', async () => {
    const { driver, device, close } = createRpmsgPair();
    let kept: Uint8Array | undefined;
    const rx = device.createEndpoint({
      callback: (d, _s, e) => {
        e.holdRxBuffer(d);
        kept = d;
      },
    });
    const tx = driver.createEndpoint({ dst: rx.addr });
    await tx.send('kept');
    await until(() => kept !== undefined);
    expect(text(kept!)).toBe('kept');
    expect(() => rx.holdRxBuffer(new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'INVALID_BUFFER' }));
    expect(rx.stats.rxHeld).toBe(1);
    rx.releaseRxBuffer(kept!);
    expect(rx.stats.rxHeld).toBe(0);
    expect(() => rx.releaseRxBuffer(kept!)).toThrow(expect.objectContaining({ code: 'INVALID_BUFFER' }));
    close();
  });
});

describe('async iterator and rpmsg_ctrl-like endpoints (/dev/rpmsgN)', () => {
  it('createEndpoint({name, src, dst}) without a callback is read with for-await; destroy ends the loop', async () => {
    const { driver, device, close } = createRpmsgPair();
    const rx = device.createEndpoint({ name: 'raw', src: 0x3000 });
    const tx = driver.createEndpoint({ name: 'raw', dst: 0x3000 });
    for (let i = 0; i < 5; i++) await tx.send(`n${i}`);
    const seen: string[] = [];
    for await (const m of rx) {
      seen.push(`${text(m.data)}@${m.src}`);
      if (seen.length === 5) rx.destroy();
    }
    expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => `n${i}@${tx.addr}`));
    close();
  });

  it('an endpoint has one reader: a second one, or one on a callback endpoint, is BUSY', () => {
    const { driver, close } = createRpmsgPair();
    const e = driver.createEndpoint();
    const it1 = e.messages();
    expect(() => e.messages()).toThrow(expect.objectContaining({ code: 'BUSY' }));
    void it1.return!();
    expect(() => e.createStream()).not.toThrow();
    const cb = driver.createEndpoint({ callback: () => {} });
    expect(() => cb.messages()).toThrow(expect.objectContaining({ code: 'BUSY' }));
    close();
  });

  it('unread messages keep their RX buffers: the sender waits until the reader catches up', async () => {
    const { driver, device, close } = createRpmsgPair({ queueSize: 8 });
    const rx = device.createEndpoint();
    const tx = driver.createEndpoint({ dst: rx.addr });
    for (let i = 0; i < 8; i++) await tx.send(`q${i}`);
    const late = tx.send('q8');
    await until(() => tx.stats.txWaits === 1 && rx.stats.rxHeld === 8);
    const it = rx.messages();
    const first = await it.next();
    expect(text(first.value!.data)).toBe('q0');
    await late;
    const rest: string[] = [];
    for (let i = 0; i < 8; i++) rest.push(text((await it.next()).value!.data));
    expect(rest).toEqual(['q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8']);
    await it.return!();
    close();
  });

  it('an aborted reader rejects with ABORTED', async () => {
    const { device, close } = createRpmsgPair();
    const ac = new AbortController();
    const it = device.createEndpoint().messages({ signal: ac.signal });
    const p = it.next();
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    close();
  });
});

describe('Duplex stream (one message per chunk, like /dev/rpmsgN)', () => {
  it('write() returns false when the link is full, and every message arrives in order once the reader reads', async () => {
    const { driver, device, close } = createRpmsgPair({ queueSize: 8 });
    const rxEpt = device.createEndpoint();
    const txEpt = driver.createEndpoint({ dst: rxEpt.addr });
    const rxStream = rxEpt.createStream({ readableHighWaterMark: 4 });
    const txStream = txEpt.createStream({ writableHighWaterMark: 4 });
    const total = 100;
    let i = 0;
    let sawFull = false;
    const writer = (async () => {
      while (i < total) {
        if (!txStream.write(`s${i++}`)) {
          sawFull = true;
          await new Promise((r) => txStream.once('drain', r));
        }
      }
      txStream.end();
    })();
    // The reader has not started: 8 RX buffers + 4 copies in the readable buffer at most.
    await until(() => sawFull && txEpt.stats.txWaits > 0);
    expect(rxEpt.stats.rxHeld).toBeLessThanOrEqual(8);
    const got: string[] = [];
    for await (const chunk of rxStream) {
      got.push(text(chunk as Uint8Array));
      if (got.length === total) break;
    }
    await writer;
    expect(got).toEqual(Array.from({ length: total }, (_, k) => `s${k}`));
    close();
  });

  it('destroying the endpoint ends the readable side after what was queued', async () => {
    const { driver, device, close } = createRpmsgPair();
    const rxEpt = device.createEndpoint();
    const tx = driver.createEndpoint({ dst: rxEpt.addr });
    await tx.send('last words');
    await until(() => rxEpt.stats.rxHeld === 1);
    const s = rxEpt.createStream();
    rxEpt.destroy();
    const chunks: string[] = [];
    for await (const c of s) chunks.push(text(c as Uint8Array));
    expect(chunks).toEqual(['last words']);
    close();
  });
});

describe('received messages are hostile (issue 4 "Wire"): counted, dropped, reported, buffer returned', () => {
  it('short buffer, len past the used length, len 0 and an unknown destination are each dropped with their code', async () => {
    const { driver, device, link, close } = createRpmsgPair({ queueSize: 8 });
    const ev = collect(driver);
    const ok: string[] = [];
    const rx = driver.createEndpoint({ src: 0x400, callback: (d) => ok.push(text(d)) });
    link.inject('device', frame(1, 0x400, utf8.encode('abc')), 8); // used length 8 < 16
    link.inject('device', frame(1, 0x400, utf8.encode('abc'), 4)); // len 4 > 19 − 16 = 3
    link.inject('device', frame(1, 0x400, new Uint8Array(0))); // len 0
    link.inject('device', frame(1, 0x401, utf8.encode('abc'))); // nobody at 0x401
    await until(() => ev.dropped.length === 4);
    expect(ev.dropped.map((e) => e.code)).toEqual(['TRUNCATED', 'BAD_LENGTH', 'BAD_LENGTH', 'NO_ENDPOINT']);
    expect(ev.dropped[1]).toMatchObject({ src: 1, dst: 0x400, len: 4 });
    expect(driver.stats.dropped).toBe(4);
    // Every RX buffer came back: 3 × 8 more messages get through an 8-buffer ring.
    const tx = device.createEndpoint({ dst: rx.addr });
    for (let i = 0; i < 24; i++) await tx.send(`ok${i}`);
    await until(() => ok.length === 24);
    close();
  });

  it('a device that reports more bytes than the buffer holds breaks no buffer: it is reclaimed and reported', async () => {
    const { driver, link, close } = createRpmsgPair({ queueSize: 8 });
    const ev = collect(driver);
    link.inject('device', frame(1, 0x400, utf8.encode('abc')), 600);
    await until(() => ev.warnings.length === 1);
    expect(ev.warnings[0]!.code).toBe('RING_ERROR');
    expect(isRpmsgError(ev.warnings[0]!.cause) || (ev.warnings[0]!.cause as { name: string }).name === 'VringError').toBe(true);
    close();
  });

  it('a driver message longer than the device RX buffer size is dropped (BAD_LENGTH, Linux "inbound msg too big")', async () => {
    const { device, link, close } = createRpmsgPair({ bufSize: 512, deviceBufSize: 256 });
    const ev = collect(device);
    device.createEndpoint({ src: 0x400, callback: () => {} });
    link.inject('driver', frame(1, 0x400, new Uint8Array(300)));
    await until(() => ev.dropped.length === 1);
    expect(ev.dropped[0]).toMatchObject({ code: 'BAD_LENGTH', len: 316 });
    close();
  });

  it('a malformed ring (avail.idx jumping past the queue size, §2.7.6) is reported as RING_ERROR, without a throw', async () => {
    const { device, link, close } = createRpmsgPair({ queueSize: 8 });
    const ev = collect(device);
    const vq1 = new MockSplitQueue(link.driverMemory, link.layouts[1]);
    vq1.setAvailIdx(100);
    link.device.kick(1);
    await until(() => ev.warnings.length === 1);
    expect(ev.warnings[0]!.code).toBe('RING_ERROR');
    expect((ev.warnings[0]!.cause as { code?: string }).code).toBe('AVAIL_IDX_JUMP');
    close();
  });

  it('a throwing callback is reported as CALLBACK_FAILED and the next message is delivered', async () => {
    const { driver, device, close } = createRpmsgPair();
    const ev = collect(device);
    let n = 0;
    const rx = device.createEndpoint({
      callback: () => {
        if (n++ === 0) throw new Error('boom');
      },
    });
    const tx = driver.createEndpoint({ dst: rx.addr });
    await tx.send('a');
    await tx.send('b');
    await until(() => n === 2);
    expect(ev.warnings.map((e) => e.code)).toEqual(['CALLBACK_FAILED']);
    close();
  });
});
