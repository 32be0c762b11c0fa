/**
 * `@x/transport-pci-epf`: PCIe Root Complex ↔ Endpoint (use case 1 of the RFC "Enhance
 * VHOST to enable SoC-to-SoC communication"). A model of the PCIe endpoint hardware
 * (configuration space, BARs, outbound windows, MSI / MSI-X / INTx, the mainline
 * doorbell, register emulation, an eDMA) over shared bytes; the RFC's endpoint function
 * {@link PciEpfVhost} (patch 19, a `VhostConfigOps`) and root-complex driver
 * {@link VirtioPciEpf} (patch 18, a `VirtioConfigOps`); and the mainline direction: an
 * endpoint presenting a standard modern virtio-pci device ({@link PciEpfVirtioModern})
 * driven by a stock driver ({@link VirtioPciModern}).
 *
 * @packageDocumentation
 */
export { PciEpfError, isPciEpfError, type PciEpfErrorCode } from './errors.js';
export {
  EPF_VHOST_CMD_STATUS,
  EPF_VHOST_CMD_TIMEOUT_MS,
  EPF_VHOST_DB,
  EPF_VHOST_DEVICE_CFG,
  EPF_VHOST_EXT,
  EPF_VHOST_EXT_F,
  EPF_VHOST_EXT_VERSION,
  EPF_VHOST_HOST_CMD,
  EPF_VHOST_IRQ_VECTORS,
  EPF_VHOST_MAGIC,
  EPF_VHOST_MAX_VQS,
  EPF_VHOST_POLL_PERIOD_MS,
  EPF_VHOST_QUEUE_CMD,
  EPF_VHOST_QUEUE_REG,
  EPF_VHOST_Q_STATUS_ENABLE,
  EPF_VHOST_REG,
  EPF_VHOST_VRING_ALIGN,
  PCI_ANY_ID16,
  PCI_CAP_ID,
  PCI_CFG,
  PCI_ID_TI,
  PCI_MSI,
  PCI_MSIX,
  RC_MSI_ADDRESS,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_COMMON,
  VIRTIO_PCI_EPF_LAYOUT,
  VIRTIO_PCI_ID,
  VIRTIO_PCI_ISR,
} from './constants.js';
export {
  LocalLine,
  createLocalLines,
  systemClock,
  type PciClock,
  type PciEpfLines,
  type PciLine,
  type PciLineListenOptions,
  type PciLineListener,
} from './wire.js';
export {
  DEFAULT_EPC_FEATURES,
  PCI_FABRIC,
  PCI_FABRIC_BAR,
  PCI_FABRIC_EP_EVENT,
  PCI_FABRIC_MAGIC,
  PCI_FABRIC_MBOX_ENTRY,
  PCI_FABRIC_RC_EVENT,
  createPciEpfLink,
  pciEpfLinkSizes,
  resolvePciEpfLinkConfig,
  type PciEpcBarFeature,
  type PciEpcFeatures,
  type PciEpcOutboundFeature,
  type PciEpfLink,
  type PciEpfLinkBuffers,
  type PciEpfLinkConfig,
  type PciEpfLinkOptions,
} from './hw/link.js';
export {
  PciEpc,
  type PciEndpointController,
  type PciEpcDma,
  type PciEpcDmaTransfer,
  type PciEpcIrqType,
  type PciEpcMap,
  type PciEpcOptions,
  type PciEpcStats,
  type PciEpcTrapHandler,
  type PciEpfBar,
  type PciEpfBarRequest,
  type PciEpfHeader,
} from './hw/endpoint.js';
export {
  PciRootComplex,
  type PciBarMmio,
  type PciBarInfo,
  type PciCapabilityInfo,
  type PciFunctionInfo,
  type PciIrqAllocation,
  type PciIrqType,
  type PciRootComplexOptions,
  type PciTraceEvent,
  type PciWaitOptions,
} from './hw/root-complex.js';
export {
  PciEpfVhost,
  type PciEpfDataPath,
  type PciEpfNotifyMode,
  type PciEpfVhostOptions,
  type PciEpfVhostStats,
} from './rfc/pci-epf-vhost.js';
export { VirtioPciEpf, type PciId, type VirtioPciEpfOptions, type VirtioPciEpfStats } from './rfc/virtio-pci-epf.js';
export { PciEpfVirtioModern, type PciEpfVirtioModernOptions, type PciEpfVirtioModernStats } from './modern/pci-epf-virtio.js';
export {
  VirtioPciModern,
  readVirtioPciCaps,
  type VirtioPciCaps,
  type VirtioPciModernOptions,
  type VirtioPciModernStats,
  type VirtioPciRegion,
} from './modern/virtio-pci-modern.js';
export {
  createLocalPciEpfLink,
  startPciEpfEndpoint,
  startPciEpfHost,
  type LocalPciEpfLink,
  type PciEpfEndpoint,
  type PciEpfEndpointOptions,
  type PciEpfHost,
  type PciEpfHostOptions,
  type PciEpfMode,
} from './sides.js';
