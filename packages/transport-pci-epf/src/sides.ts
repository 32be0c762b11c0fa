import type { VhostBus, VhostDevice, VhostDeviceConfig, VhostDeviceId } from '@x/vhost-core';
import type { VirtioBus, VirtioDevice } from '@x/virtio-core';
import { VIRTIO_PCI_ID } from './constants.js';
import { PciEpc } from './hw/endpoint.js';
import { createPciEpfLink, type PciEpfLink, type PciEpfLinkOptions } from './hw/link.js';
import { PciRootComplex, type PciIrqType, type PciTraceEvent } from './hw/root-complex.js';
import { PciEpfVirtioModern } from './modern/pci-epf-virtio.js';
import { VirtioPciModern } from './modern/virtio-pci-modern.js';
import { PciEpfVhost, type PciEpfDataPath, type PciEpfNotifyMode } from './rfc/pci-epf-vhost.js';
import { VirtioPciEpf } from './rfc/virtio-pci-epf.js';
import { createLocalLines, systemClock, type LocalLine, type PciClock, type PciEpfLines } from './wire.js';

/**
 * Which protocol the endpoint speaks: `rfc` (the RFC's BAR register block and commands,
 * patches 18/19) or `modern` (a standard virtio-pci modern device, the direction
 * mainline took).
 *
 * @public
 */
export type PciEpfMode = 'rfc' | 'modern';

/** The virtio rpmsg device id (VIRTIO 1.2 §5: 7). */
const VIRTIO_ID_RPMSG = 7;

/** Options of {@link startPciEpfEndpoint}. @public */
export interface PciEpfEndpointOptions {
  /** The link (its description and shared buffers). */
  readonly link: PciEpfLink;
  /** The link's wires. */
  readonly lines: PciEpfLines;
  /** The endpoint's clock. Default `systemClock`. */
  readonly clock?: PciClock;
  /** The protocol. Default `rfc`. */
  readonly mode?: PciEpfMode;
  /** The vhost device's id. Default `{ vendor: ANY, device: 7 }` (rpmsg, the RFC's vhost-client item `ffffffff:00000007`). */
  readonly id?: VhostDeviceId;
  /** Registers the vhost device here before the link comes up (drivers on it probe first, as the RFC's vhost_rpmsg does before the host sees the function). */
  readonly vhostBus?: VhostBus;
  /** The vhost device's attributes. */
  readonly deviceConfig?: Partial<VhostDeviceConfig>;
  /** Bytes of device configuration. Default 0. */
  readonly configSize?: number;
  /** `rfc`: how the host reaches the function (`auto`: the doorbell when the controller has one). Default `auto`. */
  readonly notify?: PciEpfNotifyMode | 'auto';
  /** Poll period without a doorbell, ms. Default 1 (the RFC). */
  readonly pollPeriodMs?: number;
  /** How `read` / `write` reach RC memory. Default `map`. */
  readonly dataPath?: PciEpfDataPath;
  /** Keep per-access windows mapped. Default false. */
  readonly cacheWindows?: boolean;
  /** Bring the link up at the end. Default true. */
  readonly start?: boolean;
}

/** An endpoint side: controller, function and vhost device. @public */
export interface PciEpfEndpoint {
  /** The protocol. */
  readonly mode: PciEpfMode;
  /** The controller. */
  readonly epc: PciEpc;
  /** The endpoint function. */
  readonly fn: PciEpfVhost | PciEpfVirtioModern;
  /** The vhost device the function drives. */
  readonly device: VhostDevice;
  /** Unregisters the device (when this call registered it), unbinds the function, stops the controller. */
  close(): Promise<void>;
}

/**
 * Builds the endpoint side of a link over its shared buffers (in whichever thread or
 * worker the caller runs): the controller, the endpoint function of `mode`, the vhost
 * device (registered on `vhostBus` when given), then the link comes up.
 *
 * @public
 */
export async function startPciEpfEndpoint(options: PciEpfEndpointOptions): Promise<PciEpfEndpoint> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const mode = options.mode ?? 'rfc';
  if (mode !== 'rfc' && mode !== 'modern') throw new RangeError(`options.mode must be rfc or modern, got ${String(mode)}`);
  const clock = options.clock ?? systemClock;
  const epc = new PciEpc({ link: options.link, lines: options.lines, clock });
  const id = options.id ?? { vendor: 0xffff_ffff, device: VIRTIO_ID_RPMSG };
  const common = {
    epc,
    id,
    clock,
    ...(options.deviceConfig === undefined ? {} : { deviceConfig: options.deviceConfig }),
    ...(options.configSize === undefined ? {} : { configSize: options.configSize }),
    ...(options.pollPeriodMs === undefined ? {} : { pollPeriodMs: options.pollPeriodMs }),
    ...(options.dataPath === undefined ? {} : { dataPath: options.dataPath }),
    ...(options.cacheWindows === undefined ? {} : { cacheWindows: options.cacheWindows }),
  };
  let fn: PciEpfVhost | PciEpfVirtioModern;
  try {
    fn =
      mode === 'rfc'
        ? new PciEpfVhost({ ...common, ...(options.notify === undefined ? {} : { notify: options.notify }) })
        : new PciEpfVirtioModern({ ...common, ...(options.notify === 'poll' ? { useDoorbell: false } : {}) });
  } catch (e) {
    epc.close();
    throw e;
  }
  const bus = options.vhostBus;
  if (bus !== undefined) await bus.registerDevice(fn.device);
  if (options.start ?? true) epc.start();
  let closed = false;
  return {
    mode,
    epc,
    fn,
    device: fn.device,
    async close() {
      if (closed) return;
      closed = true;
      if (bus !== undefined && fn.device.bus === bus) await bus.unregisterDevice(fn.device);
      fn.close();
      epc.close();
    },
  };
}

/** Options of {@link startPciEpfHost}. @public */
export interface PciEpfHostOptions {
  /** The link. */
  readonly link: PciEpfLink;
  /** The link's wires. */
  readonly lines: PciEpfLines;
  /** The root complex's clock. Default `systemClock`. */
  readonly clock?: PciClock;
  /** Registers the virtio device here (a matching driver probes). */
  readonly virtioBus?: VirtioBus;
  /** The virtio device's name. */
  readonly name?: string;
  /** How long to wait for the endpoint's link, ms. Default 5000. */
  readonly linkTimeoutMs?: number;
  /** `rfc`: command timeout, ms. Default 1000. */
  readonly commandTimeoutMs?: number;
  /** Completion timeout of emulated-register reads, ms. Default 1000. */
  readonly completionTimeoutMs?: number;
  /** Interrupt types to try, in order. */
  readonly irqTypes?: readonly PciIrqType[];
  /** `rfc`: ring the doorbell when the endpoint has one. Default true. */
  readonly useDoorbell?: boolean;
  /** Every register access (a bring-up trace). */
  readonly trace?: (event: PciTraceEvent) => void;
}

/** A root-complex side: the root complex, the transport driver and its virtio device. @public */
export interface PciEpfHost {
  /** The protocol the endpoint turned out to speak. */
  readonly mode: PciEpfMode;
  /** The root complex. */
  readonly rc: PciRootComplex;
  /** The transport (a `VirtioConfigOps`). */
  readonly transport: VirtioPciEpf | VirtioPciModern;
  /** The virtio device over it. */
  readonly device: VirtioDevice;
  /** Unregisters the device (when this call registered it), closes the transport and the root complex. */
  close(): Promise<void>;
}

/**
 * Builds the root-complex side of a link over its shared buffers: waits for link-up,
 * enumerates the function, picks the driver by the ids it finds (0x1AF4:0x1040+ → the
 * stock modern driver, else the RFC's `virtio_pci_epf`), makes the virtio device and
 * registers it on `virtioBus` when given. `LINK_DOWN` when the link does not come up.
 *
 * @public
 */
export async function startPciEpfHost(options: PciEpfHostOptions): Promise<PciEpfHost> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const rc = new PciRootComplex({
    link: options.link,
    lines: options.lines,
    clock: options.clock ?? systemClock,
    ...(options.trace === undefined ? {} : { trace: options.trace }),
    ...(options.completionTimeoutMs === undefined ? {} : { completionTimeoutMs: options.completionTimeoutMs }),
  });
  let transport: VirtioPciEpf | VirtioPciModern;
  try {
    await rc.waitLinkUp(options.linkTimeoutMs ?? 5000);
    const info = rc.enumerate();
    const modern = info.vendorId === VIRTIO_PCI_ID.VENDOR && info.deviceId >= VIRTIO_PCI_ID.MODERN_BASE;
    transport = modern
      ? await VirtioPciModern.probe(rc, options.irqTypes === undefined ? {} : { irqTypes: options.irqTypes })
      : await VirtioPciEpf.probe(rc, {
          ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
          ...(options.irqTypes === undefined ? {} : { irqTypes: options.irqTypes }),
          ...(options.useDoorbell === undefined ? {} : { useDoorbell: options.useDoorbell }),
        });
  } catch (e) {
    rc.close();
    throw e;
  }
  const device = transport.createDevice(options.name);
  const bus = options.virtioBus;
  if (bus !== undefined) await bus.registerDevice(device);
  let closed = false;
  return {
    mode: transport instanceof VirtioPciModern ? 'modern' : 'rfc',
    rc,
    transport,
    device,
    async close() {
      if (closed) return;
      closed = true;
      if (bus !== undefined && device.bus === bus) await bus.unregisterDevice(device);
      transport.close();
      rc.close();
    },
  };
}

/** A link and its in-thread wires, to run both sides in one thread. @public */
export interface LocalPciEpfLink {
  /** The link. */
  readonly link: PciEpfLink;
  /** In-thread wires (`LocalLine`). */
  readonly lines: PciEpfLines & { readonly toRc: LocalLine; readonly toEp: LocalLine };
}

/** Creates a link with in-thread wires. @public */
export function createLocalPciEpfLink(options: PciEpfLinkOptions = {}): LocalPciEpfLink {
  return { link: createPciEpfLink(options), lines: createLocalLines() };
}
