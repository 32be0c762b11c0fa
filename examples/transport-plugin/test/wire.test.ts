import { afterEach, describe, expect, it } from 'vitest';
import { VirtioBus, VIRTIO_DEV_ANY_ID, type VirtioBuffer, type VirtioDriver } from '@x/virtio-core';
import { VhostBus } from '@x/vhost-core';
import { BAR, CMD, CMD_STATUS, QCMD, QREG, attachEp, attachRc, createBarLink, qreg, type EpTransport, type RcTransport } from '../src/index.js';
import { EchoVhostDriver } from './echo-driver.js';
import { RcPeer } from './peer.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe('the RFC BAR register block (rfc-protocol §2.1)', () => {
  it('offsets are the RFC table: 0x00 host_features … 0x1c queue blocks of 16 bytes, end 0x9c', () => {
    expect([BAR.HOST_FEATURES, BAR.GUEST_FEATURES, BAR.MSIX_CONFIG, BAR.NUM_QUEUES, BAR.DEVICE_STATUS, BAR.CONFIG_GENERATION, BAR.ISR, BAR.CMD, BAR.CMD_STATUS]).toEqual([
      0x00, 0x08, 0x10, 0x12, 0x14, 0x15, 0x16, 0x1a, 0x1b,
    ]);
    // Queue block n at 0x1c + 16n: cmd +0, cmd_status +1, status +2, num_buffers +4, msix_vector +6, queue_addr +8.
    expect([QREG.CMD, QREG.CMD_STATUS, QREG.STATUS, QREG.NUM_BUFFERS, QREG.MSIX_VECTOR, QREG.QUEUE_ADDR]).toEqual([0, 1, 2, 4, 6, 8]);
    expect(qreg(7, QREG.QUEUE_ADDR)).toBe(0x1c + 7 * 16 + 8);
    // 0x1c + 8 × 16 = 0x9c = 156 bytes; the config reserve starts 8-aligned at 0xa0.
    expect(BAR.END).toBe(156);
    expect(BAR.CONFIG).toBe(0xa0);
    expect({ CMD, QCMD, CMD_STATUS }).toEqual({
      CMD: { NONE: 0, SET_STATUS: 1, FINALIZE_FEATURES: 2, RESET: 3 },
      QCMD: { NONE: 0, ACTIVATE: 1, DEACTIVATE: 2, NOTIFY: 3 },
      CMD_STATUS: { NONE: 0, OKAY: 1, ERROR: 2 },
    });
  });
});

/** A tiny RC-side driver: one message out on queue 1, replies in on queue 0. */
function client(replies: string[]): VirtioDriver & { send(s: string): Promise<void> } {
  let tx: { addOutbuf(a: number, l: number, t: VirtioBuffer): boolean; kick(): boolean } | undefined;
  let dev: Parameters<VirtioDriver['probe']>[0] | undefined;
  return {
    name: 'client',
    idTable: [{ device: 7, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable: [],
    async probe(d) {
      dev = d;
      const [rx, t] = await d.findVqs<VirtioBuffer>([
        {
          name: 'rx',
          callback: () => {
            for (let b = rx!.getBuf(); b !== undefined; b = rx!.getBuf()) {
              replies.push(new TextDecoder().decode(b.view.subarray(0, rx!.lastLen)));
              rx!.addInbuf(b.addr, b.size, b);
            }
            rx!.kick();
          },
        },
        { name: 'tx' },
      ]);
      for (let i = 0; i < 4; i++) {
        const b = await d.allocBuffer(64);
        rx!.addInbuf(b.addr, b.size, b);
      }
      await d.ready();
      rx!.kick();
      tx = t;
    },
    async remove(d) {
      await d.reset();
      await d.delVqs();
    },
    async send(s) {
      const b = await dev!.allocBuffer(64);
      tx!.addOutbuf(b.addr, new TextEncoder().encodeInto(s, b.view).written, b);
      tx!.kick();
    },
  };
}

async function until(cond: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 10_000; !cond(); ) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('the command protocol (rfc-protocol §2.2) with its gaps closed', () => {
  it("the RFC's pure polling (no doorbell, the EP looks every 1 ms) still works, just slower", async () => {
    const link = createBarLink({ deviceId: 7 });
    const vhostBus = new VhostBus();
    await vhostBus.registerDriver(new EchoVhostDriver(7));
    const ep: EpTransport = await attachEp(link, vhostBus, { pollMs: 1 });
    open.push(ep);
    const bus = new VirtioBus();
    const replies: string[] = [];
    const c = client(replies);
    await bus.registerDriver(c);
    const rc: RcTransport = await attachRc(link, bus, { doorbell: false });
    open.push(rc);
    await c.send('polled');
    await until(() => replies.length === 1);
    expect(replies).toEqual(['polled']);
  });

  it('an unknown command is answered ERROR (the RFC only logged it, so the RC timed out); cmd_status is cleared before each command', async () => {
    const link = createBarLink({ deviceId: 7 });
    const vhostBus = new VhostBus();
    await vhostBus.registerDriver(new EchoVhostDriver(7));
    const ep = await attachEp(link, vhostBus);
    open.push(ep);
    const peer = await RcPeer.open(link, 512);
    open.push(peer);
    expect(await peer.unknownCommand()).toBe(false);
    // A stale OKAY left in cmd_status (the RFC's EP never cleared it) is not taken as the next answer.
    new DataView(link.bar).setUint8(BAR.CMD_STATUS, CMD_STATUS.OKAY);
    expect(await peer.unknownCommand()).toBe(false);
    // RESET clears the status (the review's other finding).
    await peer.setStatus(1);
    await peer.reset();
    expect(await peer.getStatus()).toBe(0);
  });
});
