import { VirtioBus, type VirtioBusEvent } from '@x/virtio-core';
import { QueuePairDriver as PeerDriver } from '@x/virtio-mediator/testing';
import { VhostBus } from '@x/vhost-core';
import { attachVhost, attachVirtio, createLoopbackLink, type LoopbackVhostTransport, type LoopbackVirtioTransport } from '@x/transport-loopback';
import { VirtioMediator, type MediatorEvent, type VirtioMediatorOptions } from '@x/virtio-mediator';

export const RPMSG = 7;
export { PeerDriver };

/** Message `k` from `who`: differs between neighbours and between the two sides. */
export function msg(who: number, k: number): Uint8Array {
  const n = 2 + ((k * 29) % 300);
  return Uint8Array.from({ length: n }, (_, i) => (i === 0 ? who : i === 1 ? k & 0xff : (k * 7 + i * 13 + who) & 0xff));
}

/** Polls `cond` every turn until it holds, or fails after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Sends `msgs` from `from`, retrying while its send buffers are all in flight, until `to` received them all. */
export async function transfer(from: PeerDriver, to: PeerDriver, msgs: Uint8Array[], ms = 20_000): Promise<Uint8Array[]> {
  const start = to.received.length;
  let sent = 0;
  const deadline = Date.now() + ms;
  while (to.received.length - start < msgs.length) {
    while (sent < msgs.length && from.send(msgs[sent]!)) sent++;
    if (from.error !== undefined) throw from.error;
    if (to.error !== undefined) throw to.error;
    if (Date.now() > deadline) throw new Error(`transfer: ${to.received.length - start}/${msgs.length} received, ${sent} sent`);
    await new Promise((r) => setImmediate(r));
  }
  return to.received.slice(start, start + msgs.length);
}

export interface Rig {
  readonly mediator: VirtioMediator;
  readonly localBus: VirtioBus;
  readonly remoteBus: VirtioBus;
  readonly vhostBus: VhostBus;
  readonly vhost: LoopbackVhostTransport;
  readonly remote: LoopbackVirtioTransport;
  readonly events: MediatorEvent[];
  readonly localEvents: VirtioBusEvent[];
  readonly remoteEvents: VirtioBusEvent[];
  close(): Promise<void>;
}

/**
 * The remote system (a virtio driver on its own VirtioBus) reaches the mediator's system
 * over a loopback link; the mediator (a vhost driver) presents the local device on the
 * local VirtioBus. `local` is registered before the link comes up when `localFirst`.
 */
export async function rig(
  local: PeerDriver,
  remote: PeerDriver,
  options: { features: bigint; localFirst?: boolean; mediator?: Partial<VirtioMediatorOptions> },
): Promise<Rig> {
  const events: MediatorEvent[] = [];
  const localEvents: VirtioBusEvent[] = [];
  const remoteEvents: VirtioBusEvent[] = [];
  const localBus = new VirtioBus({ onEvent: (e) => localEvents.push(e) });
  const localFirst = options.localFirst ?? true;
  if (localFirst) await localBus.registerDriver(local);
  const mediator = new VirtioMediator({
    bus: localBus,
    devices: [{ deviceId: RPMSG, features: options.features }],
    onEvent: (e) => events.push(e),
    ...options.mediator,
  });
  const link = createLoopbackLink({ deviceId: RPMSG, memorySize: 2 << 20 });
  const vhostBus = new VhostBus();
  await vhostBus.registerDriver(mediator);
  const vhost = await attachVhost(link, vhostBus);
  const remoteBus = new VirtioBus({ onEvent: (e) => remoteEvents.push(e) });
  await remoteBus.registerDriver(remote);
  const remoteSide = await attachVirtio(link, remoteBus);
  if (!localFirst) await localBus.registerDriver(local);
  return {
    mediator,
    localBus,
    remoteBus,
    vhostBus,
    vhost,
    remote: remoteSide,
    events,
    localEvents,
    remoteEvents,
    async close() {
      await remoteSide.close();
      await vhost.close();
    },
  };
}
