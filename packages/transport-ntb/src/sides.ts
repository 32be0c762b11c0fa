import type { VhostBus, VhostConfigFs, VhostDevice, VhostDeviceConfig, VhostDeviceId } from '@x/vhost-core';
import type { VirtioBus } from '@x/virtio-core';
import { NtbError } from './errors.js';
import type { NtbDev, NtbTraceEvent } from './ntb-dev.js';
import { NtbPairPort, type NtbPairLines, type NtbPeerWatch } from './pair/port.js';
import type { NtbPairLink } from './pair/link.js';
import { openNtbEpfHost, type NtbEpfHostLines } from './bridge/host.js';
import type { NtbBridgeLink } from './bridge/link.js';
import { NtbVhost, type NtbVhostEvent } from './vhost.js';
import { NtbVirtio, type NtbVirtioEvent } from './virtio.js';
import type { NtbClock, NtbLineListenOptions } from './wire.js';

/** A link description of either backend: plain data with shared buffers, postable to workers. @public */
export type NtbLinkDescription = NtbPairLink | NtbBridgeLink;

/** One host's NTB hardware, whichever backend: the device a client attaches to, and how to let go of it. @public */
export interface NtbHostPort {
  /** The NTB device. */
  readonly dev: NtbDev;
  /** Releases the hardware (stops listening; the link goes down). */
  close(): void | Promise<void>;
}

/** How one host reaches its NTB hardware (both sides take these). @public */
export interface NtbHostOptions {
  /** The link: a direct pair ({@link createNtbPairLink}) or the bridge ({@link createNtbBridgeLink}). */
  readonly link: NtbLinkDescription;
  /**
   * The host's interrupt lines. Pair: `{ irq, peerIrq }`; bridge: `{ irq }`. Default: the
   * link's own words (`SharedNtbLine`); in an `@x/platform` topology pass `ctx.line(…)`.
   */
  readonly lines?: NtbPairLines | NtbEpfHostLines;
  /** How the host waits on its interrupt line. */
  readonly listen?: NtbLineListenOptions;
  /** The host's clock. Default `systemClock`; in a topology pass the system context. */
  readonly clock?: NtbClock;
  /** Reports a crashed peer host or bridge (`ctx.onPeerDown.bind(ctx)`); the link then goes down with `PEER_DOWN`. */
  readonly watchPeer?: NtbPeerWatch;
  /** Only these peer names count for {@link NtbHostOptions.watchPeer}. */
  readonly peerNames?: readonly string[];
  /** Bridge: how long the host driver waits for a command status, ms. Default 1000 (§2.11). */
  readonly commandTimeoutMs?: number;
  /** Bridge: how long to wait for the bridge to present its function, ms. Default 5000. */
  readonly probeTimeoutMs?: number;
  /** Receives what a client callback threw in the interrupt path. */
  readonly onError?: (error: unknown) => void;
  /** Receives the NTB device's trace (`NtbDevOptions.trace`). */
  readonly trace?: (event: NtbTraceEvent) => void;
}

/** Opens this host's NTB hardware on either backend: `host` 1 (the virtio side) or 2. @public */
export async function openNtbHost(options: NtbHostOptions, host: 1 | 2): Promise<NtbHostPort> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (host !== 1 && host !== 2) throw new RangeError(`host must be 1 or 2, got ${String(host)}`);
  const link = options.link;
  if (typeof link !== 'object' || link === null) throw new TypeError('options.link must be a link description');
  const common = {
    ...(options.listen === undefined ? {} : { listen: options.listen }),
    ...(options.watchPeer === undefined ? {} : { watchPeer: options.watchPeer }),
    ...(options.peerNames === undefined ? {} : { peerNames: options.peerNames }),
    ...(options.onError === undefined ? {} : { onError: options.onError }),
    ...(options.trace === undefined ? {} : { trace: options.trace }),
  };
  if (link.kind === 'ntb-pair') {
    return new NtbPairPort(link, host === 1 ? 0 : 1, { ...common, ...(options.lines === undefined ? {} : { lines: options.lines as NtbPairLines }) });
  }
  if (link.kind === 'ntb-bridge') {
    return openNtbEpfHost(link, host, {
      ...common,
      ...(options.lines === undefined ? {} : { lines: options.lines as NtbEpfHostLines }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
      ...(options.probeTimeoutMs === undefined ? {} : { probeTimeoutMs: options.probeTimeoutMs }),
    });
  }
  throw new NtbError('BAD_LINK', `unknown link kind ${String((link as { kind?: unknown }).kind)}`);
}

/** Options of {@link startNtbVirtioSide}. @public */
export interface NtbVirtioSideOptions extends NtbHostOptions {
  /** The bus the virtio device is registered on at each handshake (a matching driver, e.g. rpmsg, probes). */
  readonly virtioBus: VirtioBus;
  /** Name of the virtio device. */
  readonly name?: string;
  /** Command timeout of the scratchpad protocol, ms. Default 1000. */
  readonly virtioCommandTimeoutMs?: number;
  /** Handshake retry period, ms. Default 10. */
  readonly linkRetryMs?: number;
  /** Receives the client's events. */
  readonly onEvent?: (event: NtbVirtioEvent) => void;
}

/** HOST1, started: its hardware, the NTB virtio client and how to stop it. @public */
export interface NtbVirtioSide {
  /** The host's NTB hardware. */
  readonly port: NtbHostPort;
  /** The NTB device. */
  readonly dev: NtbDev;
  /** The NTB virtio client. */
  readonly virtio: NtbVirtio;
  /** Unregisters the device, releases the window, takes the link down, closes the hardware. */
  close(): Promise<void>;
}

/**
 * Builds HOST1 (the RFC's `ntb_virtio` host) over a link description, in whichever
 * thread or worker it runs: opens the NTB hardware, starts an {@link NtbVirtio} that
 * registers a virtio device on `virtioBus` at each link-up handshake and unregisters it
 * at each link-down. Everything it shares with HOST2 is the link's buffers.
 *
 * @public
 */
export async function startNtbVirtioSide(options: NtbVirtioSideOptions): Promise<NtbVirtioSide> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (typeof options.virtioBus !== 'object' || options.virtioBus === null) throw new TypeError('options.virtioBus must be a VirtioBus');
  const port = await openNtbHost(options, 1);
  const virtio = new NtbVirtio({
    dev: port.dev,
    bus: options.virtioBus,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.virtioCommandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.virtioCommandTimeoutMs }),
    ...(options.linkRetryMs === undefined ? {} : { linkRetryMs: options.linkRetryMs }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
  try {
    await virtio.start();
  } catch (e) {
    await port.close();
    throw e;
  }
  let closed: Promise<void> | undefined;
  return {
    port,
    dev: port.dev,
    virtio,
    close() {
      closed ??= (async () => {
        await virtio.close();
        await port.close();
      })();
      return closed;
    },
  };
}

/** Options of {@link startNtbVhostSide}. @public */
export interface NtbVhostSideOptions extends NtbHostOptions {
  /** The configuration tree's vhost subtree: `vhost-transport/<name>` is added there; linking it registers the device. */
  readonly configFs?: VhostConfigFs;
  /** With `configFs`: link the transport item to this client item at once (e.g. `/vhost/vhost-client/rpmsg/ffffffff:00000007`). */
  readonly clientItem?: string;
  /** Without `configFs`: register the device on this bus by code, with {@link NtbVhostSideOptions.id}. */
  readonly vhostBus?: VhostBus;
  /** The device's ids when registered by code. Default `{ vendor: ANY, device: 7 }` (rpmsg). */
  readonly id?: VhostDeviceId;
  /** The device's attributes when registered by code. */
  readonly deviceConfig?: Partial<VhostDeviceConfig>;
  /** Name of the transport item. Default `ntb-host2`. */
  readonly name?: string;
  /** Bytes of device configuration space. */
  readonly configSize?: number;
  /** Command poll period, ms. Default 1. */
  readonly commandPollMs?: number;
  /** Handshake retry period, ms. Default 10. */
  readonly linkRetryMs?: number;
  /** Receives the client's events. */
  readonly onEvent?: (event: NtbVhostEvent) => void;
}

/** HOST2, started: its hardware, the NTB vhost client, its device and how to stop it. @public */
export interface NtbVhostSide {
  /** The host's NTB hardware. */
  readonly port: NtbHostPort;
  /** The NTB device. */
  readonly dev: NtbDev;
  /** The NTB vhost client. */
  readonly vhost: NtbVhost;
  /** The vhost device. */
  readonly device: VhostDevice;
  /** Unregisters the device, removes the item, takes the link down, closes the hardware. */
  close(): Promise<void>;
}

/**
 * Builds HOST2 (the RFC's `ntb_vhost` host) over a link description, in whichever thread
 * or worker it runs: opens the NTB hardware, starts an {@link NtbVhost} (which adds
 * `vhost-transport/<name>` to `configFs`), and registers its device — by linking the
 * transport item to `clientItem`, or on `vhostBus` by code.
 *
 * @public
 */
export async function startNtbVhostSide(options: NtbVhostSideOptions): Promise<NtbVhostSide> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (options.configFs === undefined && options.vhostBus === undefined) throw new TypeError('options.configFs or options.vhostBus is required');
  if (options.clientItem !== undefined && options.configFs === undefined) throw new TypeError('options.clientItem needs options.configFs');
  const port = await openNtbHost(options, 2);
  const name = options.name ?? 'ntb-host2';
  const vhost = new NtbVhost({
    dev: port.dev,
    name,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.configFs === undefined ? {} : { configFs: options.configFs }),
    ...(options.configFs === undefined ? { id: options.id ?? { vendor: 0xffff_ffff, device: 7 } } : {}),
    ...(options.deviceConfig === undefined ? {} : { deviceConfig: options.deviceConfig }),
    ...(options.configSize === undefined ? {} : { configSize: options.configSize }),
    ...(options.commandPollMs === undefined ? {} : { commandPollMs: options.commandPollMs }),
    ...(options.linkRetryMs === undefined ? {} : { linkRetryMs: options.linkRetryMs }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
  try {
    await vhost.start();
    if (options.configFs !== undefined && options.clientItem !== undefined) {
      await options.configFs.tree.link(vhost.item!.path, options.clientItem);
    } else if (options.configFs === undefined) {
      await options.vhostBus!.registerDevice(vhost.device);
    }
  } catch (e) {
    await vhost.close();
    await port.close();
    throw e;
  }
  let closed: Promise<void> | undefined;
  return {
    port,
    dev: port.dev,
    vhost,
    device: vhost.device,
    close() {
      closed ??= (async () => {
        await vhost.close();
        await port.close();
      })();
      return closed;
    },
  };
}
