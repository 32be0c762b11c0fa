// A driver and a device share one ring. The driver sees the memory at 0x1000_0000; the
// device reaches the same bytes through a window (as a PCIe endpoint would through an
// outbound window), so every address it reads is checked and translated.
import { ArrayBufferMemory, RegionMemory, Virtqueue, VringIov, Vringh, vringLegacyLayout } from '@x/vring';

export function main(): string {
  const DRIVER_BASE = 0x1000_0000;
  const shared = new SharedArrayBuffer(64 * 1024);

  // Driver side: its memory, a legacy ring (align 4096, as the RFC uses), a buffer area.
  const driverMem = new ArrayBufferMemory(shared, { base: DRIVER_BASE });
  const layout = vringLegacyLayout(DRIVER_BASE, 16, 4096);
  const vq = new Virtqueue<string>({ memory: driverMem, layout, eventIdx: true });
  const request = DRIVER_BASE + 0x8000;
  const reply = DRIVER_BASE + 0x9000;
  driverMem.write(request, new TextEncoder().encode('ping'));

  // One buffer: 4 device-readable bytes, then 64 device-writable bytes.
  vq.addSgs([{ addr: request, len: 4 }, { addr: reply, len: 64 }], 1, 1, 'my request');
  const kick = vq.kickPrepare(); // publishes avail.idx; true: the device wants a kick

  // Device side: its own mapping of the bytes at another address, behind a window.
  const local = new ArrayBufferMemory(shared, { base: 0x8_0000_0000 });
  const window = new RegionMemory();
  window.map({ busAddr: DRIVER_BASE, size: shared.byteLength, target: local, targetAddr: 0x8_0000_0000 });
  const vrh = new Vringh({ memory: window, layout, eventIdx: true });
  const riov = new VringIov(8);
  const wiov = new VringIov(8);
  const head = vrh.getDesc(riov, wiov);
  const got = new Uint8Array(riov.totalLen);
  vrh.pull(riov, got);
  const answer = new TextEncoder().encode(`pong to ${new TextDecoder().decode(got)}`);
  vrh.push(wiov, answer);
  vrh.complete(head, answer.length);
  const irq = vrh.needNotify(); // true: the driver asked for a used-buffer interrupt

  // Driver side again.
  const token = vq.getBuf();
  const bytes = new Uint8Array(vq.lastLen);
  driverMem.read(reply, bytes);
  return `kick=${kick} irq=${irq} token=${token} reply="${new TextDecoder().decode(bytes)}"`;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(main());
