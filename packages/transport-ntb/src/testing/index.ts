/**
 * `@x/transport-ntb/testing`: doubles and rigs for tests and examples — an in-thread
 * direct pair with both NTB clients, an echo vhost device, an echo virtio client that
 * counts what was sent, acknowledged and echoed, the far-end driver the vhost
 * conformance suite drives, and the `@x/platform` systems of the two- and
 * three-system topologies.
 *
 * @packageDocumentation
 */
export { NtbEchoVhostDriver, type NtbEchoVhostDriverOptions } from './echo-vhost.js';
export {
  createNtbBridgeHarness,
  createNtbPairHarness,
  type NtbBridgeHarnessOptions,
  type NtbHarness,
  type NtbHarnessOptions,
  type NtbPairHarnessOptions,
} from './harness.js';
export { NtbVirtioPeer, type NtbPeerUsedBuffer } from './virtio-peer.js';
export { NtbEchoClient, type NtbEchoClientCounts, type NtbEchoClientOptions } from './echo-client.js';
export {
  NTB_ECHO_SYSTEM,
  NTB_SYSTEM_LINES,
  ntbEchoSystem,
  ntbEchoTopology,
  type NtbEchoTopologyOptions,
  type NtbSystemConfig,
  type NtbSystemReport,
  type NtbSystemTraceEntry,
} from './systems.js';
