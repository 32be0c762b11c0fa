/**
 * Test doubles, conformance factories and `@x/platform` systems of
 * `@x/transport-pci-epf`: an echo vhost driver for the endpoint
 * ({@link VhostEchoDriver}) and an echo virtio driver for the root complex
 * ({@link VirtioEchoClient}); a one-thread testbed of both sides
 * ({@link createPciEpfTestbed}); factories for the virtio-core and vhost-core
 * conformance suites ({@link pciEpfVirtioTarget}, {@link pciEpfVhostHarness}) with
 * register-level host peers; and the systems of a link in worker threads
 * ({@link pciEpfEchoSystem}, {@link pciEpfEchoTopology}).
 *
 * @packageDocumentation
 */
export { VhostEchoDriver, type VhostEchoDriverOptions } from './echo-vhost-driver.js';
export { VirtioEchoClient, type EchoClientCounts, type VirtioEchoClientOptions } from './echo-client.js';
export { ModernHostPeer, PciHostPeer, RfcHostPeer } from './peers.js';
export {
  createPciEpfTestbed,
  pciEpfVhostHarness,
  pciEpfVirtioTarget,
  type PciEpfConformanceOptions,
  type PciEpfTestbed,
  type PciEpfTestbedOptions,
} from './testbed.js';
export {
  PCI_EPF_ECHO_SYSTEM,
  PCI_EPF_LINES,
  PCI_EPF_REGIONS,
  pciEpfEchoSystem,
  pciEpfEchoTopology,
  type PciEpfEchoReport,
  type PciEpfEchoSystemConfig,
  type PciEpfEchoTopologyOptions,
} from './systems.js';
