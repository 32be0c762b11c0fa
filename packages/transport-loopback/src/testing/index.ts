/**
 * `@x/transport-loopback/testing`: the pieces the loopback's own tests use, for other
 * packages' tests too — the echo device of the virtio conformance contract as a vhost
 * driver, a raw virtio-mmio peer for the vhost conformance suite, and factories that
 * build a fresh link for each conformance test.
 *
 * @packageDocumentation
 */
export { VhostEchoDriver, type VhostEchoDriverOptions } from './echo-driver.js';
export { LoopbackVhostPeer, type LoopbackVhostPeerOptions } from './peer.js';
export { loopbackVhostHarness, loopbackVirtioTarget, type LoopbackVhostHarness, type LoopbackVirtioTarget } from './harness.js';
