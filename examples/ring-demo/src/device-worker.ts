// The device side: reaches the driver's memory through a window (its own mapping of the
// same bytes at another address), takes chains with Vringh, checks each payload,
// completes them in batches and interrupts the driver only when it asked.
import { parentPort, workerData } from 'node:worker_threads';
import { ArrayBufferMemory, RegionMemory, VringIov, Vringh } from '@x/vring';
import { CTRL_ERROR, CTRL_IRQ, CTRL_KICK, DEVICE_BASE, DRIVER_BASE, payloadByte, ringDoorbell, ringLayout, spinFor, waitDoorbell, type DemoShared } from './shared.js';

const shared = workerData as DemoShared;
const p = shared.params;
const ctrl = new Int32Array(shared.sab, 0, 16);
const local = new ArrayBufferMemory(shared.sab, { base: DEVICE_BASE, name: 'device local mapping' });
const window = new RegionMemory({ name: 'device window' });
window.map({ busAddr: DRIVER_BASE, size: shared.sab.byteLength, target: local, targetAddr: DEVICE_BASE });
const vrh = new Vringh({ memory: window, layout: ringLayout(p), eventIdx: p.eventIdx });
const riov = new VringIov(p.num);
const wiov = new VringIov(p.num);
const scratch = new Uint8Array(p.bufSize);
const BATCH = 64;
const hasAvail = (): boolean => vrh.hasAvail();

parentPort!.once('message', () => {
  let processed = 0;
  let sleeps = 0;
  let batch = 0;
  let interrupts = 0;
  let enables = 0;
  vrh.notifyDisable();
  try {
    while (processed < p.count) {
      const head = vrh.getDesc(riov, wiov);
      if (head < 0) {
        if (batch > 0) {
          vrh.flushUsed();
          batch = 0;
          if (vrh.needNotify()) {
            ringDoorbell(ctrl, CTRL_IRQ);
            interrupts++;
          }
        }
        // Spin first with kicks still off; ask for a kick only before sleeping.
        if (spinFor(p.spinUs, hasAvail)) continue;
        const seen = Atomics.load(ctrl, CTRL_KICK);
        enables++;
        if (!vrh.notifyEnable()) {
          vrh.notifyDisable();
          continue;
        }
        sleeps++;
        waitDoorbell(ctrl, CTRL_KICK, seen, 0, hasAvail);
        vrh.notifyDisable();
        continue;
      }
      let seq: number;
      if (p.verify === 'full') {
        const n = vrh.pull(riov, scratch);
        if (n !== p.bufSize) throw new Error(`device: buffer of ${n} bytes, expected ${p.bufSize}`);
        seq = scratch[0]! | (scratch[1]! << 8) | (scratch[2]! << 16) | (scratch[3]! << 24);
        for (let i = 4; i < p.bufSize; i++) {
          if (scratch[i] !== payloadByte(seq >>> 0, i)) throw new Error(`device: buffer ${seq} byte ${i} is wrong`);
        }
      } else {
        seq = window.read32(riov.addr[0]!);
      }
      if (seq >>> 0 !== processed) throw new Error(`device: got buffer ${seq >>> 0}, expected ${processed}`);
      vrh.addUsed(head, 0);
      processed++;
      if (++batch === BATCH) {
        vrh.flushUsed();
        batch = 0;
        if (vrh.needNotify()) {
          ringDoorbell(ctrl, CTRL_IRQ);
          interrupts++;
        }
      }
    }
    vrh.flushUsed();
    if (vrh.needNotify()) ringDoorbell(ctrl, CTRL_IRQ);
    parentPort!.postMessage({ processed, sleeps, interrupts, enables });
  } catch (e) {
    Atomics.store(ctrl, CTRL_ERROR, 1);
    ringDoorbell(ctrl, CTRL_IRQ);
    throw e;
  }
});
