/**
 * `@x/virtio-mediator`: Jason Wang's alternative to the RFC's vhost bus — a
 * transport-neutral mediator that binds to a remote-facing vhost device, presents a
 * local virtio device to local drivers, copies between the two rings, and mediates
 * features (X offered, Y local, Z remote; Y ∩ Z in use).
 *
 * @packageDocumentation
 */
export { MediatorError, isMediatorError, type MediatorErrorCode, type MediatorSide } from './errors.js';
export { MEDIATOR_RING_FEATURES, TRANSPORT_FEATURES_MASK, deviceFeatures, ringFeatures } from './features.js';
export {
  VirtioMediator,
  type MediatedDeviceType,
  type MediatedFeatures,
  type MediatorErrorEvent,
  type MediatorEvent,
  type MediatorFeaturesEvent,
  type MediatorFlowStats,
  type MediatorNeedsResetEvent,
  type MediatorRoute,
  type MediatorStats,
  type VirtioMediatorOptions,
} from './mediator.js';
