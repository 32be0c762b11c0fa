// How an endpoint function reaches the root complex's memory for buffer data, shared by
// both EP modes (the RFC's register block and the modern virtio-pci device): through its
// outbound windows (`map`, the RFC's per-access pci_epc_map_addr) or the controller's DMA
// engine (`dma`).
import { VhostError } from '@x/vhost-core';
import { PciEpfError, isPciEpfError } from '../errors.js';
import type { PciEndpointController } from '../hw/endpoint.js';
import type { OutboundView } from './outbound-view.js';

/** `map` or `dma`; the public type is `PciEpfDataPath`. */
export type DataPathKind = 'map' | 'dma';

/** Checks `options.dataPath` (default `map`) against what the controller has. */
export function checkDataPath(epc: PciEndpointController, value: unknown): DataPathKind {
  const path = value ?? 'map';
  if (path !== 'map' && path !== 'dma') throw new RangeError(`options.dataPath must be map or dma, got ${String(path)}`);
  if (path === 'dma' && epc.dma === undefined) throw new PciEpfError('NOT_SUPPORTED', 'options.dataPath is dma but the controller has no DMA engine');
  return path;
}

/** The device side's buffer reads and writes (VhostConfigOps.read / write) over one data path. */
export class RcDataPath {
  constructor(
    private readonly epc: PciEndpointController,
    readonly kind: DataPathKind,
    private readonly view: OutboundView,
  ) {}

  read(dst: Uint8Array, rcAddr: number): void | Promise<void> {
    if (this.kind === 'dma') return this.dma('from-rc', rcAddr, dst);
    this.view.read(rcAddr, dst);
    return undefined;
  }

  write(rcAddr: number, src: Uint8Array): void | Promise<void> {
    if (this.kind === 'dma') return this.dma('to-rc', rcAddr, src);
    this.view.write(rcAddr, src);
    return undefined;
  }

  private async dma(direction: 'to-rc' | 'from-rc', rcAddr: number, local: Uint8Array): Promise<void> {
    try {
      await this.epc.dma!.transfer({ direction, rcAddr, local });
    } catch (e) {
      if (isPciEpfError(e)) throw new VhostError('BUS_ERROR', `DMA ${direction} at 0x${rcAddr.toString(16)}+${local.length}: ${e.message}`, { cause: e });
      throw e;
    }
  }
}
