// VhostVirtqueue data path against bare Vringh, one thread, 64-byte buffers: the cost of
// the device-model wrapper (readiness check, direction check, counters) per buffer.
import { VringIov } from '@x/vring';
import { createRingPair } from '@x/vring/testing';
import { VHOST_NOTIFY, VIRTIO_CONFIG_S as S, VhostDevice, VhostVirtqueue, type VhostConfigOps } from '@x/vhost-core';
import type { BenchContext, Row } from '../../../bench/harness.js';

async function readyQueue(): Promise<{ p: ReturnType<typeof createRingPair<number>>; vq: VhostVirtqueue }> {
  let status = 0;
  let vq!: VhostVirtqueue;
  const ops: VhostConfigOps = {
    createVqs: (specs) => specs.map((s, index) => (vq = new VhostVirtqueue({ device: dev, index, num: s.size, notify: () => {} }))),
    delVqs: () => {},
    read: () => {},
    write: () => {},
    setFeatures: () => {},
    getStatus: () => status,
    setStatus: (s) => void (status = s),
  };
  const dev = new VhostDevice(ops);
  const p = createRingPair<number>({ num: 256, eventIdx: true, dataSize: 256 * 64 });
  await dev.setFeatures(1n << 29n);
  await dev.createVqs([{ name: 'rx', size: 256 }]);
  for (const s of [S.ACKNOWLEDGE, S.ACKNOWLEDGE | S.DRIVER]) {
    status = s;
    await dev.handleEvent(VHOST_NOTIFY.SET_STATUS);
  }
  await dev.handleEvent(VHOST_NOTIFY.FINALIZE_FEATURES, 1n << 29n);
  vq.attach(p.deviceMemory, p.layout);
  for (const s of [S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK]) {
    status = s;
    await dev.handleEvent(VHOST_NOTIFY.SET_STATUS);
  }
  return { p, vq };
}

function loop(p: ReturnType<typeof createRingPair<number>>, count: number, device: (riov: VringIov) => void): number {
  const { vq, dataAddr } = p;
  let sent = 0;
  let done = 0;
  const riov = new VringIov(4);
  const t0 = performance.now();
  while (done < count) {
    for (let i = 0; i < 32 && sent < count; i++) {
      if (!vq.addOutbuf(dataAddr + (sent & 255) * 64, 64, sent & 255)) break;
      sent++;
    }
    vq.kickPrepare();
    device(riov);
    while (vq.getBuf() !== undefined) done++;
  }
  return (count / (performance.now() - t0)) * 1000;
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 200_000 : 2_000_000;
  const rows: Row[] = [];
  const bare = await ctx.measure('Vringh getDesc / complete (baseline)', 'buffers/s', () => {
    const p = createRingPair<number>({ num: 256, eventIdx: true, dataSize: 256 * 64 });
    const wiov = new VringIov(4);
    return loop(p, n, (riov) => {
      let head: number;
      while ((head = p.vrh.getDesc(riov, wiov)) >= 0) p.vrh.complete(head, 0);
      p.vrh.needNotify();
    });
  });
  rows.push(bare);
  const r = await ctx.measure('VhostVirtqueue getInbuf / putBuf / notify', 'buffers/s', async () => {
    const { p, vq } = await readyQueue();
    return loop(p, n, (riov) => {
      let head: number;
      while ((head = vq.getInbuf(riov)) >= 0) vq.putBuf(head, 0);
      vq.notify();
    });
  });
  r.vsBaseline = r.median / bare.median;
  rows.push(r);
  return rows;
}
