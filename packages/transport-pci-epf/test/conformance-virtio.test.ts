// VirtioConfigOps conformance (@x/virtio-core) of both root-complex drivers: the RFC's
// virtio_pci_epf (patch 18) and the stock virtio-pci modern driver, each against an
// endpoint running the echo function, with the mainline doorbell and with the RFC's
// 1 ms command polling.
import { describeVirtioTransportConformance } from '@x/virtio-core/testing';
import { pciEpfVirtioTarget } from '@x/transport-pci-epf/testing';

describeVirtioTransportConformance('pci-epf rfc (virtio_pci_epf ↔ pci-epf-vhost), doorbell', pciEpfVirtioTarget({ mode: 'rfc', notify: 'doorbell' }));
describeVirtioTransportConformance('pci-epf modern (virtio-pci modern ↔ emulated device), doorbell', pciEpfVirtioTarget({ mode: 'modern', notify: 'doorbell' }));
// Polling costs up to a poll period per kick: fewer round trips keep the suite short.
describeVirtioTransportConformance('pci-epf rfc, 1 ms polling (the RFC)', pciEpfVirtioTarget({ mode: 'rfc', notify: 'poll' }), { roundTrips: 200 });
describeVirtioTransportConformance('pci-epf modern, ring polling', pciEpfVirtioTarget({ mode: 'modern', notify: 'poll' }), { roundTrips: 200 });
describeVirtioTransportConformance('pci-epf rfc, DMA data path and cached windows', pciEpfVirtioTarget({ mode: 'rfc', dataPath: 'dma', cacheWindows: true }));
