import { describe, expect, it } from 'vitest';
import { VIRTIO_CONFIG_S, VirtioBus } from '@x/virtio-core';
import { VhostBus } from '@x/vhost-core';
import { FakeVhostTransport } from '@x/vhost-core/testing';
import { VirtioMediator } from '@x/virtio-mediator';
import { PeerDriver, RPMSG, msg, until } from './helpers.js';

const S = VIRTIO_CONFIG_S;

// Transport-neutral: the same mediator binds to the vhost device of another transport
// — vhost-core's FakeVhostTransport, a register block after the RFC's BAR layout with
// legacy rings at 4096 alignment — and the remote driver is its raw FakeVhostPeer.
describe('the mediator over another transport (vhost-core FakeVhostTransport, RFC BAR-style registers)', () => {
  it('RFC §2.3 bring-up from the peer, then one message each way through the local virtio driver', async () => {
    const localBus = new VirtioBus();
    const local = new PeerDriver('local', [0]);
    await localBus.registerDriver(local);
    // X: F_NS (bit 0) and VERSION_1 (bit 32).
    const mediator = new VirtioMediator({ bus: localBus, devices: [{ deviceId: RPMSG, features: 1n | (1n << 32n) }], queueSize: 64 });
    const vhostBus = new VhostBus();
    await vhostBus.registerDriver(mediator);
    const t = new FakeVhostTransport({ id: { vendor: 0x104c, device: RPMSG }, bufferSize: 512 });
    try {
      await vhostBus.registerDevice(t.device);
      expect(t.device.driver).toBe(mediator);
      const p = t.peer;
      await p.reset();
      await p.setStatus(S.ACKNOWLEDGE);
      await p.setStatus(S.ACKNOWLEDGE | S.DRIVER);
      // The local driver negotiated first, so the peer is offered what it accepted: bit 0 and VERSION_1.
      expect(await p.readDeviceFeatures()).toBe(1n | (1n << 32n));
      await p.writeDriverFeatures(1n | (1n << 32n));
      expect((await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK)) & S.FEATURES_OK).toBe(S.FEATURES_OK);
      await p.activateQueue(0, { eventIdx: false });
      await p.activateQueue(1, { eventIdx: false });
      await p.setStatus(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
      expect(mediator.mediated(t.device)!.device).toBe(1n);
      // Local → peer: the peer posts receive buffers on queue 0.
      for (let i = 0; i < 4; i++) expect(p.addInbuf(0, 512)).toBe(true);
      await p.kick(0);
      expect(local.send(msg(1, 1))).toBe(true);
      let used: { len: number; data: Uint8Array } | undefined;
      await until(() => (used ??= p.getUsed(0)) !== undefined, 10_000, 'the peer to receive');
      expect([...used!.data]).toEqual([...msg(1, 1)]);
      // Peer → local: a device-readable buffer on queue 1.
      expect(p.addOutbuf(1, msg(2, 2))).toBe(true);
      await p.kick(1);
      await until(() => local.received.length === 1, 10_000, 'the local driver to receive');
      expect([...local.received[0]!]).toEqual([...msg(2, 2)]);
      await t.settle();
      expect(p.getUsed(1)?.len).toBe(0);
    } finally {
      if (t.device.bus !== undefined) await vhostBus.unregisterDevice(t.device);
      t.dispose();
    }
  });
});
