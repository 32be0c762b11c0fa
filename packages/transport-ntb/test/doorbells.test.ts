// Doorbells: one bit per queue, defined explicitly for 8 queues (bit i = queue i), in
// both directions, on both backends. The RFC passed vq->index where ntb_peer_db_set
// takes a bit mask; with ntb_hw_epf's ffs(bits) + 1 that reached the right queue only
// for queues 0–2 (rfc-protocol §2.6).
import { describe, expect, it } from 'vitest';
import { VIRTIO_DEV_ANY_ID, VirtioBus, type VirtioBuffer, type VirtioDriver } from '@x/virtio-core';
import type { VhostDriver, VhostVirtqueue } from '@x/vhost-core';
import { VringIov, type Virtqueue } from '@x/vring';
import { NTB_VIRTIO_MAX_VQS, ntbVirtioQueueDbBits, type NtbTraceEvent } from '@x/transport-ntb';
import { createNtbBridgeHarness, createNtbPairHarness } from '@x/transport-ntb/testing';

/** ffs(): 1-based position of the lowest set bit, 0 for 0 (Linux). */
const ffs = (x: number): number => (x === 0 ? 0 : 32 - Math.clz32(x & -x));

describe('doorbell mapping for 8 queues', () => {
  it('the RFC mapping, worked by hand: queue i rang ffs(i) + 1 and landed on vqueue[ffs(i)]', () => {
    // ntb_virtio_notify: ntb_peer_db_set(ndev, vq->index) → ntb_epf_peer_db_set: interrupt
    // ffs(bits) + 1 → ntb_epf_vec_isr → db_event(irq_no) → vqueue[vector - 1].
    const rfc = Array.from({ length: 8 }, (_, i) => ffs(i) + 1 - 1);
    expect(rfc).toEqual([0, 1, 2, 1, 3, 1, 2, 1]);
    // Here: bit i → interrupt i + 1 on the bridge (vector i on the pair) → queue i.
    expect(Array.from({ length: 8 }, (_, i) => ntbVirtioQueueDbBits(i))).toEqual([1, 2, 4, 8, 16, 32, 64, 128]);
  });

  for (const backend of ['pair', 'bridge'] as const) {
    it(`${backend}: a kick of queue i rings bit i only and runs queue i only; an interrupt of queue i reaches queue i only`, async () => {
      const traces: Array<[1 | 2, NtbTraceEvent]> = [];
      const kicked: number[] = [];
      const riov = new VringIov(4);
      const vhostDriver: VhostDriver = {
        name: 'eight',
        idTable: [{ vendor: VIRTIO_DEV_ANY_ID, device: 7 }],
        features: 1n << 32n,
        async probe(dev) {
          await dev.setFeatures(1n << 32n);
          await dev.createVqs(
            Array.from({ length: NTB_VIRTIO_MAX_VQS }, (_, i) => ({
              name: `q${i}`,
              size: 16,
              callback: (vq: VhostVirtqueue) => {
                kicked.push(vq.index);
                let h: number;
                while ((h = vq.getInbuf(riov)) >= 0) vq.putBuf(h, 0);
                vq.notify();
              },
            })),
          );
        },
        remove: (dev) => dev.delVqs(),
      };
      const interrupts: number[] = [];
      let vqs: Array<Virtqueue<VirtioBuffer>> = [];
      const virtioDriver: VirtioDriver = {
        name: 'eight',
        idTable: [{ vendor: VIRTIO_DEV_ANY_ID, device: 7 }],
        featureTable: [],
        async probe(dev) {
          vqs = await dev.findVqs<VirtioBuffer>(
            Array.from({ length: NTB_VIRTIO_MAX_VQS }, (_, i) => ({
              name: `q${i}`,
              callback: (vq: Virtqueue) => {
                interrupts.push(vq.index);
                while (vq.getBuf() !== undefined);
              },
            })),
          );
        },
        async remove(dev) {
          await dev.reset();
          await dev.delVqs();
        },
      };
      const bus = new VirtioBus();
      await bus.registerDriver(virtioDriver);
      const opts = { vhostDriver, virtioBus: bus, onTrace: (h: 1 | 2, e: NtbTraceEvent) => traces.push([h, e]) };
      const h = backend === 'pair' ? createNtbPairHarness(opts) : await createNtbBridgeHarness(opts);
      await h.start();
      await h.ready();
      expect(vqs.map((q) => q.num)).toEqual(Array(8).fill(16));
      const dev = h.virtio.device!;
      // Queue vectors only: the COMMAND doorbell (bit 9) of the last bring-up command may
      // still be arriving (the vhost host's 1 ms poll can answer before the doorbell lands).
      const queueVector = (v: number): boolean => (backend === 'pair' ? v < 8 : v >= 1 && v <= 8);
      for (let i = 0; i < NTB_VIRTIO_MAX_VQS; i++) {
        traces.length = 0;
        kicked.length = 0;
        interrupts.length = 0;
        const b = await dev.allocBuffer(16);
        vqs[i]!.addOutbuf(b.addr, 16, b);
        vqs[i]!.kick();
        await h.settle();
        // HOST1 rang bit i; HOST2 got the vector of bit i and ran queue i.
        const rings1 = traces.filter(([host, e]) => host === 1 && e.op === 'peer_db_set').map(([, e]) => e.args[0]);
        const vectors2 = traces.filter(([host, e]) => host === 2 && e.op === 'db_event').map(([, e]) => e.args[0]!).filter(queueVector);
        expect(rings1).toEqual([1 << i]);
        expect(vectors2).toEqual([backend === 'pair' ? i : i + 1]);
        expect(kicked).toEqual([i]);
        // HOST2 answered on bit i; HOST1 got that vector and interrupted queue i only.
        const rings2 = traces.filter(([host, e]) => host === 2 && e.op === 'peer_db_set').map(([, e]) => e.args[0]);
        const vectors1 = traces.filter(([host, e]) => host === 1 && e.op === 'db_event').map(([, e]) => e.args[0]!).filter(queueVector);
        expect(rings2).toEqual([1 << i]);
        expect(vectors1).toEqual([backend === 'pair' ? i : i + 1]);
        expect(interrupts).toEqual([i]);
        await dev.freeBuffer(b);
      }
      await h.dispose();
    });
  }
});
