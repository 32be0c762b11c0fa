import { describe, expect, it } from 'vitest';
import { RPMSG_HDR, RPMSG_TX_QUEUE, type RpmsgBuffer, type RpmsgTransportSink } from '@x/rpmsg';
import { createRpmsgPair, createRpmsgTransportPair } from '@x/rpmsg/testing';
import { collect, until } from './helpers.js';

describe('RpmsgVringhTransport: returning the driver’s messages during a drain', () => {
  // The RFC's vhost_rpmsg rx loop puts each buffer back as it reads it; the driver sends
  // with those very buffers (virtio_rpmsg_bus get_a_tx_buf takes used ones from vq1).
  // A device that held all of them until its drain ended would starve a driver that keeps
  // sending while the device reads.
  it('hands read chains back on vq1 in batches of 32 while the drain is still running (RFC vhost_rpmsg rx loop, get_a_tx_buf)', async () => {
    // Ring of 256, 256 TX buffers: the batch is min(32, 256 / 4 = 64) = 32 chains.
    const pair = createRpmsgTransportPair({ queueSize: 256 });
    const { driver, device } = pair;
    const driverSink: RpmsgTransportSink = { receive: (b) => driver.releaseRxBuffer(b), txReady: () => undefined, fault: () => undefined };
    let received = 0;
    let backAt32 = -1;
    let backAt33 = -1;
    const faults: unknown[] = [];
    // What the driver can take back from vq1 right now (all of them given back at once).
    const reclaim = (): number => {
      const got: RpmsgBuffer[] = [];
      for (let b = driver.getTxBuffer(); b !== undefined; b = driver.getTxBuffer()) got.push(b);
      for (const b of got) driver.releaseTxBuffer(b);
      return got.length;
    };
    const deviceSink: RpmsgTransportSink = {
      receive(buf) {
        received++;
        // Before the 32nd release nothing has gone back; after it, exactly 32 have.
        if (received === 32) backAt32 = reclaim();
        if (received === 33) backAt33 = reclaim();
        device.releaseRxBuffer(buf);
      },
      txReady: () => undefined,
      fault: (e) => faults.push(e),
    };
    driver.attach(driverSink);
    device.attach(deviceSink);
    driver.start();
    await pair.settle();
    // All 256 TX buffers go out while the doorbell is held: one drain reads them all.
    pair.pause();
    for (let i = 0; i < 256; i++) {
      const buf = driver.getTxBuffer();
      expect(buf).toBeDefined();
      buf!.bytes.fill(0, 0, RPMSG_HDR.SIZE);
      driver.sendTxBuffer(buf!, RPMSG_HDR.SIZE + 8);
    }
    expect(driver.getTxBuffer()).toBeUndefined();
    pair.resume();
    await pair.settle();
    expect(faults).toEqual([]);
    expect(received).toBe(256);
    expect(backAt32).toBe(0);
    expect(backAt33).toBe(32);
    // And after the drain every one of the 256 is back.
    expect(reclaim()).toBe(256);
  });
});

describe('request-response within one drain (Linux virtqueue_add_inbuf publishes each RX buffer; one kick per drain, RFC patch 8)', () => {
  it('a driver callback whose reply comes back inside the same drain keeps the device supplied with RX buffers', async () => {
    // The device runs "on another core": here it reads each ping at once, inside the driver's
    // callback, so its echo lands in the used ring while the driver's drain is still going.
    const pair = createRpmsgPair({ queueSize: 16 });
    const deviceWarnings = collect(pair.device);
    const echo = pair.device.createEndpoint({ callback: (data, src, e) => e.trySendTo(data, src) });
    const rounds = 500;
    let left = rounds;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const ping = pair.driver.createEndpoint({
      dst: echo.addr,
      callback: () => {
        if (--left === 0) return done();
        ping.trySend('ping');
        pair.link.device.kick(RPMSG_TX_QUEUE);
      },
    });
    ping.trySend('ping');
    await Promise.race([finished, until(() => deviceWarnings.warnings.length > 0, 5000).catch(() => undefined)]);
    // Without publishing re-posted buffers during the drain, the device ran out after 16
    // rounds: its echo failed NO_BUFFER (a CALLBACK_FAILED warning) and the exchange stopped.
    expect(deviceWarnings.warnings.map(String)).toEqual([]);
    expect(left).toBe(0);
    pair.close();
  });
});
