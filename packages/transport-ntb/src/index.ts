/**
 * `@x/transport-ntb`: the Non-Transparent Bridge use case of the RFC "Enhance VHOST to
 * enable SoC-to-SoC communication" (use case 2: HOST1 ↔ NTB ↔ HOST2). An NTB hardware
 * interface with Linux `ntb_dev_ops` semantics ({@link NtbDev}); two hardware backends
 * over shared bytes — a direct pair of hosts ({@link NtbPairPort}) and the three-system
 * bridge of an SoC running the NTB endpoint function between two endpoint controllers
 * ({@link NtbEpfFunction}, {@link NtbEpfHost}); and the RFC's NTB clients,
 * {@link NtbVirtio} (HOST1, a `VirtioConfigOps`) and {@link NtbVhost} (HOST2, a
 * `VhostConfigOps`), speaking the scratchpad protocol with its gaps closed.
 *
 * @packageDocumentation
 */
export { NtbError, isNtbError, type NtbErrorCode } from './errors.js';
export {
  NTB_EPF_CMD,
  NTB_EPF_CMD_STATUS,
  NTB_EPF_COMMAND_TIMEOUT_MS,
  NTB_EPF_CTRL,
  NTB_EPF_DB_COUNT,
  NTB_EPF_LINK_STATUS_UP,
  NTB_EPF_MSIX_ENABLE,
  NTB_EPF_POLL_PERIOD_MS,
  NTB_HOST_CMD,
  NTB_HOST_CMD_STATUS,
  NTB_VHOST_COMMAND_POLL_MS,
  NTB_VIRTIO_BUFFER_OFFSET,
  NTB_VIRTIO_COMMAND_TIMEOUT_MS,
  NTB_VIRTIO_DB,
  NTB_VIRTIO_LINK_RETRY_MS,
  NTB_VIRTIO_MAX_VQS,
  NTB_VIRTIO_SPAD,
  NTB_VIRTIO_TYPE,
  NTB_VIRTIO_VRING_ALIGN,
  ntbVhostQueueNumBuffers,
  ntbVirtioQueueOffset,
  ntbVirtioRingSpan,
  ntbVirtioQueueDbBits,
} from './constants.js';
export {
  NTB_DEF_PEER_CNT,
  NTB_DEF_PEER_IDX,
  NTB_SPEED,
  NTB_TOPO,
  NTB_WIDTH,
  NtbDev,
  checkNtbDevOps,
  type NtbCtxOps,
  type NtbDevOps,
  type NtbDevOptions,
  type NtbDmaRegion,
  type NtbLinkStatus,
  type NtbMaybePromise,
  type NtbMsg,
  type NtbMwAlign,
  type NtbPeerMwAddr,
  type NtbTraceEvent,
} from './ntb-dev.js';
export {
  LocalNtbLine,
  SharedNtbLine,
  systemClock,
  type NtbClock,
  type NtbLine,
  type NtbLineListener,
  type NtbLineListenOptions,
} from './wire.js';
export { NTB_XLAT, NtbWindowMemory, readNtbXlat, writeNtbXlat, type NtbWindowMemoryOptions } from './window.js';
export {
  NTB_PAIR_LINK,
  NTB_PAIR_MAGIC,
  NTB_PAIR_MAX_MWS,
  NTB_PAIR_REG,
  NTB_PAIR_VERSION,
  createNtbPairLink,
  type NtbPairHostConfig,
  type NtbPairLink,
  type NtbPairLinkConfig,
  type NtbPairLinkOptions,
} from './pair/link.js';
export {
  NtbPairPort,
  openNtbPairPort,
  type NtbPairLines,
  type NtbPairPortOptions,
  type NtbPeerDownInfo,
  type NtbPeerWatch,
} from './pair/port.js';
export { NtbVirtio, type NtbVirtioEvent, type NtbVirtioOptions, type NtbVirtioState } from './virtio.js';
export { NtbVhost, type NtbVhostEvent, type NtbVhostOptions, type NtbVhostState } from './vhost.js';
export {
  NTB_BRIDGE_ATU_SLOTS,
  NTB_BRIDGE_FABRIC,
  NTB_BRIDGE_MAGIC,
  NTB_BRIDGE_MW_SLOT,
  NTB_BRIDGE_VERSION,
  PCI_MSIX_ENTRY_SIZE,
  createNtbBridgeLink,
  type NtbBridgeHostConfig,
  type NtbBridgeLink,
  type NtbBridgeLinkConfig,
  type NtbBridgeLinkOptions,
} from './bridge/link.js';
export type { NtbBridgeEpc } from './bridge/fabric.js';
export {
  NtbEpfFunction,
  startNtbEpfFunction,
  type NtbBridgeLines,
  type NtbEpfFunctionEvent,
  type NtbEpfFunctionOptions,
} from './bridge/function.js';
export { NtbEpfHost, openNtbEpfHost, type NtbEpfHostLines, type NtbEpfHostOptions } from './bridge/host.js';
export {
  openNtbHost,
  startNtbVhostSide,
  startNtbVirtioSide,
  type NtbHostOptions,
  type NtbHostPort,
  type NtbLinkDescription,
  type NtbVhostSide,
  type NtbVhostSideOptions,
  type NtbVirtioSide,
  type NtbVirtioSideOptions,
} from './sides.js';
