import {
  VHOST_DEV_ANY_ID,
  VHOST_NOTIFY,
  VIRTIO_CONFIG_S,
  VhostError,
  type VhostDevice,
  type VhostDeviceId,
  type VhostDriver,
  type VhostEventInfo,
  type VhostVirtqueue,
} from '@x/vhost-core';
import type { RpmsgChannelInfo } from './api.js';
import { RpmsgBus, type RpmsgBusOptions } from './bus.js';
import { RpmsgError, isRpmsgError } from './errors.js';
import { rpmsgVirtprocAttach, rpmsgVirtprocDetach, type RpmsgVirtprocItemState } from './config.js';
import type { RpmsgConfigFs } from './configfs.js';
import { RPMSG_RX_QUEUE, RPMSG_TX_QUEUE, RpmsgVringhTransport } from './ring-transport.js';
import type { RpmsgVirtproc } from './virtproc.js';
import { RPMSG_HDR, VIRTIO_ID_RPMSG, VIRTIO_RPMSG_F } from './wire.js';

/** Options of {@link VhostRpmsgBus}. @public */
export interface VhostRpmsgBusOptions extends RpmsgBusOptions {
  /** Feature bits offered (VIRTIO_RPMSG_F.NS / .AS). Default both (the RFC's 0x3). */
  features?: readonly number[];
  /**
   * Refuse a driver that did not accept F_AS at FINALIZE_FEATURES, as the RFC's vhost
   * side does. Default false: a stock Linux virtio_rpmsg_bus (F_NS only) can connect.
   */
  requireAs?: boolean;
  /** The rpmsg configuration subtree: the bus adds `virtproc/<device>` and creates the linked channels at DRIVER_OK. */
  configFs?: RpmsgConfigFs;
  /** Channels every link creates and announces at DRIVER_OK (besides the configured ones). */
  channels?: readonly RpmsgChannelInfo[];
  /**
   * Each link's `RpmsgVringhTransport` `busyTurns`: event-loop turns the device keeps
   * reading vq1 with kicks off after draining it (vhost-net's busyloop). Helps a sleeping
   * doorbell; keep 0 (the default) with a polling one.
   */
  busyTurns?: number;
  /**
   * Each link's `RpmsgVringhTransport` `stableViews`: the transport's window onto the
   * driver's memory is never remapped while the link is up (e.g. `@x/transport-pci-epf`
   * with `cacheWindows`, a fixed NTB window), so views are kept per chain. Default false.
   */
  stableViews?: boolean;
}

interface Link {
  vqs: readonly VhostVirtqueue[];
  transport: RpmsgVringhTransport | undefined;
  virtproc: RpmsgVirtproc | undefined;
  item: RpmsgVirtprocItemState | undefined;
}

/**
 * The vhost (device-role) rpmsg bus, the RFC's `drivers/vhost/vhost_rpmsg_bus.c`
 * (patch 14) as an `@x/vhost-core` {@link @x/vhost-core#VhostDriver} matching
 * \{ANY, 7\}: it offers F_NS | F_AS, creates vq0 (its TX: the driver's RX buffers) and vq1
 * (its RX), and once the peer sets DRIVER_OK brings the link up as an
 * {@link RpmsgVirtproc} (a `virtproc` event) with endpoints at 53 and 54, then creates
 * and announces the channels of the configuration tree (`rpmsg/virtproc/<device>`
 * links) and of `options.channels`. A reset, FAILED or NEEDS_RESET takes the link down.
 *
 * Register it on a `VhostBus` with `bus.registerDriver(rpmsgBus)`.
 *
 * @public
 */
export class VhostRpmsgBus extends RpmsgBus implements VhostDriver {
  /** {@inheritDoc @x/vhost-core#VhostDriver.name} */
  readonly name = 'vhost_rpmsg';
  /** {@inheritDoc @x/vhost-core#VhostDriver.idTable} */
  readonly idTable: readonly VhostDeviceId[] = [{ vendor: VHOST_DEV_ANY_ID, device: VIRTIO_ID_RPMSG }];
  /** {@inheritDoc @x/vhost-core#VhostDriver.features} */
  readonly features: bigint;
  /** The configuration subtree, if any. */
  readonly configFs: RpmsgConfigFs | undefined;
  readonly #requireAs: boolean;
  readonly #channels: readonly RpmsgChannelInfo[];
  readonly #busyTurns: number;
  readonly #stableViews: boolean;
  readonly #links = new Map<VhostDevice, Link>();

  /** A bus to register on a `VhostBus`. */
  constructor(options: VhostRpmsgBusOptions = {}) {
    super(options);
    let features = 0n;
    for (const f of options.features ?? [VIRTIO_RPMSG_F.NS, VIRTIO_RPMSG_F.AS]) {
      if (f !== VIRTIO_RPMSG_F.NS && f !== VIRTIO_RPMSG_F.AS) throw new RangeError(`features: ${f} is not an rpmsg feature bit (0 NS, 1 AS)`);
      features |= 1n << BigInt(f);
    }
    this.features = features;
    this.#requireAs = options.requireAs ?? false;
    const busyTurns = options.busyTurns ?? 0;
    if (!Number.isInteger(busyTurns) || busyTurns < 0 || busyTurns > 1_000_000) throw new RangeError(`busyTurns must be an integer in 0..1000000, got ${busyTurns}`);
    this.#busyTurns = busyTurns;
    if (options.stableViews !== undefined && typeof options.stableViews !== 'boolean') throw new TypeError('stableViews must be a boolean');
    this.#stableViews = options.stableViews ?? false;
    this.configFs = options.configFs;
    this.#channels = [...(options.channels ?? [])];
    this.configFs?.follow(this);
  }

  /** The rpmsg core of a device whose link is up, if any. */
  virtprocOf(device: VhostDevice): RpmsgVirtproc | undefined {
    return this.#links.get(device)?.virtproc;
  }

  /**
   * The `probe` hook of `VhostDriver`.
   *
   * RFC `vhost_rpmsg_probe`: offer the features, create the two queues (size from the
   * device's configuration), add `virtproc/<device>` to the tree. Nothing touches a
   * ring until DRIVER_OK.
   */
  async probe(device: VhostDevice): Promise<void> {
    await device.setFeatures(this.features);
    const link: Link = { vqs: [], transport: undefined, virtproc: undefined, item: undefined };
    this.#links.set(device, link);
    try {
      link.vqs = await device.createVqs([
        { name: 'output', callback: () => link.transport?.kick(RPMSG_RX_QUEUE) },
        { name: 'input', callback: () => link.transport?.kick(RPMSG_TX_QUEUE) },
      ]);
      link.item = this.configFs?.addVirtproc(device.name, { bufferSize: device.config.bufferSize });
    } catch (e) {
      this.#links.delete(device);
      throw e;
    }
  }

  /** {@inheritDoc @x/vhost-core#VhostDriver.remove} */
  async remove(device: VhostDevice): Promise<void> {
    const link = this.#links.get(device);
    this.#links.delete(device);
    if (link !== undefined) this.#down(link);
    await device.delVqs();
  }

  /**
   * The `event` hook of `VhostDriver`.
   *
   * FINALIZE_FEATURES: refuses a driver without F_AS when `requireAs`. SET_STATUS with
   * DRIVER_OK: the link comes up (the RFC registers the pending rpmsg devices then).
   * RESET, or a status with FAILED / NEEDS_RESET: the link goes down.
   */
  event(device: VhostDevice, info: VhostEventInfo): void {
    const link = this.#links.get(device);
    if (link === undefined) return;
    if (info.event === VHOST_NOTIFY.FINALIZE_FEATURES) {
      if (this.#requireAs && (info.features & (1n << BigInt(VIRTIO_RPMSG_F.AS))) === 0n) {
        throw new VhostError('FEATURES_NOT_OFFERED', `${device.name}: the vhost rpmsg bus needs VIRTIO_RPMSG_F_AS (RFC patch 14)`);
      }
      return;
    }
    const S = VIRTIO_CONFIG_S;
    const up = info.event === VHOST_NOTIFY.SET_STATUS && (info.status & S.DRIVER_OK) !== 0 && (info.status & (S.FAILED | S.NEEDS_RESET)) === 0;
    if (up && link.virtproc === undefined) this.#up(device, link);
    else if (!up && link.virtproc !== undefined) this.#down(link);
  }

  #up(device: VhostDevice, link: Link): void {
    const [txq, rxq] = link.vqs as [VhostVirtqueue, VhostVirtqueue];
    const features = Number(device.features & 0xffffffn);
    const transport = new RpmsgVringhTransport({
      txQueue: txq,
      rxQueue: rxq,
      // Zero copy when the device's window onto the driver's memory gives views.
      view: (addr, len) => txq.vringh?.memory.view?.(addr, len),
      bufSize: Math.max(RPMSG_HDR.SIZE + 1, Math.min(device.config.bufferSize, RPMSG_HDR.SIZE + 0xffff)),
      busyTurns: this.#busyTurns,
      stableViews: this.#stableViews,
      features,
    });
    link.transport = transport;
    const vp = this.openVirtproc(transport, device.name, 'device');
    link.virtproc = vp;
    if (link.item !== undefined) rpmsgVirtprocAttach(link.item, vp);
    for (const info of this.#channels) {
      try {
        vp.createChannel(info, { announce: true });
      } catch (e) {
        vp.emit('warning', isRpmsgError(e) ? e : new RpmsgError('CHANNEL_EXISTS', `channel ${info.name} could not be created: ${(e as Error)?.message ?? String(e)}`, { cause: e }));
      }
    }
  }

  #down(link: Link): void {
    if (link.item !== undefined) rpmsgVirtprocDetach(link.item);
    const vp = link.virtproc;
    link.virtproc = undefined;
    link.transport = undefined;
    // A ring its transport took away for a lost link (VhostVirtqueue.lostBy): pending
    // sends fail with LINK_DOWN and that cause, not CLOSED.
    const lost = link.vqs.find((vq) => vq.lostBy !== undefined)?.lostBy;
    if (vp !== undefined) this.closeVirtproc(vp, lost === undefined ? undefined : { linkDown: lost });
  }
}
