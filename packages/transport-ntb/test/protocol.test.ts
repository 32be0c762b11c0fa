// The RFC's NTB scratchpad protocol (rfc-protocol §2.6, ntb_virtio.h) as the bytes show
// it, and the gaps closed: ring placement and alignment, the device-config area, link
// down resetting the scratchpads, commands that time out or fail with typed errors.
import { describe, expect, it } from 'vitest';
import { VIRTIO_DEV_ANY_ID, VirtioBus, type VirtioDriver } from '@x/virtio-core';
import { vringSize } from '@x/vring';
import {
  LocalNtbLine,
  NTB_HOST_CMD,
  NTB_HOST_CMD_STATUS,
  NTB_VIRTIO_BUFFER_OFFSET,
  NTB_VIRTIO_COMMAND_TIMEOUT_MS,
  NTB_VIRTIO_LINK_RETRY_MS,
  NTB_VIRTIO_MAX_VQS,
  NTB_VIRTIO_SPAD as SP,
  NTB_VIRTIO_TYPE,
  NtbPairPort,
  NtbVirtio,
  createNtbPairLink,
  isNtbError,
  ntbVhostQueueNumBuffers,
  ntbVirtioQueueOffset,
  type NtbVirtioEvent,
} from '@x/transport-ntb';
import { NtbEchoClient, NtbEchoVhostDriver, createNtbPairHarness } from '@x/transport-ntb/testing';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('the scratchpad map and constants (ntb_virtio.h)', () => {
  it('indexes 0–23 as the RFC numbers them', () => {
    expect(SP).toEqual({
      VIRTIO_TYPE: 0, VHOST_VENDORID: 1, VHOST_DEVICEID: 2, VHOST_FEATURES_UPPER: 3, VHOST_FEATURES_LOWER: 4,
      VIRTIO_FEATURES_UPPER: 5, VIRTIO_FEATURES_LOWER: 6, VHOST_MW0_SIZE_LOWER: 7, VHOST_MW0_SIZE_UPPER: 8,
      VIRTIO_MW0_LOWER_ADDR: 9, VIRTIO_MW0_UPPER_ADDR: 10, VHOST_DEVICE_STATUS: 11, VHOST_CONFIG_GENERATION: 12,
      VHOST_COMMAND: 13, VHOST_COMMAND_STATUS: 14, VHOST_QUEUE_BASE: 15, VHOST_DEVICE_CFG_SPACE: 23,
    });
    expect(Array.from({ length: 8 }, (_, n) => ntbVhostQueueNumBuffers(n))).toEqual([15, 16, 17, 18, 19, 20, 21, 22]);
    expect(() => ntbVhostQueueNumBuffers(8)).toThrow(RangeError);
    expect(NTB_VIRTIO_TYPE).toEqual({ VIRTIO: 1, VHOST: 2 });
    expect(NTB_HOST_CMD).toEqual({ NONE: 0, SET_STATUS: 1, FINALIZE_FEATURES: 2, RESET: 3 });
    expect(NTB_HOST_CMD_STATUS).toEqual({ NONE: 0, OKAY: 1, ERROR: 2 });
    expect([NTB_VIRTIO_MAX_VQS, NTB_VIRTIO_LINK_RETRY_MS, NTB_VIRTIO_COMMAND_TIMEOUT_MS, NTB_VIRTIO_BUFFER_OFFSET]).toEqual([8, 10, 1000, 0x20000]);
  });

  it('ring placement: each ring rounded up to 4096, so queue 1 of two 256-entry queues starts at 12288', () => {
    // vring_size(256, 4096) = ALIGN(16·256 + 2·(3+256), 4096) + 2·3 + 8·256 = 8192 + 2054 = 10246;
    // the RFC put queue 1 at 10246 (descriptor table not 16-aligned); rounded up: 12288.
    expect(vringSize(256, 4096)).toBe(10246);
    expect(ntbVirtioQueueOffset([256, 256], 1)).toBe(12288);
    expect(ntbVirtioQueueOffset([256, 256, 64], 2)).toBe(24576);
    expect(ntbVirtioQueueOffset([256, 0, 64], 2)).toBe(12288);
  });
});

describe('the handshake as the scratchpads show it', () => {
  it('after the handshake: ids, features, window size and address, queue sizes where the RFC puts them; rings and buffers in the window', async () => {
    const bus = new VirtioBus();
    const client = new NtbEchoClient();
    await bus.registerDriver(client);
    const h = createNtbPairHarness({ vhostDriver: new NtbEchoVhostDriver(), virtioBus: bus });
    await h.start();
    await h.ready();
    await client.ready();
    const d2 = h.port2.dev;
    const d1 = h.port1.dev;
    const w = h.virtio.window!;
    expect(d1.spadRead(SP.VIRTIO_TYPE)).toBe(NTB_VIRTIO_TYPE.VHOST); // HOST2 wrote it into HOST1's spad 0
    expect(d2.spadRead(SP.VIRTIO_TYPE)).toBe(NTB_VIRTIO_TYPE.VIRTIO);
    expect([d2.spadRead(SP.VHOST_VENDORID), d2.spadRead(SP.VHOST_DEVICEID)]).toEqual([0xffff_ffff, 7]);
    // Echo features 0x1_3000_0000: upper word 1, lower word 0x3000_0000.
    expect([d2.spadRead(SP.VHOST_FEATURES_UPPER), d2.spadRead(SP.VHOST_FEATURES_LOWER)]).toEqual([1, 0x3000_0000]);
    expect([d2.spadRead(SP.VHOST_MW0_SIZE_LOWER), d2.spadRead(SP.VHOST_MW0_SIZE_UPPER)]).toEqual([0x10_0000, 0]);
    expect([d2.spadRead(SP.VIRTIO_MW0_LOWER_ADDR), d2.spadRead(SP.VIRTIO_MW0_UPPER_ADDR)]).toEqual([w.addr, 0]);
    expect(w.size).toBe(0x10_0000);
    expect(d2.spadRead(SP.VHOST_DEVICE_STATUS)).toBe(0x0f);
    expect([15, 16, 17].map((i) => d2.spadRead(i))).toEqual([256, 256, 0]);
    // Queue 0 at the window's start, queue 1 at +12288; buffers above BUFFER_OFFSET.
    const [rx, tx] = h.virtio.vqs;
    expect(rx!.layout.desc).toBe(w.addr);
    expect(tx!.layout.desc).toBe(w.addr + 12288);
    const b = await client.device!.allocBuffer(64);
    expect(b.addr).toBeGreaterThanOrEqual(w.addr + NTB_VIRTIO_BUFFER_OFFSET);
    expect(b.addr + 64).toBeLessThanOrEqual(w.addr + w.size);
    await client.device!.freeBuffer(b);
    // Link down: both hosts reset what the peer wrote (so the next handshake starts clean).
    await d1.linkDisable();
    await h.settle();
    await sleep(5);
    expect(d1.spadRead(SP.VIRTIO_TYPE)).toBe(0);
    for (const i of [0, 5, 6, 9, 10, 11, 13, 14]) expect(d2.spadRead(i), `HOST2 spad ${i}`).toBe(0);
    await h.dispose();
  });

  it('device configuration lives in spads 23…, little-endian, with a generation and a config interrupt', async () => {
    let changed = 0;
    const drv: VirtioDriver = {
      name: 'cfg',
      idTable: [{ vendor: VIRTIO_DEV_ANY_ID, device: 7 }],
      featureTable: [],
      probe: async (dev) => void (await dev.findVqs([{ name: 'rx' }, { name: 'tx' }])),
      remove: async (dev) => {
        await dev.reset();
        await dev.delVqs();
      },
      configChanged: () => void changed++,
    };
    const bus = new VirtioBus();
    await bus.registerDriver(drv);
    const h = createNtbPairHarness({ vhostDriver: new NtbEchoVhostDriver(), virtioBus: bus });
    await h.start();
    await h.ready();
    const dev = h.virtio.device!;
    const gen0 = h.port2.dev.spadRead(SP.VHOST_CONFIG_GENERATION);
    await h.vhost.device.writeConfig(2, Uint8Array.of(0x11, 0x22, 0x33, 0x44, 0x55));
    // Bytes 2..6: spad 23 = 0x2211_0000 (bytes 2, 3), spad 24 = 0x0055_4433 (bytes 4, 5, 6).
    expect(h.port2.dev.spadRead(23)).toBe(0x2211_0000);
    expect(h.port2.dev.spadRead(24)).toBe(0x0055_4433);
    expect(h.port2.dev.spadRead(SP.VHOST_CONFIG_GENERATION)).toBe(gen0 + 2);
    expect([...(await dev.readConfig(0, 8))]).toEqual([0, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0]);
    expect(await dev.readConfig32(4)).toBe(0x0055_4433);
    await h.settle();
    expect(changed).toBe(1);
    // And the other way: the driver writes, the device reads.
    await dev.writeConfig16(8, 0xbeef);
    const back = new Uint8Array(2);
    await h.vhost.device.readConfig(8, back);
    expect([...back]).toEqual([0xef, 0xbe]);
    // (64 − 23) · 4 = 164 bytes of configuration.
    await expect(dev.readConfig(160, 8)).rejects.toBeDefined();
    await h.dispose();
  });
});

describe('commands: typed TIMEOUT and COMMAND_FAILED (rfc-protocol §2.2 / §4 item 6)', () => {
  /** HOST2 played by hand on its scratchpads: publishes ids and a window, then answers commands with `answer`. */
  async function handPlayedVhost(answer: number | undefined, timeoutMs: number) {
    const link = createNtbPairLink();
    const l1 = new LocalNtbLine();
    const l2 = new LocalNtbLine();
    const p1 = new NtbPairPort(link, 0, { lines: { irq: l1, peerIrq: l2 } });
    const p2 = new NtbPairPort(link, 1, { lines: { irq: l2, peerIrq: l1 } });
    const d2 = p2.dev;
    d2.spadWrite(SP.VHOST_MW0_SIZE_LOWER, 0x10_0000);
    d2.spadWrite(SP.VHOST_VENDORID, 0xffff_ffff);
    d2.spadWrite(SP.VHOST_DEVICEID, 7);
    d2.spadWrite(15, 256);
    d2.spadWrite(16, 256);
    await d2.linkEnable();
    const events: NtbVirtioEvent[] = [];
    const bus = new VirtioBus();
    const virtio = new NtbVirtio({ dev: p1.dev, bus, commandTimeoutMs: timeoutMs, onEvent: (e) => events.push(e) });
    await virtio.start();
    await sleep(2);
    d2.peerSpadWrite(0, SP.VIRTIO_TYPE, NTB_VIRTIO_TYPE.VHOST);
    const served: number[] = [];
    const timer = setInterval(() => {
      const cmd = d2.spadRead(SP.VHOST_COMMAND);
      if (cmd === 0 || answer === undefined) return;
      served.push(cmd);
      d2.spadWrite(SP.VHOST_COMMAND, 0);
      d2.spadWrite(SP.VHOST_COMMAND_STATUS, answer);
    }, 1);
    const deadline = Date.now() + 3000;
    while (!events.some((e) => e.type === 'error' || e.type === 'registered') && Date.now() < deadline) await sleep(2);
    clearInterval(timer);
    await virtio.close();
    p1.close();
    p2.close();
    return { events, served };
  }

  it('nobody answers RESET: TIMEOUT after the command timeout, and the device is not registered', async () => {
    const { events } = await handPlayedVhost(undefined, 30);
    const err = events.find((e) => e.type === 'error') as Extract<NtbVirtioEvent, { type: 'error' }>;
    expect(err).toBeDefined();
    // registerDevice's first step is a reset; the bus wraps the transport's error.
    const cause = (err.error as { cause?: unknown }).cause;
    expect(isNtbError(cause, 'TIMEOUT')).toBe(true);
    expect(events.some((e) => e.type === 'registered')).toBe(false);
  });

  it('the vhost host answers ERROR: COMMAND_FAILED', async () => {
    const { events, served } = await handPlayedVhost(NTB_HOST_CMD_STATUS.ERROR, 500);
    expect(served[0]).toBe(NTB_HOST_CMD.RESET);
    const err = events.find((e) => e.type === 'error') as Extract<NtbVirtioEvent, { type: 'error' }>;
    expect(isNtbError((err.error as { cause?: unknown }).cause, 'COMMAND_FAILED')).toBe(true);
  });
});
