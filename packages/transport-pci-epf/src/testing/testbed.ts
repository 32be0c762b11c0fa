import { VhostBus, type VhostDriver } from '@x/vhost-core';
import { VirtioBus, type VirtioDriver } from '@x/virtio-core';
import type { VirtioTransportFactory } from '@x/virtio-core/testing';
import type { VhostTransportFactory } from '@x/vhost-core/testing';
import {
  PciRootComplex,
  createLocalPciEpfLink,
  startPciEpfEndpoint,
  startPciEpfHost,
  type LocalLine,
  type PciEpfDataPath,
  type PciEpfEndpoint,
  type PciEpfEndpointOptions,
  type PciEpfHost,
  type PciEpfHostOptions,
  type PciEpfLink,
  type PciEpfLinkOptions,
  type PciEpfLines,
  type PciEpfMode,
} from '@x/transport-pci-epf';
import { VhostEchoDriver } from './echo-vhost-driver.js';
import { ModernHostPeer, RfcHostPeer } from './peers.js';

/** Options of {@link createPciEpfTestbed}. @public */
export interface PciEpfTestbedOptions {
  /** The protocol. Default `rfc`. */
  readonly mode?: PciEpfMode;
  /** The link (controller features, memory sizes). */
  readonly link?: PciEpfLinkOptions;
  /** Endpoint options. */
  readonly endpoint?: Omit<PciEpfEndpointOptions, 'link' | 'lines' | 'vhostBus' | 'mode'>;
  /** Root-complex options, or false to start no host (start it later with `startHost`). */
  readonly host?: Omit<PciEpfHostOptions, 'link' | 'lines' | 'virtioBus'> | false;
  /** The endpoint's vhost driver, registered before the device. Default a {@link VhostEchoDriver}; false for none. */
  readonly vhostDriver?: VhostDriver | false;
  /** Register the endpoint's vhost device on the testbed's bus. Default true. */
  readonly registerDevice?: boolean;
  /** A virtio driver for the host: the host's device and this driver are registered on the testbed's virtio bus. */
  readonly virtioDriver?: VirtioDriver;
}

/** Both sides of one link in one thread, joined only by the link's bytes and in-thread wires. @public */
export interface PciEpfTestbed {
  /** The link. */
  readonly link: PciEpfLink;
  /** Its wires. */
  readonly lines: PciEpfLines & { readonly toRc: LocalLine; readonly toEp: LocalLine };
  /** The endpoint's vhost bus. */
  readonly vhostBus: VhostBus;
  /** The host's virtio bus. */
  readonly virtioBus: VirtioBus;
  /** The endpoint side. */
  readonly ep: PciEpfEndpoint;
  /** The host side, once started. */
  readonly host: PciEpfHost | undefined;
  /** Starts (or, after `stopHost`, starts again: a re-probe) the host side. */
  startHost(options?: Omit<PciEpfHostOptions, 'link' | 'lines' | 'virtioBus'>): Promise<PciEpfHost>;
  /** Closes the host side (its device unregistered). */
  stopHost(): Promise<void>;
  /** Waits until neither side has work in flight (wires, commands, emulated registers, DMA, pollers). */
  settle(timeoutMs?: number): Promise<void>;
  /** Closes both sides. */
  dispose(): Promise<void>;
}

const turn = (): Promise<void> => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Builds an endpoint and (unless told not to) a root complex over one fresh link in
 * this thread. The two sides share nothing but the link's buffers and wires; the
 * testbed holds both only to start, observe and stop them.
 *
 * @public
 */
export async function createPciEpfTestbed(options: PciEpfTestbedOptions = {}): Promise<PciEpfTestbed> {
  const { link, lines } = createLocalPciEpfLink(options.link ?? {});
  const vhostBus = new VhostBus();
  const virtioBus = new VirtioBus();
  const driver = options.vhostDriver === false ? undefined : (options.vhostDriver ?? new VhostEchoDriver());
  if (driver !== undefined) await vhostBus.registerDriver(driver);
  const ep = await startPciEpfEndpoint({
    ...options.endpoint,
    link,
    lines,
    mode: options.mode ?? 'rfc',
    ...((options.registerDevice ?? true) ? { vhostBus } : {}),
  });
  let host: PciEpfHost | undefined;

  const quiet = async (deadline: number): Promise<void> => {
    let calm = 0;
    for (let i = 0; calm < 3; i++) {
      if (i < 500) await turn();
      else await sleep(1);
      const busy = !lines.toRc.idle || !lines.toEp.idle || ep.epc.busy || ep.fn.busy || (host?.rc.busy ?? false);
      calm = busy ? 0 : calm + 1;
      if (Date.now() > deadline) throw new Error('settle: the link is still busy');
    }
  };

  const tb: PciEpfTestbed = {
    link,
    lines,
    vhostBus,
    virtioBus,
    ep,
    get host() {
      return host;
    },
    async startHost(o = {}) {
      const registerOnBus = options.virtioDriver !== undefined;
      host = await startPciEpfHost({ ...o, link, lines, ...(registerOnBus ? { virtioBus } : {}) });
      return host;
    },
    async stopHost() {
      const h = host;
      host = undefined;
      await h?.close();
    },
    async settle(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      await quiet(deadline);
    },
    async dispose() {
      await tb.stopHost();
      await ep.close();
      if (options.virtioDriver !== undefined) await virtioBus.unregisterDriver(options.virtioDriver).catch(() => undefined);
    },
  };
  if (options.host !== false) {
    await tb.startHost(options.host ?? {});
    if (options.virtioDriver !== undefined) await virtioBus.registerDriver(options.virtioDriver);
  }
  return tb;
}

/** Options of the conformance factories. @public */
export interface PciEpfConformanceOptions {
  /** The protocol. */
  readonly mode: PciEpfMode;
  /** `doorbell` (mainline) or `poll` (the RFC, 1 ms). Default `doorbell`. */
  readonly notify?: 'doorbell' | 'poll';
  /** Poll period, ms. Default 1. */
  readonly pollPeriodMs?: number;
  /** How `read` / `write` reach RC memory. Default `map`. */
  readonly dataPath?: PciEpfDataPath;
  /** Keep per-access windows mapped. Default false. */
  readonly cacheWindows?: boolean;
  /** More link options. */
  readonly link?: PciEpfLinkOptions;
}

function linkFor(o: PciEpfConformanceOptions): PciEpfLinkOptions {
  const notify = o.notify ?? 'doorbell';
  return { ...o.link, epc: { ...o.link?.epc, doorbell: notify === 'doorbell', ...(o.dataPath === 'dma' ? { dma: true } : {}) } };
}

function endpointFor(o: PciEpfConformanceOptions): Omit<PciEpfEndpointOptions, 'link' | 'lines' | 'vhostBus' | 'mode'> {
  return {
    notify: o.notify ?? 'doorbell',
    ...(o.pollPeriodMs === undefined ? {} : { pollPeriodMs: o.pollPeriodMs }),
    ...(o.dataPath === undefined ? {} : { dataPath: o.dataPath }),
    ...(o.cacheWindows === undefined ? {} : { cacheWindows: o.cacheWindows }),
  };
}

/** Bytes of device configuration the echo far end defines for the virtio conformance suite. */
const CONFORMANCE_CONFIG = Uint8Array.of(0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88);

/**
 * A factory for `@x/virtio-core`'s `describeVirtioTransportConformance`: the host's
 * transport (`VirtioPciEpf` or `VirtioPciModern`) over a fresh link whose
 * endpoint runs a {@link VhostEchoDriver} (VERSION_1, EVENT_IDX, INDIRECT_DESC) with 8
 * bytes of device configuration.
 *
 * @public
 */
export function pciEpfVirtioTarget(options: PciEpfConformanceOptions): VirtioTransportFactory {
  return async () => {
    const tb = await createPciEpfTestbed({
      mode: options.mode,
      link: linkFor(options),
      endpoint: { ...endpointFor(options), configSize: CONFORMANCE_CONFIG.length },
      vhostDriver: new VhostEchoDriver('vhost-echo', { config: CONFORMANCE_CONFIG }),
    });
    const transport = tb.host!.transport;
    return {
      ops: transport,
      id: transport.id,
      echo: true,
      configSize: CONFORMANCE_CONFIG.length,
      dispose: () => tb.dispose(),
    };
  };
}

/**
 * A factory for `@x/vhost-core`'s `describeVhostTransportConformance`: the endpoint's
 * vhost device (not registered; the suite registers it) over a fresh link, and the host
 * as a register-level peer ({@link RfcHostPeer} or {@link ModernHostPeer}).
 *
 * @public
 */
export function pciEpfVhostHarness(options: PciEpfConformanceOptions): VhostTransportFactory {
  return async (req) => {
    const tb = await createPciEpfTestbed({
      mode: options.mode,
      link: linkFor(options),
      endpoint: { ...endpointFor(options), deviceConfig: { queueSize: req.queueSize } },
      vhostDriver: false,
      registerDevice: false,
      host: false,
    });
    const rc = new PciRootComplex({ link: tb.link, lines: tb.lines });
    await rc.waitLinkUp();
    rc.enumerate();
    const settle = () => tb.settle();
    const peer = options.mode === 'rfc' ? new RfcHostPeer(rc, { bufferSize: req.bufferSize, settle }) : new ModernHostPeer(rc, { bufferSize: req.bufferSize, settle });
    return {
      device: tb.ep.device,
      peer,
      async dispose() {
        rc.close();
        await tb.dispose();
      },
    };
  };
}
