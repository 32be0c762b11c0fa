// The driver side: owns the ring, adds buffers carrying a sequence number and a pattern,
// kicks the device, and collects used buffers. Reports its figures to the parent.
import { parentPort, workerData } from 'node:worker_threads';
import { Virtqueue } from '@x/vring';
import {
  CTRL_ERROR,
  CTRL_IRQ,
  CTRL_KICK,
  bufferArea,
  driverMemory,
  payloadByte,
  ringDoorbell,
  ringLayout,
  spinFor,
  waitDoorbell,
  type DemoShared,
} from './shared.js';

const shared = workerData as DemoShared;
const p = shared.params;
const ctrl = new Int32Array(shared.sab, 0, 16);
const memory = driverMemory(shared);
const vq = new Virtqueue<number>({ memory, layout: ringLayout(p), eventIdx: p.eventIdx, notify: () => ringDoorbell(ctrl, CTRL_KICK) });
const area = bufferArea(p);
const bytes = memory.view(area, p.num * p.bufSize);
const words = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const moreUsed = (): boolean => vq.moreUsed();

// Free buffer indices, reused in the order they come back (a FIFO): tokens are buffer
// indices. With in-order completion each descriptor then keeps carrying the same buffer,
// so Virtqueue rewrites no descriptor and the device's cached copy stays valid.
const free = new Int32Array(p.num);
const poolMask = p.num - 1;
let rd = 0;
let top = p.num;
for (let i = 0; i < p.num; i++) free[i] = i;

parentPort!.once('message', () => {
  let sent = 0;
  let received = 0;
  let expect = 0;
  let sleeps = 0;
  const t0 = performance.now();
  vq.disableCb();
  while (received < p.count) {
    while (sent < p.count && top > 0) {
      const b = free[rd]!;
      rd = (rd + 1) & poolMask;
      top--;
      const off = b * p.bufSize;
      words.setUint32(off, sent, true);
      if (p.verify === 'full') for (let i = 4; i < p.bufSize; i++) bytes[off + i] = payloadByte(sent, i);
      vq.addOutbuf(area + off, p.bufSize, b);
      sent++;
    }
    vq.kick();
    let got = 0;
    let tok: number | undefined;
    while ((tok = vq.getBuf()) !== undefined) {
      // The device completes in order, so sequence numbers come back in order too.
      const seq = words.getUint32(tok * p.bufSize, true);
      if (seq !== expect) throw new Error(`driver: buffer ${seq} came back, expected ${expect}`);
      expect++;
      free[(rd + top++) & poolMask] = tok;
      received++;
      got++;
    }
    if (got === 0 && received < p.count) {
      if (Atomics.load(ctrl, CTRL_ERROR) !== 0) throw new Error('device reported an error');
      // Spin first with interrupts still off; ask for one only before sleeping.
      if (spinFor(p.spinUs, moreUsed)) continue;
      const seen = Atomics.load(ctrl, CTRL_IRQ);
      if (!vq.enableCb()) {
        vq.disableCb();
        continue;
      }
      sleeps++;
      waitDoorbell(ctrl, CTRL_IRQ, seen, 0, moreUsed);
      vq.disableCb();
    }
  }
  const ms = performance.now() - t0;
  parentPort!.postMessage({ received, ms, sleeps, kicks: vq.stats.kicks, kicksSuppressed: vq.stats.kicksSuppressed });
});
