/// <reference types="node" preserve="true" />
import { EventEmitter } from 'node:events';
import type {
  RpmsgChannel,
  RpmsgChannelInfo,
  RpmsgDriver,
  RpmsgEndpoint,
  RpmsgEndpointOptions,
  RpmsgVirtprocEvents,
  RpmsgVirtprocOptions,
  RpmsgCloseOptions,
  RpmsgVirtprocStats,
} from './api.js';
import { RpmsgError } from './errors.js';
import { ChannelImpl } from './internal/channel.js';
import { Core } from './internal/core.js';
import type { RpmsgTransport } from './transport.js';
import { RPMSG_ADDR_ANY } from './wire.js';

/**
 * The rpmsg core of one link to a remote processor (Linux `struct virtproc_info` with
 * `rpmsg_core.c` and `rpmsg_ns.c`; OpenAMP `struct rpmsg_device`): endpoints and their
 * addresses (allocated from 1024 up), channels matched to drivers by name, the name
 * service at 53 and the RFC's address service at 54, sends that wait for a TX buffer,
 * and dispatch of received messages. It works over any {@link RpmsgTransport}; the
 * buses (`VirtioRpmsgBus`, `VhostRpmsgBus`) create one per link.
 *
 * Received messages are hostile input: a malformed one is counted in
 * {@link RpmsgVirtproc.stats}, reported as a `dropped` event carrying an
 * {@link RpmsgError}, and its buffer goes back to the ring at once.
 *
 * @public
 */
export class RpmsgVirtproc extends EventEmitter<RpmsgVirtprocEvents> {
  readonly #core: Core;

  /** Attaches to `transport` (negotiated already) and creates the NS / AS endpoints its features call for. */
  constructor(transport: RpmsgTransport, options: RpmsgVirtprocOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.#core = new Core(this, transport, options);
  }

  /** The name given in the options. */
  get name(): string {
    return this.#core.name;
  }

  /** `driver` (virtio side) or `device` (vhost side). */
  get role(): 'driver' | 'device' {
    return this.#core.role;
  }

  /** Negotiated rpmsg feature bits (mask of {@link VIRTIO_RPMSG_F} bits). */
  get features(): number {
    return this.#core.features;
  }

  /** True when feature bit `bit` ({@link VIRTIO_RPMSG_F}) was negotiated. */
  hasFeature(bit: number): boolean {
    return this.#core.hasFeature(bit);
  }

  /** Largest payload of one message: the TX buffer size − 16. */
  get maxPayload(): number {
    return this.#core.maxPayload;
  }

  /** Counters. */
  get stats(): RpmsgVirtprocStats {
    return this.#core.stats;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /** The channels, in creation order (a copy). */
  get channels(): readonly RpmsgChannel[] {
    return [...this.#core.channels];
  }

  /** The drivers registered (a copy). */
  get drivers(): readonly RpmsgDriver[] {
    return [...this.#core.drivers];
  }

  /**
   * Registers a driver (Linux `register_rpmsg_driver`) and probes every unbound channel
   * whose name is in its id table.
   */
  registerDriver(driver: RpmsgDriver): void {
    this.#core.registerDriver(driver);
  }

  /** Unbinds a driver from its channels (announcing their removal) and forgets it. */
  unregisterDriver(driver: RpmsgDriver): void {
    this.#core.unregisterDriver(driver);
  }

  /**
   * Creates a local channel (Linux `rpmsg_create_channel`, rpmsg_ctrl
   * `RPMSG_CREATE_DEV_IOCTL`) and probes a matching driver. The channel is announced
   * to the peer after the probe when `announce` is true; the default, as in Linux, is
   * to announce channels with a fixed source address. Throws CHANNEL_EXISTS for a
   * duplicate (RPMSG_ADDR_ANY matches any address).
   */
  createChannel(info: RpmsgChannelInfo, options: { announce?: boolean } = {}): RpmsgChannel {
    const announce = options.announce ?? (info?.src !== undefined && info.src !== RPMSG_ADDR_ANY);
    if (typeof announce !== 'boolean') throw new TypeError('announce must be a boolean');
    return this.#core.createChannel(info, 'local', announce);
  }

  /**
   * Removes a channel (Linux `rpmsg_release_channel`): announces the removal, unbinds
   * the driver, destroys the default endpoint. Takes the channel or its info (ANY =
   * wildcard); throws NOT_FOUND.
   */
  releaseChannel(channel: RpmsgChannel | RpmsgChannelInfo): void {
    const ch = channel instanceof ChannelImpl ? channel : this.#core.findChannel(channel);
    if (ch === undefined || ch.removed || !this.#core.channels.includes(ch)) {
      throw new RpmsgError('NOT_FOUND', `no channel ${String(channel?.name)}`);
    }
    this.#core.removeChannel(ch, true);
  }

  /** The first channel matching `info` (Linux `rpmsg_find_device`; ANY = wildcard). */
  findChannel(info: RpmsgChannelInfo): RpmsgChannel | undefined {
    return this.#core.findChannel(info);
  }

  /**
   * Creates an endpoint (Linux `rpmsg_create_ept`; with a name / src / dst and no
   * callback, rpmsg_ctrl's `RPMSG_CREATE_EPT_IOCTL`, read through the async iterator or
   * `createStream()` like /dev/rpmsgN). Throws ADDRESS_IN_USE for a taken `src`.
   */
  createEndpoint(options: RpmsgEndpointOptions = {}): RpmsgEndpoint {
    return this.#core.createEndpoint(options, undefined);
  }

  /** The endpoint at `addr`, if any. */
  endpoint(addr: number): RpmsgEndpoint | undefined {
    return this.#core.endpoints.get(addr);
  }

  /** Every endpoint (a copy), the NS and AS endpoints included. */
  get endpoints(): readonly RpmsgEndpoint[] {
    return [...this.#core.endpoints.values()];
  }

  /**
   * Tears the link's rpmsg state down without sending anything (the link is going
   * away): removes channels (drivers' `remove`), destroys endpoints, fails waiting
   * sends with CLOSED — or with LINK_DOWN when `options.linkDown` says the link was
   * lost, which later calls on this virtproc and its endpoints also get — and detaches
   * from the transport.
   */
  close(options?: RpmsgCloseOptions): void {
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('options must be an object');
    this.#core.close(options?.linkDown === undefined || options.linkDown === false ? undefined : { cause: options.linkDown === true ? undefined : options.linkDown });
  }
}
