import { VhostBus, type VhostDeviceId, type VhostDriver } from '@x/vhost-core';
import type { VirtioBus } from '@x/virtio-core';
import {
  LocalNtbLine,
  NtbEpfHost,
  NtbPairPort,
  NtbVhost,
  NtbVirtio,
  createNtbBridgeLink,
  createNtbPairLink,
  startNtbEpfFunction,
  type NtbBridgeLink,
  type NtbBridgeLinkOptions,
  type NtbClock,
  type NtbEpfFunction,
  type NtbEpfFunctionEvent,
  type NtbHostPort,
  type NtbPairLink,
  type NtbPairLinkOptions,
  type NtbTraceEvent,
  type NtbVhostEvent,
  type NtbVirtioEvent,
} from '@x/transport-ntb';

/** Options shared by {@link createNtbPairHarness} and {@link createNtbBridgeHarness}. @public */
export interface NtbHarnessOptions {
  /** Which host starts first. Default `host2` (the RFC's vhost host probes, then the virtio host). */
  readonly first?: 'host1' | 'host2';
  /** HOST1 registers its virtio device here at each handshake. Default: none (use `virtio.ops`). */
  readonly virtioBus?: VirtioBus;
  /** HOST2's vhost bus. Default: a new one. */
  readonly vhostBus?: VhostBus;
  /** A driver registered on HOST2's vhost bus before the device. */
  readonly vhostDriver?: VhostDriver;
  /** HOST2's device ids. Default `{ vendor: ANY, device: 7 }`. */
  readonly vhostId?: VhostDeviceId;
  /** Register HOST2's device on its bus at start. Default true; `false` also lets HOST2 handshake without it (a rig that registers it later). */
  readonly registerVhost?: boolean;
  /** Every system's clock. Default `systemClock`. */
  readonly clock?: NtbClock;
  /** HOST1's scratchpad-protocol command timeout, ms. */
  readonly commandTimeoutMs?: number;
  /** Events of HOST1's client. */
  readonly onVirtioEvent?: (e: NtbVirtioEvent) => void;
  /** Events of HOST2's client. */
  readonly onVhostEvent?: (e: NtbVhostEvent) => void;
  /** Each host's NTB device trace. */
  readonly onTrace?: (host: 1 | 2, e: NtbTraceEvent) => void;
}

/** Options of {@link createNtbPairHarness}. @public */
export interface NtbPairHarnessOptions extends NtbHarnessOptions {
  /** Sizes of the pair. */
  readonly link?: NtbPairLinkOptions;
}

/** Options of {@link createNtbBridgeHarness}. @public */
export interface NtbBridgeHarnessOptions extends NtbHarnessOptions {
  /** Sizes of the bridge. */
  readonly link?: NtbBridgeLinkOptions;
  /** The bridge function's command poll period, ms. Default 1. */
  readonly pollPeriodMs?: number;
  /** The hosts' NTB driver command timeout, ms. Default 1000. */
  readonly hwCommandTimeoutMs?: number;
  /** Events of the bridge function. */
  readonly onBridgeEvent?: (e: NtbEpfFunctionEvent) => void;
}

/** HOST1 and HOST2 (and, for the bridge, the bridge function) in one thread, meeting only in the link's buffers and lines. @public */
export interface NtbHarness {
  /** The link (its shared buffers). */
  readonly link: NtbPairLink | NtbBridgeLink;
  /** HOST1's interrupt line and HOST2's (in-thread lines, so `settle` can see when they are quiet). */
  readonly lines: readonly [LocalNtbLine, LocalNtbLine];
  /** HOST1's NTB hardware. */
  readonly port1: NtbHostPort;
  /** HOST2's NTB hardware. */
  readonly port2: NtbHostPort;
  /** The bridge function (bridge harness only). */
  readonly bridge: NtbEpfFunction | undefined;
  /** HOST1's client. */
  readonly virtio: NtbVirtio;
  /** HOST2's client. */
  readonly vhost: NtbVhost;
  /** HOST2's vhost bus. */
  readonly vhostBus: VhostBus;
  /** Starts both clients in the configured order. */
  start(): Promise<void>;
  /** Resolves once both sides completed a handshake (and HOST1 registered its device, with a bus). */
  ready(timeoutMs?: number): Promise<void>;
  /** Waits until no interrupt is pending or running on either host. */
  settle(): Promise<void>;
  /** Closes both clients, both hosts' hardware and the bridge. */
  dispose(): Promise<void>;
}

function build(
  link: NtbPairLink | NtbBridgeLink,
  lines: readonly [LocalNtbLine, LocalNtbLine],
  port1: NtbHostPort,
  port2: NtbHostPort,
  bridge: NtbEpfFunction | undefined,
  options: NtbHarnessOptions,
): NtbHarness {
  const clock = options.clock;
  const virtio = new NtbVirtio({
    dev: port1.dev,
    ...(options.virtioBus === undefined ? {} : { bus: options.virtioBus }),
    ...(clock === undefined ? {} : { clock }),
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
    ...(options.onVirtioEvent === undefined ? {} : { onEvent: options.onVirtioEvent }),
  });
  const vhostBus = options.vhostBus ?? new VhostBus();
  const vhost = new NtbVhost({
    dev: port2.dev,
    name: 'ntb-host2',
    id: options.vhostId ?? { vendor: 0xffff_ffff, device: 7 },
    requireRegistration: options.registerVhost !== false,
    ...(clock === undefined ? {} : { clock }),
    ...(options.onVhostEvent === undefined ? {} : { onEvent: options.onVhostEvent }),
  });
  const [l1, l2] = lines;
  const settle = async (): Promise<void> => {
    let quiet = 0;
    for (let i = 0; i < 10_000 && quiet < 3; i++) {
      await new Promise<void>((r) => setImmediate(r));
      const dbs = port1.dev.dbRead() !== 0 || port2.dev.dbRead() !== 0;
      quiet = l1.idle && l2.idle && !dbs ? quiet + 1 : 0;
    }
  };
  return {
    link,
    lines,
    port1,
    port2,
    bridge,
    virtio,
    vhost,
    vhostBus,
    async start() {
      const startVhost = async (): Promise<void> => {
        if (options.vhostDriver !== undefined) await vhostBus.registerDriver(options.vhostDriver);
        await vhost.start();
        if (options.registerVhost !== false) await vhostBus.registerDevice(vhost.device);
      };
      if ((options.first ?? 'host2') === 'host2') {
        await startVhost();
        await virtio.start();
      } else {
        await virtio.start();
        await startVhost();
      }
    },
    async ready(timeoutMs = 5000) {
      await Promise.all([virtio.ready({ timeoutMs }), vhost.ready({ timeoutMs })]);
    },
    settle,
    async dispose() {
      await virtio.close();
      await vhost.close();
      if (vhost.device.bus !== undefined) await vhost.device.bus.unregisterDevice(vhost.device);
      await port1.close();
      await port2.close();
      bridge?.close();
    },
  };
}

/**
 * Builds a direct NTB pair with HOST1 (an `NtbVirtio`) and HOST2 (an `NtbVhost`) in one thread, on in-thread interrupt lines. For
 * tests and examples; each host touches only the pair's buffers and lines.
 *
 * @public
 */
export function createNtbPairHarness(options: NtbPairHarnessOptions = {}): NtbHarness {
  const link = createNtbPairLink(options.link);
  const l1 = new LocalNtbLine('HOST1 irq');
  const l2 = new LocalNtbLine('HOST2 irq');
  const t = options.onTrace;
  const port1 = new NtbPairPort(link, 0, { lines: { irq: l1, peerIrq: l2 }, ...(t === undefined ? {} : { trace: (e) => t(1, e) }) });
  const port2 = new NtbPairPort(link, 1, { lines: { irq: l2, peerIrq: l1 }, ...(t === undefined ? {} : { trace: (e) => t(2, e) }) });
  return build(link, [l1, l2], port1, port2, undefined, options);
}

/**
 * Builds the three-system bridge in one thread: the NTB endpoint function on its two
 * controllers, HOST1's and HOST2's `ntb_hw_epf`-like drivers, and the two NTB clients.
 *
 * @public
 */
export async function createNtbBridgeHarness(options: NtbBridgeHarnessOptions = {}): Promise<NtbHarness> {
  const link = createNtbBridgeLink(options.link);
  const l1 = new LocalNtbLine('HOST1 irq');
  const l2 = new LocalNtbLine('HOST2 irq');
  const clock = options.clock;
  const bridge = startNtbEpfFunction(link, {
    lines: { host1Irq: l1, host2Irq: l2 },
    pollPeriodMs: options.pollPeriodMs ?? 1,
    ...(clock === undefined ? {} : { clock }),
    ...(options.onBridgeEvent === undefined ? {} : { onEvent: options.onBridgeEvent }),
  });
  const hw = {
    ...(clock === undefined ? {} : { clock }),
    ...(options.hwCommandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.hwCommandTimeoutMs }),
  };
  const t = options.onTrace;
  const [port1, port2] = await Promise.all([
    NtbEpfHost.probe(link, 1, { ...hw, lines: { irq: l1, peerIrq: l2 }, ...(t === undefined ? {} : { trace: (e) => t(1, e) }) }),
    NtbEpfHost.probe(link, 2, { ...hw, lines: { irq: l2, peerIrq: l1 }, ...(t === undefined ? {} : { trace: (e) => t(2, e) }) }),
  ]);
  return build(link, [l1, l2], port1, port2, bridge, options);
}
