// The systems of a root complex and an endpoint joined by one PCIe link, for
// `@x/platform` topologies: each builds its side over the link's regions and wires, the
// endpoint runs the echo vhost driver, the root complex the echo client, and the root
// complex reports bring-up, a stream and a ping-pong to the owner.
import type { Line, SystemContext, TopologyConfig, TopologyMode } from '@x/platform';
import { VhostBus } from '@x/vhost-core';
import { VirtioBus } from '@x/virtio-core';
import {
  isPciEpfError,
  pciEpfLinkSizes,
  resolvePciEpfLinkConfig,
  startPciEpfEndpoint,
  startPciEpfHost,
  type PciEpfLinkConfig,
  type PciEpfLinkOptions,
  type PciEpfMode,
  type PciLine,
  type PciLineListenOptions,
} from '@x/transport-pci-epf';
import { VirtioEchoClient, type EchoClientCounts } from './echo-client.js';
import { VhostEchoDriver } from './echo-vhost-driver.js';

/** Region names of a PCIe link in a topology. @public */
export const PCI_EPF_REGIONS = {
  /** RC memory. */
  rcMemory: 'pci-rc-memory',
  /** EP memory (BAR backings). */
  epMemory: 'pci-ep-memory',
  /** The link hardware's state. */
  fabric: 'pci-fabric',
} as const;

/** Line names of a PCIe link in a topology. @public */
export const PCI_EPF_LINES = {
  /** EP → RC. */
  toRc: 'pci-to-rc',
  /** RC → EP. */
  toEp: 'pci-to-ep',
} as const;

/** The `config` of {@link pciEpfEchoSystem}. @public */
export interface PciEpfEchoSystemConfig {
  /** Which side this system is. */
  readonly role: 'ep' | 'rc';
  /** The protocol. */
  readonly mode: PciEpfMode;
  /** The link description (both systems get the same). */
  readonly link: PciEpfLinkConfig;
  /** `doorbell` or `poll`. */
  readonly notify: 'doorbell' | 'poll';
  /** Poll period, ms. */
  readonly pollPeriodMs: number;
  /** RC: messages to stream. */
  readonly messages: number;
  /** RC: bytes per message (≥ 8). */
  readonly size: number;
  /** RC: ping-pong round trips after the stream. */
  readonly pingPongs: number;
  /** How each side waits on its wire. */
  readonly listen: PciLineListenOptions;
  /** Every wait's bound, ms. */
  readonly timeoutMs: number;
  /** RC: after bring-up, report `ready`, wait for the endpoint to go down, then try a reset and report the error. */
  readonly waitForEpDown: boolean;
  /** EP: keep per-access windows mapped. */
  readonly cacheWindows: boolean;
}

/** What the root-complex system reports. @public */
export type PciEpfEchoReport =
  | { readonly kind: 'bring-up'; readonly steps: readonly string[] }
  | { readonly kind: 'stream'; readonly messages: number; readonly ms: number; readonly counts: EchoClientCounts }
  | { readonly kind: 'ping-pong'; readonly rounds: number; readonly usPerRoundTrip: number }
  | { readonly kind: 'ready' }
  | { readonly kind: 'ep-down'; readonly code: string | undefined; readonly causeCode: string | undefined; readonly message: string };

/** Where a system sees the fabric region (out of the way of both memories). */
const FABRIC_BASE = 0x7_f000_0000;

/** URL of this module, for a `SystemSpec.entry`. @public */
export const PCI_EPF_ECHO_SYSTEM: URL = new URL(`./systems${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

function wire(l: Line, listen: PciLineListenOptions): PciLine {
  return {
    ring: () => l.ring(),
    listen: (h, o) => l.listen(h, { ...listen, ...o }),
  };
}

/**
 * One side of a PCIe link in a topology (`config.role`): the endpoint builds its
 * controller, function and echo vhost driver and serves until stopped; the root complex
 * waits for the link, probes, reports bring-up, streams `messages` echoes and
 * `pingPongs` round trips, reports each, and exits.
 *
 * @public
 */
export async function pciEpfEchoSystem(ctx: SystemContext<PciEpfEchoSystemConfig>): Promise<void> {
  const c = ctx.config;
  const buffers = {
    rcMemory: ctx.region(PCI_EPF_REGIONS.rcMemory).buffer as SharedArrayBuffer,
    epMemory: ctx.region(PCI_EPF_REGIONS.epMemory).buffer as SharedArrayBuffer,
    fabric: ctx.region(PCI_EPF_REGIONS.fabric).buffer as SharedArrayBuffer,
  };
  const link = { config: c.link, buffers };
  const lines = { toRc: wire(ctx.line(PCI_EPF_LINES.toRc), c.listen), toEp: wire(ctx.line(PCI_EPF_LINES.toEp), c.listen) };
  if (c.role === 'ep') {
    const vhostBus = new VhostBus();
    await vhostBus.registerDriver(new VhostEchoDriver());
    const ep = await startPciEpfEndpoint({
      link,
      lines,
      clock: ctx,
      mode: c.mode,
      vhostBus,
      notify: c.notify,
      pollPeriodMs: c.pollPeriodMs,
      cacheWindows: c.cacheWindows,
    });
    try {
      await ctx.untilStopped();
    } finally {
      await ep.close();
    }
    return;
  }
  const virtioBus = new VirtioBus({ opTimeoutMs: c.timeoutMs });
  const client = new VirtioEchoClient();
  const host = await startPciEpfHost({ link, lines, clock: ctx, virtioBus, linkTimeoutMs: c.timeoutMs });
  const off = ctx.onPeerDown(() => host.rc.markLinkDown('the endpoint system went down'));
  try {
    await virtioBus.registerDriver(client);
    if (host.device.driver !== client) throw host.device.lastError ?? new Error('the echo client did not bind');
    const info = host.rc.info!;
    const t = host.transport;
    ctx.report({
      kind: 'bring-up',
      steps: [
        'link up',
        `function ${info.vendorId.toString(16)}:${info.deviceId.toString(16)} class ${info.classCode.toString(16)}, ${info.bars.length} BAR(s)`,
        host.mode === 'rfc' ? `register block found in BAR ${'barno' in t ? t.barno : '?'}` : 'virtio-pci capabilities found',
        `interrupts: ${t.irqType}`,
        `features 0x${host.device.features.toString(16)}`,
        `queues activated: ${t.vqs.map((q) => `${q.name}(${q.num})`).join(', ')}`,
        `status 0x${host.device.status.toString(16)} (DRIVER_OK)`,
      ],
    } satisfies PciEpfEchoReport);
    if (c.waitForEpDown) {
      ctx.report({ kind: 'ready' } satisfies PciEpfEchoReport);
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (!host.rc.linkUp) resolve();
          else ctx.setTimer(5, check);
        };
        check();
      });
      let report: PciEpfEchoReport;
      try {
        await host.device.reset();
        report = { kind: 'ep-down', code: undefined, causeCode: undefined, message: 'reset succeeded' };
      } catch (e) {
        const err = e as { code?: string; cause?: unknown; message?: string };
        const cause = err.cause as { code?: string } | undefined;
        report = { kind: 'ep-down', code: err.code, causeCode: isPciEpfError(cause) ? cause.code : cause?.code, message: String(err.message) };
      }
      ctx.report(report);
      return;
    }
    if (c.messages > 0) {
      const ms = await client.run(c.messages, c.size, c.timeoutMs);
      ctx.report({ kind: 'stream', messages: c.messages, ms, counts: client.counts } satisfies PciEpfEchoReport);
    }
    if (c.pingPongs > 0) {
      const us = await client.pingPong(c.pingPongs, c.size, c.timeoutMs);
      ctx.report({ kind: 'ping-pong', rounds: c.pingPongs, usPerRoundTrip: us } satisfies PciEpfEchoReport);
    }
  } finally {
    off();
    if (!c.waitForEpDown) await host.close();
    else host.rc.close();
  }
}

/** Options of {@link pciEpfEchoTopology}. @public */
export interface PciEpfEchoTopologyOptions {
  /** The protocol. Default `rfc`. */
  readonly mode?: PciEpfMode;
  /** `doorbell` or `poll`. Default `doorbell`. */
  readonly notify?: 'doorbell' | 'poll';
  /** Poll period, ms. Default 1. */
  readonly pollPeriodMs?: number;
  /** Messages to stream. Default 1000. */
  readonly messages?: number;
  /** Bytes per message. Default 64. */
  readonly size?: number;
  /** Ping-pong round trips. Default 0. */
  readonly pingPongs?: number;
  /** More link options. */
  readonly link?: PciEpfLinkOptions;
  /** How each side waits on its wire. Default `{ mode: 'adaptive', spinUs: 50 }`. */
  readonly listen?: PciLineListenOptions;
  /** Every wait's bound, ms. Default 20000. */
  readonly timeoutMs?: number;
  /** See {@link PciEpfEchoSystemConfig.waitForEpDown}. Default false. */
  readonly waitForEpDown?: boolean;
  /** Keep per-access windows mapped. Default false. */
  readonly cacheWindows?: boolean;
  /** Where the systems run. Default `threads`. */
  readonly topology?: TopologyMode;
}

/**
 * The `@x/platform` topology of one link: regions for RC memory, EP memory and the
 * fabric, two wires, an `ep` and an `rc` system of {@link pciEpfEchoSystem}.
 *
 * @public
 */
export function pciEpfEchoTopology(options: PciEpfEchoTopologyOptions = {}): TopologyConfig {
  const notify = options.notify ?? 'doorbell';
  const link = resolvePciEpfLinkConfig({ ...options.link, epc: { ...options.link?.epc, doorbell: notify === 'doorbell' } });
  const sizes = pciEpfLinkSizes(link);
  const regions = [
    { name: PCI_EPF_REGIONS.rcMemory, size: sizes.rcMemory },
    { name: PCI_EPF_REGIONS.epMemory, size: sizes.epMemory },
    { name: PCI_EPF_REGIONS.fabric, size: sizes.fabric },
  ];
  // Each system sees the regions at the link's addresses (the fabric's state anywhere free):
  // the sides use only the bytes, but a system's bus must not overlap.
  const attach = [
    { region: PCI_EPF_REGIONS.rcMemory, base: link.rcMemoryBase },
    { region: PCI_EPF_REGIONS.epMemory, base: link.epMemoryBase },
    { region: PCI_EPF_REGIONS.fabric, base: FABRIC_BASE },
  ];
  const lines = [PCI_EPF_LINES.toRc, PCI_EPF_LINES.toEp];
  const base: Omit<PciEpfEchoSystemConfig, 'role'> = {
    mode: options.mode ?? 'rfc',
    link,
    notify,
    pollPeriodMs: options.pollPeriodMs ?? 1,
    messages: options.messages ?? 1000,
    size: options.size ?? 64,
    pingPongs: options.pingPongs ?? 0,
    listen: options.listen ?? { mode: 'adaptive', spinUs: 50 },
    timeoutMs: options.timeoutMs ?? 20_000,
    waitForEpDown: options.waitForEpDown ?? false,
    cacheWindows: options.cacheWindows ?? false,
  };
  return {
    mode: options.topology ?? 'threads',
    regions,
    lines,
    systems: [
      { name: 'ep', entry: PCI_EPF_ECHO_SYSTEM, export: 'pciEpfEchoSystem', regions: attach, lines, config: { ...base, role: 'ep' } },
      { name: 'rc', entry: PCI_EPF_ECHO_SYSTEM, export: 'pciEpfEchoSystem', regions: attach, lines, config: { ...base, role: 'rc' } },
    ],
  };
}
