/**
 * `@x/vhost-core`: the backend (vhost) device model of the Linux RFC "Enhance VHOST to
 * enable SoC-to-SoC communication" (patches 1–3, 5, 6): the vhost bus with devices and
 * id-matched drivers, the transport contract {@link VhostConfigOps}, the device half of
 * each queue ({@link VhostVirtqueue} over `@x/vring`'s `Vringh`), and the typed
 * configuration tree (the configfs analogue) with its vhost subtree.
 *
 * @packageDocumentation
 */
export { VhostError, isVhostError, type VhostErrorCode } from './errors.js';
export { VHOST_DEV_ANY_ID, VHOST_FEATURES_MASK, VHOST_NOTIFY, VIRTIO_CONFIG_S, type VhostNotifyEvent } from './constants.js';
export { validateVhostConfigOps, type VhostConfigOps, type VhostVqCallback, type VhostVqSpec } from './config-ops.js';
export { vhostIdMatch, type VhostDeviceId, type VhostDriver } from './driver.js';
export {
  VHOST_DEFAULT_CONFIG,
  VhostDevice,
  type VhostDeviceConfig,
  type VhostDeviceOptions,
  type VhostEventInfo,
  type VhostNotifier,
} from './device.js';
export { VhostBus, type VhostBusListener } from './bus.js';
export { VhostVirtqueue, type VhostVirtqueueOptions, type VhostVirtqueueStats } from './virtqueue.js';
export {
  ConfigGroup,
  ConfigItem,
  ConfigTree,
  type ConfigAttributeDef,
  type ConfigBacklink,
  type ConfigEditor,
  type ConfigItemType,
  type ConfigJson,
  type ConfigJsonLink,
  type ConfigJsonValue,
  type ConfigRuleViolation,
  type ConfigValue,
  type ConfigValueType,
} from './config/tree.js';
export { VHOST_CFS, VHOST_CLIENT_ATTR, VhostConfigFs, vhostClientItemName } from './config/vhost-cfs.js';
