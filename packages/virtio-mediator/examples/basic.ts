// Jason Wang's model: the remote system's virtio driver talks to a vhost device (here
// over a loopback link); on this system a VirtioMediator — a vhost driver — presents a
// LOCAL virtio device for it on a local VirtioBus, copies between the two rings, and
// mediates features (X offered, Y local, Z remote; Y ∩ Z in use).
import { VIRTIO_DEV_ANY_ID, VirtioBus, type VirtioBuffer, type VirtioDevice, type VirtioDriver } from '@x/virtio-core';
import { VhostBus } from '@x/vhost-core';
import { attachVhost, attachVirtio, createLoopbackLink } from '@x/transport-loopback';
import { VirtioMediator, type MediatedFeatures } from '@x/virtio-mediator';

const RPMSG = 7;

/** A tiny virtio driver: receive buffers on queue 0, sends on queue 1 (rpmsg's roles). */
function chat(name: string, featureTable: number[], inbox: string[]): VirtioDriver & { say(text: string): Promise<void> } {
  let dev: VirtioDevice | undefined;
  let tx: { addOutbuf(a: number, l: number, t: VirtioBuffer): boolean; kick(): boolean } | undefined;
  return {
    name,
    idTable: [{ device: RPMSG, vendor: VIRTIO_DEV_ANY_ID }],
    featureTable,
    async probe(d) {
      dev = d;
      const [rx, txq] = await d.findVqs<VirtioBuffer>([
        {
          name: 'input',
          callback: () => {
            for (let b = rx!.getBuf(); b !== undefined; b = rx!.getBuf()) {
              inbox.push(new TextDecoder().decode(b.view.subarray(0, rx!.lastLen)));
              rx!.addInbuf(b.addr, b.size, b);
            }
            rx!.kick();
          },
        },
        { name: 'output' },
      ]);
      for (let i = 0; i < 8; i++) {
        const b = await d.allocBuffer(512);
        rx!.addInbuf(b.addr, b.size, b);
      }
      await d.ready();
      rx!.kick();
      tx = txq;
    },
    async remove(d) {
      await d.reset();
      await d.delVqs();
    },
    async say(text) {
      const b = await dev!.allocBuffer(512);
      const { written } = new TextEncoder().encodeInto(text, b.view);
      tx!.addOutbuf(b.addr, written, b);
      tx!.kick();
    },
  };
}

/** Polls `cond`, bounded (10 s). */
async function waitFor(cond: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 10_000; !cond(); ) {
    if (Date.now() > deadline) throw new Error('example: timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}

export async function main(): Promise<{ atLocal: string[]; atRemote: string[]; features: MediatedFeatures }> {
  const atLocal: string[] = [];
  const atRemote: string[] = [];

  // This system: the local virtio driver takes F_NS (bit 0) and F_AS (bit 1).
  const localBus = new VirtioBus();
  const local = chat('local-chat', [0, 1], atLocal);
  await localBus.registerDriver(local);
  // X: bits 0 and 1, EVENT_IDX (29) and VERSION_1 (32); queues of 64.
  const mediator = new VirtioMediator({
    bus: localBus,
    devices: [{ deviceId: RPMSG, features: 0b11n | (1n << 29n) | (1n << 32n) }],
    queueSize: 64,
  });
  const vhostBus = new VhostBus();
  await vhostBus.registerDriver(mediator);
  const link = createLoopbackLink({ deviceId: RPMSG });
  const vhost = await attachVhost(link, vhostBus); // mediator probes: local device registered, local driver binds

  // The remote system (it could be a worker, or a real peer): it accepts only bit 0.
  const remoteBus = new VirtioBus();
  const remote = chat('remote-chat', [0], atRemote);
  await remoteBus.registerDriver(remote);
  const virtio = await attachVirtio(link, remoteBus);

  // Bit 1 only the local side took: the mediator resets the local side (DEVICE_NEEDS_RESET),
  // which renegotiates with bit 0 only. Wait for that to settle, then talk both ways.
  const settled = (): boolean => mediator.mediated(vhost.device)?.device === 0b1n && mediator.localDevice(vhost.device)?.status === 0x0f;
  await waitFor(settled);
  await local.say('hello from this system');
  await remote.say('hello from the remote system');
  await waitFor(() => atLocal.length === 1 && atRemote.length === 1);

  const features = mediator.mediated(vhost.device)!;
  await virtio.close();
  await vhost.close();
  return { atLocal, atRemote, features };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main());
