import type { RpmsgChannel } from './api.js';
import { RpmsgError } from './errors.js';
import type { RpmsgVirtproc } from './virtproc.js';
import { RPMSG_ADDR_ANY, checkRpmsgName } from './wire.js';

// What the RFC's rpmsg configfs (patch 9, `rpmsg_cfs.c`) does when a user links, unlinks
// and when a bus brings a link up or down, as plain functions over two small state
// records. `RpmsgConfigFs` plugs them into @x/vhost-core's configuration tree; any other
// front end (a config file, a CLI) can call them directly.

/**
 * State of one `rpmsg/channel/<name>/<cN>` item: FREE until linked to a virtproc item,
 * then BUSY.
 *
 * @public
 */
export interface RpmsgChannelItemState {
  /** The channel name (the `<name>` group, from a driver's id table). */
  readonly name: string;
  /** The `<cN>` item name. */
  readonly item: string;
  /** Fixed local address of the channel, or RPMSG_ADDR_ANY (default) to allocate one. */
  src: number;
  /** The virtproc item it is linked to. */
  linked: RpmsgVirtprocItemState | undefined;
  /** The channel created for it while the virtproc is up. */
  channel: RpmsgChannel | undefined;
}

/**
 * State of one `rpmsg/virtproc/<device>` item, which a bus adds per link (e.g.
 * `vhost0`). Its channels exist while a virtproc is attached (after DRIVER_OK).
 *
 * @public
 */
export interface RpmsgVirtprocItemState {
  /** The `<device>` name. */
  readonly device: string;
  /** The rpmsg core of the link while it is up. */
  virtproc: RpmsgVirtproc | undefined;
  /** Channel items linked to it, in link order. */
  readonly links: Set<RpmsgChannelItemState>;
}

/** A fresh FREE channel item (`mkdir rpmsg/channel/<name>/<item>`), with an optional fixed `src`. @public */
export function rpmsgChannelItem(name: string, item: string, src: number = RPMSG_ADDR_ANY): RpmsgChannelItemState {
  checkRpmsgName(name);
  if (typeof item !== 'string' || item.length === 0) throw new TypeError('item must be a non-empty string');
  if (typeof src !== 'number') throw new TypeError('src must be a number');
  if (!Number.isInteger(src) || src < 0 || src > 0xffffffff) throw new RangeError(`src must be a u32 address, got ${src}`);
  return { name, item, src, linked: undefined, channel: undefined };
}

/** A fresh virtproc item with no link up. @public */
export function rpmsgVirtprocItem(device: string): RpmsgVirtprocItemState {
  if (typeof device !== 'string' || device.length === 0) throw new TypeError('device must be a non-empty string');
  return { device, virtproc: undefined, links: new Set() };
}

/** The FREE / BUSY state the RFC shows for a channel item. @public */
export function rpmsgChannelItemStatus(item: RpmsgChannelItemState): 'FREE' | 'BUSY' {
  return item.linked === undefined ? 'FREE' : 'BUSY';
}

function createFor(item: RpmsgChannelItemState, vp: RpmsgVirtproc): void {
  // A configured channel is announced to the peer (the RFC's vhost side announces
  // every channel made through configfs once the driver is ready).
  item.channel = vp.createChannel({ name: item.name, src: item.src }, { announce: true });
}

/**
 * `ln -s rpmsg/channel/<name>/<item> rpmsg/virtproc/<device>` (RFC `rpmsg_cfs`
 * allow_link): marks the item BUSY and, when the link is up, creates the channel at
 * once; otherwise it is created at {@link rpmsgVirtprocAttach}. A second link of the
 * same item throws BUSY; a failed creation leaves the item FREE and throws.
 *
 * @public
 */
export function rpmsgChannelLink(item: RpmsgChannelItemState, target: RpmsgVirtprocItemState): void {
  if (item.linked !== undefined) {
    throw new RpmsgError('BUSY', `channel item ${item.name}/${item.item} is already linked to ${item.linked.device}`);
  }
  if (target.virtproc !== undefined && !target.virtproc.closed) createFor(item, target.virtproc);
  item.linked = target;
  target.links.add(item);
}

/**
 * Removing that link (configfs drop_link): deletes the channel (announcing its removal
 * to the peer) and frees the item. Throws NOT_FOUND when the item is not linked there.
 *
 * @public
 */
export function rpmsgChannelUnlink(item: RpmsgChannelItemState, target: RpmsgVirtprocItemState): void {
  if (item.linked !== target) throw new RpmsgError('NOT_FOUND', `channel item ${item.name}/${item.item} is not linked to ${target.device}`);
  const ch = item.channel;
  item.channel = undefined;
  item.linked = undefined;
  target.links.delete(item);
  if (ch !== undefined && !ch.removed && !ch.virtproc.closed) ch.virtproc.releaseChannel(ch);
}

/**
 * A bus brought the link up (the peer set DRIVER_OK): attaches its core and creates the
 * channel of every linked item, in link order (the RFC registers the pending rpmsg
 * devices then). A channel that cannot be created is reported as a `warning` of the
 * virtproc; the item stays linked.
 *
 * @public
 */
export function rpmsgVirtprocAttach(target: RpmsgVirtprocItemState, vp: RpmsgVirtproc): void {
  if (target.virtproc !== undefined && !target.virtproc.closed) {
    throw new RpmsgError('BUSY', `virtproc item ${target.device} already has a link up`);
  }
  target.virtproc = vp;
  for (const item of target.links) {
    try {
      createFor(item, vp);
    } catch (e) {
      vp.emit(
        'warning',
        e instanceof RpmsgError ? e : new RpmsgError('CHANNEL_EXISTS', `channel ${item.name} could not be created: ${(e as Error)?.message ?? String(e)}`, { cause: e }),
      );
    }
  }
}

/**
 * The link went down (reset, link-down): forgets its core and its channels, which the
 * core's close removes. The items stay linked, ready for the next attach.
 *
 * @public
 */
export function rpmsgVirtprocDetach(target: RpmsgVirtprocItemState): void {
  target.virtproc = undefined;
  for (const item of target.links) item.channel = undefined;
}
