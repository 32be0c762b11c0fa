/**
 * `@x/rpmsg`: remote processor messaging (Linux `drivers/rpmsg`, OpenAMP `lib/rpmsg`)
 * over virtio rings, wire-compatible with Linux and OpenAMP, with the Address Service
 * of the RFC "Enhance VHOST to enable SoC-to-SoC communication".
 *
 * @packageDocumentation
 */
export { RpmsgError, isRpmsgError, type RpmsgErrorCode } from './errors.js';
export {
  RPMSG_ADDR_ANY,
  RPMSG_AS_ADDR,
  RPMSG_AS_FLAGS,
  RPMSG_AS_MSG,
  RPMSG_BUF_SIZE,
  RPMSG_HDR,
  RPMSG_MAX_PAYLOAD,
  RPMSG_NAME_SIZE,
  RPMSG_NS_ADDR,
  RPMSG_NS_FLAGS,
  RPMSG_NS_MSG,
  RPMSG_NUM_BUFS,
  RPMSG_RESERVED_ADDRESSES,
  RPMSG_SEND_TIMEOUT_MS,
  VIRTIO_ID_RPMSG,
  VIRTIO_RPMSG_F,
  checkRpmsgName,
  readAsMsg,
  readNsMsg,
  readRpmsgHeader,
  writeAsMsg,
  writeNsMsg,
  writeRpmsgHeader,
  type RpmsgAsMsg,
  type RpmsgHeader,
  type RpmsgNsMsg,
} from './wire.js';
export type { RpmsgBuffer, RpmsgTransport, RpmsgTransportSink } from './transport.js';
export type {
  RpmsgChannel,
  RpmsgChannelInfo,
  RpmsgDriver,
  RpmsgEndpoint,
  RpmsgEndpointOptions,
  RpmsgEndpointStats,
  RpmsgMessage,
  RpmsgRxCallback,
  RpmsgSendOptions,
  RpmsgStreamOptions,
  RpmsgVirtprocEvents,
  RpmsgVirtprocOptions,
  RpmsgCloseOptions,
  RpmsgVirtprocStats,
} from './api.js';
export { RpmsgVirtproc } from './virtproc.js';
export {
  RPMSG_RX_QUEUE,
  RPMSG_TX_QUEUE,
  RpmsgVirtqueueTransport,
  RpmsgVringhTransport,
  vringhDeviceQueue,
  type RpmsgDeviceQueue,
  type RpmsgVirtqueueTransportOptions,
  type RpmsgVringhTransportOptions,
} from './ring-transport.js';
export {
  rpmsgChannelItem,
  rpmsgChannelItemStatus,
  rpmsgChannelLink,
  rpmsgChannelUnlink,
  rpmsgVirtprocAttach,
  rpmsgVirtprocDetach,
  rpmsgVirtprocItem,
  type RpmsgChannelItemState,
  type RpmsgVirtprocItemState,
} from './config.js';
export { RpmsgBus, type RpmsgBusEvents, type RpmsgBusOptions } from './bus.js';
export { VirtioRpmsgBus, type VirtioRpmsgBusOptions } from './virtio-rpmsg-bus.js';
export { VhostRpmsgBus, type VhostRpmsgBusOptions } from './vhost-rpmsg-bus.js';
export { RPMSG_CFS, RpmsgConfigFs } from './configfs.js';
