/// <reference types="node" preserve="true" />
import { EventEmitter } from 'node:events';
import type { RpmsgCloseOptions, RpmsgDriver, RpmsgVirtprocOptions } from './api.js';
import { RpmsgError } from './errors.js';
import type { RpmsgTransport } from './transport.js';
import { RpmsgVirtproc } from './virtproc.js';

/** Events of an {@link RpmsgBus}. @public */
export interface RpmsgBusEvents {
  /** A link came up: its rpmsg core exists and the bus's drivers are registered on it. */
  virtproc: [virtproc: RpmsgVirtproc];
  /** A link went down: its core was closed. */
  virtprocRemoved: [virtproc: RpmsgVirtproc];
  /** An rpmsg driver was registered. */
  driver: [driver: RpmsgDriver];
  /** An rpmsg driver was unregistered. */
  driverRemoved: [driver: RpmsgDriver];
}

/** Options every rpmsg bus takes. @public */
export interface RpmsgBusOptions {
  /** Options of each virtproc the bus creates (its name and role are set by the bus). */
  virtproc?: Omit<RpmsgVirtprocOptions, 'name' | 'role'>;
}

/**
 * The rpmsg bus of one system (Linux `rpmsg_bus`): rpmsg drivers registered once and
 * bound, by channel name, on every link the bus brings up. `VirtioRpmsgBus` (driver
 * role) and `VhostRpmsgBus` (device role) extend it; each link is an
 * {@link RpmsgVirtproc}.
 *
 * @public
 */
export class RpmsgBus extends EventEmitter<RpmsgBusEvents> {
  readonly #drivers: RpmsgDriver[] = [];
  readonly #virtprocs: RpmsgVirtproc[] = [];
  readonly #options: Omit<RpmsgVirtprocOptions, 'name' | 'role'>;

  /** A bus with no link yet. */
  constructor(options: RpmsgBusOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.#options = { ...options.virtproc };
  }

  /** The rpmsg drivers registered (a copy). */
  get drivers(): readonly RpmsgDriver[] {
    return [...this.#drivers];
  }

  /** The links that are up (a copy). */
  get virtprocs(): readonly RpmsgVirtproc[] {
    return [...this.#virtprocs];
  }

  /**
   * Registers an rpmsg driver (Linux `register_rpmsg_driver`) on every link, now and
   * later. Throws BUSY if it is registered already.
   */
  registerDriver(driver: RpmsgDriver): void {
    if (this.#drivers.includes(driver)) throw new RpmsgError('BUSY', `driver ${String(driver?.name)} is already registered`);
    for (const vp of this.#virtprocs) vp.registerDriver(driver);
    this.#drivers.push(driver);
    this.emit('driver', driver);
  }

  /** Unregisters an rpmsg driver from every link (Linux `unregister_rpmsg_driver`). */
  unregisterDriver(driver: RpmsgDriver): void {
    const i = this.#drivers.indexOf(driver);
    if (i < 0) throw new RpmsgError('NOT_FOUND', `driver ${String(driver?.name)} is not registered`);
    this.#drivers.splice(i, 1);
    for (const vp of this.#virtprocs) if (vp.drivers.includes(driver)) vp.unregisterDriver(driver);
    this.emit('driverRemoved', driver);
  }

  /**
   * For bus implementations: creates the rpmsg core of a link that came up, registers
   * the drivers on it and announces it with a `virtproc` event.
   */
  protected openVirtproc(transport: RpmsgTransport, name: string, role: 'driver' | 'device'): RpmsgVirtproc {
    const vp = new RpmsgVirtproc(transport, { ...this.#options, name, role });
    this.#virtprocs.push(vp);
    for (const d of this.#drivers) vp.registerDriver(d);
    this.emit('virtproc', vp);
    return vp;
  }

  /**
   * For bus implementations: closes a link's core and announces it with
   * `virtprocRemoved`. Give `options.linkDown` when the link was lost, so pending
   * sends fail with `LINK_DOWN`.
   */
  protected closeVirtproc(vp: RpmsgVirtproc, options?: RpmsgCloseOptions): void {
    const i = this.#virtprocs.indexOf(vp);
    if (i < 0) return;
    this.#virtprocs.splice(i, 1);
    vp.close(options);
    this.emit('virtprocRemoved', vp);
  }
}
