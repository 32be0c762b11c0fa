/**
 * Test doubles and the conformance suite of `@x/vhost-core`, for transport authors:
 * {@link FakeVhostTransport} (a transport whose far end is a scripted virtio driver,
 * joined only by bytes) and {@link describeVhostTransportConformance} (a vitest suite a
 * transport runs against its own factory).
 *
 * @packageDocumentation
 */
export { FakeVhostPeer, FakeVhostTransport, type FakeVhostTransportOptions } from './fake-transport.js';
export { describeVhostTransportConformance, type VhostConformanceOptions } from './conformance.js';
export type {
  VhostConformanceRequirements,
  VhostPeerUsedBuffer,
  VhostTransportFactory,
  VhostTransportHarness,
  VhostTransportPeer,
} from './harness.js';
