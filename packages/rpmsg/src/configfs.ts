import { ConfigGroup, ConfigItem, VhostError, type ConfigItemType, type ConfigTree } from '@x/vhost-core';
import type { RpmsgDriver } from './api.js';
import type { RpmsgBus } from './bus.js';
import {
  rpmsgChannelItem,
  rpmsgChannelItemStatus,
  rpmsgChannelLink,
  rpmsgChannelUnlink,
  rpmsgVirtprocItem,
  type RpmsgChannelItemState,
  type RpmsgVirtprocItemState,
} from './config.js';
import { isRpmsgError } from './errors.js';
import { RPMSG_ADDR_ANY, checkRpmsgName } from './wire.js';

/** Names of the rpmsg configuration groups (RFC `rpmsg_cfs.c`, patch 9). @public */
export const RPMSG_CFS = {
  /** The subsystem root under the tree's root. */
  ROOT: 'rpmsg',
  /** `channel/<name>/<cN>`: channel items, made with mkdir. */
  CHANNEL: 'channel',
  /** `virtproc/<device>`: one item per link a bus added. */
  VIRTPROC: 'virtproc',
} as const;

/**
 * The rpmsg subtree of an `@x/vhost-core` `ConfigTree` (the RFC's rpmsg configfs,
 * patch 9):
 *
 * - `/rpmsg/channel/<name>`: one group per channel name in a registered rpmsg driver's
 *   id table (RFC: per `rpmsg_device_id`); `mkdir /rpmsg/channel/<name>/<cN>` makes a
 *   channel item with attributes `src` (fixed local address; 4294967295 = allocate,
 *   fixed while linked), `state` (FREE / BUSY) and `dst` (the bound remote address).
 * - `/rpmsg/virtproc/<device>`: one item per link, added by a bus (the vhost rpmsg bus
 *   adds `vhostN` at probe), with read-only `state` (up / down), `buffer_size` and
 *   `max_payload`. It stays when its device goes away, so its links survive a re-probe.
 * - `link /rpmsg/virtproc/<device> → /rpmsg/channel/<name>/<cN>` creates the channel
 *   (at once if the link is up, else at DRIVER_OK) and announces it; a second link of
 *   the same channel item is refused with `BUSY`; unlinking deletes the channel.
 *
 * The link logic is {@link rpmsgChannelLink} and friends.
 *
 * @public
 */
export class RpmsgConfigFs {
  /** The tree it lives in. */
  readonly tree: ConfigTree;
  /** `/rpmsg`. */
  readonly group: ConfigGroup;
  /** `/rpmsg/channel`. */
  readonly channels: ConfigGroup;
  /** `/rpmsg/virtproc`. */
  readonly virtprocs: ConfigGroup;
  readonly #chan = new WeakMap<ConfigItem, RpmsgChannelItemState>();
  readonly #vp = new WeakMap<ConfigItem, RpmsgVirtprocItemState>();
  readonly #info = new WeakMap<RpmsgVirtprocItemState, { bufferSize: number }>();
  readonly #channelItemType: ConfigItemType;
  readonly #channelGroupType: ConfigItemType;
  readonly #virtprocType: ConfigItemType;
  #unfollow: (() => void) | undefined;

  /** Adds `/rpmsg` to `tree`; with `bus`, follows its drivers' channel names. */
  constructor(tree: ConfigTree, bus?: RpmsgBus) {
    this.tree = tree;
    const chan = this.#chan;
    const vp = this.#vp;
    const info = this.#info;
    this.#channelItemType = {
      attributes: [
        {
          name: 'src',
          type: 'number',
          description: 'local address of the channel; 4294967295 (RPMSG_ADDR_ANY) allocates one from 1024 up',
          default: RPMSG_ADDR_ANY,
          validate: (v) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff ? undefined : `${String(v)} must be a u32 address`),
        },
        {
          name: 'state',
          type: 'string',
          description: 'FREE, or BUSY once linked to a virtproc',
          readOnly: true,
          show: (item) => {
            const s = chan.get(item);
            return s === undefined ? 'FREE' : rpmsgChannelItemStatus(s);
          },
        },
        {
          name: 'dst',
          type: 'number',
          description: "the channel's remote address (4294967295 until bound)",
          readOnly: true,
          show: (item) => chan.get(item)?.channel?.dst ?? RPMSG_ADDR_ANY,
        },
      ],
      canStore: (item) => (chan.get(item)?.linked !== undefined ? 'the channel item is linked; unlink it to change src' : undefined),
    };
    this.#channelGroupType = {
      makeItem: (group, name) => {
        const item = new ConfigItem(name, this.#channelItemType);
        chan.set(item, rpmsgChannelItem(group.name, name));
        return item;
      },
      dropItem: (_group, item) => {
        chan.delete(item);
      },
    };
    this.#virtprocType = {
      attributes: [
        {
          name: 'state',
          type: 'string',
          description: 'up while the link runs (after DRIVER_OK), else down',
          readOnly: true,
          show: (item) => {
            const v = vp.get(item)?.virtproc;
            return v !== undefined && !v.closed ? 'up' : 'down';
          },
        },
        {
          name: 'buffer_size',
          type: 'number',
          description: 'bytes per rpmsg buffer, header included',
          readOnly: true,
          show: (item) => {
            const s = vp.get(item);
            return s === undefined ? 0 : (info.get(s)?.bufferSize ?? 0);
          },
        },
        {
          name: 'max_payload',
          type: 'number',
          description: 'largest message payload while the link is up (buffer size − 16), else 0',
          readOnly: true,
          show: (item) => {
            const v = vp.get(item)?.virtproc;
            return v !== undefined && !v.closed ? v.maxPayload : 0;
          },
        },
      ],
      allowLink: (source, target) => {
        const c = chan.get(target);
        const v = vp.get(source);
        if (c === undefined || v === undefined) throw new VhostError('CONFIG_LINK', 'only channel items (/rpmsg/channel/<name>/<cN>) can be linked here');
        c.src = target.get('src') as number;
        try {
          rpmsgChannelLink(c, v);
        } catch (e) {
          // Keep the subsystem's BUSY (RFC: -EBUSY) through the tree's error handling.
          if (isRpmsgError(e, 'BUSY')) throw new VhostError('BUSY', e.message, { cause: e });
          throw e;
        }
      },
      dropLink: (source, target) => {
        const c = chan.get(target);
        const v = vp.get(source);
        if (c !== undefined && v !== undefined && c.linked === v) rpmsgChannelUnlink(c, v);
      },
    };
    this.group = new ConfigGroup(RPMSG_CFS.ROOT);
    this.channels = this.group.add(new ConfigGroup(RPMSG_CFS.CHANNEL));
    this.virtprocs = this.group.add(new ConfigGroup(RPMSG_CFS.VIRTPROC));
    tree.root.add(this.group);
    if (bus !== undefined) this.follow(bus);
  }

  /**
   * Adds `channel/<name>` for each name in the id tables of `bus`'s drivers, now and as
   * drivers register. Follows one bus at a time.
   */
  follow(bus: RpmsgBus): void {
    this.#unfollow?.();
    const add = (d: RpmsgDriver): void => {
      for (const name of d.idTable) this.addChannelName(name);
    };
    for (const d of bus.drivers) add(d);
    bus.on('driver', add);
    this.#unfollow = () => bus.off('driver', add);
  }

  /** Stops following the bus. Groups already made stay. */
  dispose(): void {
    this.#unfollow?.();
    this.#unfollow = undefined;
  }

  /** Adds `channel/<name>` (a group users mkdir channel items in); returns it, or the existing one. */
  addChannelName(name: string): ConfigGroup {
    checkRpmsgName(name);
    const existing = this.channels.children.get(name);
    if (existing instanceof ConfigGroup) return existing;
    return this.channels.add(new ConfigGroup(name, this.#channelGroupType));
  }

  /**
   * Adds `virtproc/<device>` for a link a bus runs and returns its state (the existing
   * one when the item is there already, e.g. after a re-probe).
   */
  addVirtproc(device: string, info: { bufferSize: number } = { bufferSize: 0 }): RpmsgVirtprocItemState {
    const existing = this.virtprocs.children.get(device);
    if (existing !== undefined) {
      const s = this.#vp.get(existing);
      if (s === undefined) throw new VhostError('CONFIG_PATH', 'the name is used by another item', { path: existing.path });
      this.#info.set(s, { ...info });
      return s;
    }
    const item = new ConfigItem(device, this.#virtprocType);
    const state = rpmsgVirtprocItem(device);
    this.#vp.set(item, state);
    this.#info.set(state, { ...info });
    this.virtprocs.add(item);
    return state;
  }

  /** The state of `virtproc/<device>`, or undefined. */
  virtprocState(device: string): RpmsgVirtprocItemState | undefined {
    const item = this.virtprocs.children.get(device);
    return item === undefined ? undefined : this.#vp.get(item);
  }

  /** The state of `channel/<name>/<item>`, or undefined. */
  channelState(name: string, item: string): RpmsgChannelItemState | undefined {
    const group = this.channels.children.get(name);
    const it = group instanceof ConfigGroup ? group.children.get(item) : undefined;
    return it === undefined ? undefined : this.#chan.get(it);
  }

  /** Removes `virtproc/<device>`, unlinking (deleting) its channels first. */
  removeVirtproc(device: string): Promise<void> {
    return this.tree.edit(async (e) => {
      const item = this.virtprocs.children.get(device);
      if (item === undefined) throw new VhostError('CONFIG_PATH', 'no such virtproc item', { path: `${this.virtprocs.path}/${device}` });
      for (const link of [...item.links.keys()]) await e.unlink(item.path, link);
      this.virtprocs.remove(device);
    });
  }
}
