import { VIRTQUEUE_MAX_SIZE } from '@x/vring';
import type { VhostBus } from '../bus.js';
import { VHOST_FEATURES_MASK } from '../constants.js';
import type { VhostDevice, VhostDeviceConfig } from '../device.js';
import type { VhostDeviceId, VhostDriver } from '../driver.js';
import { VhostError } from '../errors.js';
import { ConfigGroup, ConfigItem, type ConfigAttributeDef, type ConfigItemType, type ConfigTree, type ConfigValue } from './tree.js';

/** Names of the vhost configuration groups (RFC `vhost_cfs.c`). @public */
export const VHOST_CFS = {
  /** The subsystem root under the tree's root. */
  ROOT: 'vhost',
  /** Default group of client drivers: `vhost-client/<driver>/<vendor:device>`. */
  CLIENT: 'vhost-client',
  /** Default group of transports: `vhost-transport/<device>`. */
  TRANSPORT: 'vhost-transport',
} as const;

/** Attribute names of a `vhost-client/<driver>/<vendor:device>` item. @public */
export const VHOST_CLIENT_ATTR = {
  /** Queue size (power of two ≤ 32768). */
  QUEUE_SIZE: 'queue_size',
  /** Buffers per queue; 0 = one per descriptor. */
  BUFFER_COUNT: 'buffer_count',
  /** Bytes per buffer. */
  BUFFER_SIZE: 'buffer_size',
  /** Features the device may offer (⊆ the driver's). */
  FEATURES: 'features',
} as const;

/**
 * The name of a client item: `%08x:%08x` of (vendor, device), as the RFC's
 * `vhost_cfs_add_driver_item` formats it (vhost_rpmsg's is `ffffffff:00000007`).
 *
 * @public
 */
export function vhostClientItemName(id: VhostDeviceId): string {
  return `${(id.vendor >>> 0).toString(16).padStart(8, '0')}:${(id.device >>> 0).toString(16).padStart(8, '0')}`;
}

interface ClientMeta {
  readonly driver: VhostDriver;
  readonly id: VhostDeviceId;
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/**
 * The vhost subtree of a {@link ConfigTree} (the RFC's `vhost_cfs.c`, patch 6), wired
 * to a {@link VhostBus}:
 *
 * - `/vhost/vhost-client/<driver>/<vendor:device>`: one item per id table entry of each
 *   registered driver, added and removed with the driver. Its attributes `queue_size`,
 *   `buffer_count`, `buffer_size` and `features` (which the RFC hard-coded) become the
 *   device's {@link VhostDeviceConfig}; they are fixed while a transport links to it.
 * - `/vhost/vhost-transport/<device>`: one item per device a transport adds with
 *   {@link VhostConfigFs.addTransport}. Linking it to a client item sets the device's ids
 *   and configuration and registers it on the bus; unlinking unregisters it. A transport
 *   item holds one link; a second is refused with `BUSY`.
 *
 * @public
 */
export class VhostConfigFs {
  /** The tree it lives in. */
  readonly tree: ConfigTree;
  /** The bus devices are registered on. */
  readonly bus: VhostBus;
  /** `/vhost`. */
  readonly group: ConfigGroup;
  /** `/vhost/vhost-client`. */
  readonly clients: ConfigGroup;
  /** `/vhost/vhost-transport`. */
  readonly transports: ConfigGroup;
  readonly #clientMeta = new WeakMap<ConfigItem, ClientMeta>();
  readonly #transportDevice = new WeakMap<ConfigItem, VhostDevice>();
  readonly #transportType: ConfigItemType;
  readonly #unlisten: () => void;

  constructor(tree: ConfigTree, bus: VhostBus) {
    this.tree = tree;
    this.bus = bus;
    this.group = new ConfigGroup(VHOST_CFS.ROOT);
    this.clients = this.group.add(new ConfigGroup(VHOST_CFS.CLIENT));
    this.transports = this.group.add(new ConfigGroup(VHOST_CFS.TRANSPORT));
    tree.root.add(this.group);
    this.#transportType = this.#makeTransportType();
    for (const d of bus.drivers) this.#addDriver(d);
    this.#unlisten = bus.addListener({
      driverRegistered: (d) => tree.edit(() => this.#addDriver(d)),
      driverUnregistered: (d) => this.#removeDriver(d),
    });
  }

  /** The client item of `driverName` for `id`, or undefined. */
  clientItem(driverName: string, id: VhostDeviceId): ConfigItem | undefined {
    const g = this.clients.children.get(driverName);
    return g instanceof ConfigGroup ? g.children.get(vhostClientItemName(id)) : undefined;
  }

  /** The device of a transport item, or undefined. */
  transportDevice(item: ConfigItem): VhostDevice | undefined {
    return this.#transportDevice.get(item);
  }

  /**
   * Adds `vhost-transport/<name>` for a device a transport created (RFC
   * `vhost_cfs_add_device_item`); linking it registers the device. `name` defaults to
   * the device's parent name.
   */
  addTransport(device: VhostDevice, name: string = device.parent): ConfigItem {
    if (typeof device !== 'object' || device === null) throw new TypeError('device must be a VhostDevice');
    const item = new ConfigItem(name, this.#transportType);
    this.transports.add(item);
    this.#transportDevice.set(item, device);
    return item;
  }

  /** Removes `vhost-transport/<name>` (RFC `vhost_cfs_remove_device_item`), unlinking (unregistering) first. */
  removeTransport(name: string): Promise<void> {
    return this.tree.edit(async (e) => {
      const item = this.transports.children.get(name);
      if (item === undefined) throw new VhostError('CONFIG_PATH', 'no such transport item', { path: `${this.transports.path}/${name}` });
      for (const link of [...item.links.keys()]) await e.unlink(item.path, link);
      this.transports.remove(name);
    });
  }

  /** Stops following the bus's driver registrations. Groups already made stay. */
  dispose(): void {
    this.#unlisten();
  }

  #addDriver(driver: VhostDriver): void {
    if (this.clients.children.has(driver.name)) return;
    const group = new ConfigGroup(driver.name);
    const type = this.#makeClientType(driver);
    for (const id of driver.idTable) {
      const name = vhostClientItemName(id);
      if (group.children.has(name)) continue;
      const item = group.add(new ConfigItem(name, type));
      this.#clientMeta.set(item, Object.freeze({ driver, id: Object.freeze({ vendor: id.vendor, device: id.device }) }));
    }
    this.clients.add(group);
  }

  #removeDriver(driver: VhostDriver): Promise<void> {
    return this.tree.edit(async (e) => {
      const group = this.clients.children.get(driver.name);
      if (!(group instanceof ConfigGroup)) return;
      for (const item of group.children.values()) {
        for (const b of [...item.backlinks]) await e.unlink(b.source.path, b.name);
      }
      this.clients.remove(driver.name);
    });
  }

  #makeClientType(driver: VhostDriver): ConfigItemType {
    const supported = driver.features ?? VHOST_FEATURES_MASK;
    const attributes: ConfigAttributeDef[] = [
      {
        name: VHOST_CLIENT_ATTR.QUEUE_SIZE,
        type: 'number',
        description: 'descriptors per queue',
        default: 256,
        validate: (v) =>
          Number.isInteger(v) && (v as number) >= 1 && (v as number) <= VIRTQUEUE_MAX_SIZE && ((v as number) & ((v as number) - 1)) === 0
            ? undefined
            : `breaks the rule: queue_size must be a power of two in 1..${VIRTQUEUE_MAX_SIZE} (VIRTIO 1.2 §2.7)`,
      },
      {
        name: VHOST_CLIENT_ATTR.BUFFER_COUNT,
        type: 'number',
        description: 'buffers per queue (0 = one per descriptor)',
        default: 0,
        validate: (v) =>
          Number.isInteger(v) && (v as number) >= 0 && (v as number) <= VIRTQUEUE_MAX_SIZE
            ? undefined
            : `breaks the rule: buffer_count must be an integer in 0..${VIRTQUEUE_MAX_SIZE}`,
      },
      {
        name: VHOST_CLIENT_ATTR.BUFFER_SIZE,
        type: 'number',
        description: 'bytes per buffer',
        default: 512,
        validate: (v) =>
          Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 0xffffffff
            ? undefined
            : 'breaks the rule: buffer_size must be an integer in 1..2^32-1 (a descriptor length is le32, VIRTIO 1.2 §2.7.5)',
      },
      {
        name: VHOST_CLIENT_ATTR.FEATURES,
        type: 'bigint',
        description: `feature bits the device may offer (a subset of ${driver.name}'s ${hex(supported)})`,
        default: supported,
        validate: (v) => {
          const f = v as bigint;
          if (f > VHOST_FEATURES_MASK) return 'breaks the rule: features must fit in 64 bits';
          const extra = f & ~supported;
          return extra === 0n
            ? undefined
            : `breaks the rule: features must be a subset of what ${driver.name} supports (${hex(supported)}); extra bits ${hex(extra)}`;
        },
      },
    ];
    return {
      attributes,
      canStore: (item) =>
        item.backlinks.length > 0
          ? `attributes are fixed while ${item.backlinks.map((b) => b.source.path).join(', ')} links to this item; unlink first`
          : undefined,
      check: (_item, values) => {
        const qs = values.get(VHOST_CLIENT_ATTR.QUEUE_SIZE) as number;
        const bc = values.get(VHOST_CLIENT_ATTR.BUFFER_COUNT) as number;
        return bc > qs
          ? { attribute: VHOST_CLIENT_ATTR.BUFFER_COUNT, rule: `buffer_count ${bc} must not exceed queue_size ${qs} (each buffer in flight holds a descriptor)` }
          : undefined;
      },
    };
  }

  #makeTransportType(): ConfigItemType {
    const bus = this.bus;
    return {
      attributes: [
        {
          name: 'device',
          type: 'string',
          description: 'the vhost device registered through this item ("" when unlinked)',
          readOnly: true,
          show: (item) => {
            const dev = this.#transportDevice.get(item);
            return dev !== undefined && dev.bus !== undefined ? dev.name : '';
          },
        },
      ],
      allowLink: async (source, target) => {
        const meta = this.#clientMeta.get(target);
        if (meta === undefined) {
          throw new VhostError('CONFIG_LINK', `the target ${target.path} is not a ${this.clients.path}/<driver>/<vendor:device> item`);
        }
        const existing = [...source.links.values()][0];
        if (existing !== undefined) {
          throw new VhostError('BUSY', `the transport item already links to ${existing.path}; a second link is refused (unlink first)`);
        }
        const device = this.#transportDevice.get(source)!;
        if (device.bus !== undefined) throw new VhostError('BUSY', `${device.name} is already registered (by code?)`);
        device.id = meta.id;
        device.config = configOf(target);
        await bus.registerDevice(device);
      },
      dropLink: async (source) => {
        const device = this.#transportDevice.get(source)!;
        if (device.bus === bus) await bus.unregisterDevice(device);
      },
    };
  }
}

/** The device configuration a client item holds. */
function configOf(item: ConfigItem): VhostDeviceConfig {
  const get = (n: string): ConfigValue => item.get(n);
  return {
    queueSize: get(VHOST_CLIENT_ATTR.QUEUE_SIZE) as number,
    bufferCount: get(VHOST_CLIENT_ATTR.BUFFER_COUNT) as number,
    bufferSize: get(VHOST_CLIENT_ATTR.BUFFER_SIZE) as number,
    features: get(VHOST_CLIENT_ATTR.FEATURES) as bigint,
  };
}
