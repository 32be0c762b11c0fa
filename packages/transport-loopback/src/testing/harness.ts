import { VhostBus } from '@x/vhost-core';
import type { VirtioTransportUnderTest } from '@x/virtio-core/testing';
import type { VhostConformanceRequirements, VhostTransportHarness } from '@x/vhost-core/testing';
import {
  attachVhost,
  createLoopbackLink,
  openVhost,
  openVirtio,
  type LoopbackLink,
  type LoopbackLinkOptions,
  type LoopbackVhostTransport,
  type LoopbackVirtioTransport,
} from '@x/transport-loopback';
import { VhostEchoDriver } from './echo-driver.js';
import { LoopbackVhostPeer } from './peer.js';

/** What {@link loopbackVirtioTarget} returns: a conformance target, plus both sides for inspection. @public */
export interface LoopbackVirtioTarget extends VirtioTransportUnderTest {
  /** The link. */
  readonly link: LoopbackLink;
  /** The driver side (its `ops` are the target's). */
  readonly virtio: LoopbackVirtioTransport;
  /** The device side, registered on its own `VhostBus` with a {@link VhostEchoDriver}. */
  readonly vhost: LoopbackVhostTransport;
  /** The echo driver on the device side. */
  readonly echoDriver: VhostEchoDriver;
}

/**
 * A fresh loopback link whose device side runs {@link VhostEchoDriver} on its own
 * `VhostBus`, and its driver side opened: the factory result
 * `describeVirtioTransportConformance` (`@x/virtio-core/testing`) wants, with
 * `echo: true` and 16 bytes of configuration space.
 *
 * @public
 */
export async function loopbackVirtioTarget(options: Partial<LoopbackLinkOptions> = {}): Promise<LoopbackVirtioTarget> {
  const link = createLoopbackLink({ deviceId: 7, configSize: 16, ...options });
  const vhostBus = new VhostBus();
  const echoDriver = new VhostEchoDriver({ deviceId: link.deviceId });
  await vhostBus.registerDriver(echoDriver);
  const vhost = await attachVhost(link, vhostBus);
  let virtio: LoopbackVirtioTransport;
  try {
    virtio = await openVirtio(link);
  } catch (e) {
    await vhost.close();
    throw e;
  }
  return {
    link,
    virtio,
    vhost,
    echoDriver,
    ops: virtio.ops,
    id: virtio.id,
    echo: true,
    configSize: link.configSize,
    async dispose() {
      await virtio.close();
      await vhost.close();
    },
  };
}

/** What {@link loopbackVhostHarness} returns: a conformance harness, plus the link and the device side. @public */
export interface LoopbackVhostHarness extends VhostTransportHarness {
  /** The link. */
  readonly link: LoopbackLink;
  /** The device side (its `device` is the harness's, not registered). */
  readonly vhost: LoopbackVhostTransport;
  /** The far end. */
  readonly peer: LoopbackVhostPeer;
  /** Detaches both sides. */
  dispose(): Promise<void>;
}

/**
 * A fresh loopback link with its device side opened (device not registered) and a
 * {@link LoopbackVhostPeer} on its driver side: the factory result
 * `describeVhostTransportConformance` (`@x/vhost-core/testing`) wants.
 *
 * @public
 */
export async function loopbackVhostHarness(requirements: VhostConformanceRequirements, options: Partial<LoopbackLinkOptions> = {}): Promise<LoopbackVhostHarness> {
  // Per queue: a ring (≤ 16 pages at 32768 entries) and one buffer slot per entry.
  const perQueue = requirements.queueSize * (requirements.bufferSize + 64) + 4096;
  const memorySize = Math.max(1 << 20, Math.ceil((4 * requirements.queues * perQueue) / 4096) * 4096);
  const link = createLoopbackLink({ deviceId: 7, memorySize, maxQueues: Math.max(8, requirements.queues), ...options });
  const vhost = openVhost(link);
  let peer: LoopbackVhostPeer;
  try {
    peer = await LoopbackVhostPeer.open(link, { bufferSize: requirements.bufferSize });
  } catch (e) {
    await vhost.close();
    throw e;
  }
  return {
    link,
    vhost,
    device: vhost.device,
    peer,
    async dispose() {
      await peer.close();
      await vhost.close();
    },
  };
}
