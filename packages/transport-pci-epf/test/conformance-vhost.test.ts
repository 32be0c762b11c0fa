// VhostConfigOps conformance (@x/vhost-core) of both endpoint functions: the RFC's
// pci-epf-vhost (patch 19) and the virtio-pci modern function, each driven by a
// register-level host peer through the model's root complex.
import { describeVhostTransportConformance } from '@x/vhost-core/testing';
import { pciEpfVhostHarness } from '@x/transport-pci-epf/testing';

describeVhostTransportConformance('pci-epf-vhost (rfc), doorbell', pciEpfVhostHarness({ mode: 'rfc', notify: 'doorbell' }));
describeVhostTransportConformance('pci-epf-virtio (modern), doorbell', pciEpfVhostHarness({ mode: 'modern', notify: 'doorbell' }));
describeVhostTransportConformance('pci-epf-vhost (rfc), 1 ms polling', pciEpfVhostHarness({ mode: 'rfc', notify: 'poll' }), { buffers: 300 });
describeVhostTransportConformance('pci-epf-virtio (modern), ring polling', pciEpfVhostHarness({ mode: 'modern', notify: 'poll' }), { buffers: 300 });
describeVhostTransportConformance('pci-epf-vhost (rfc), DMA data path', pciEpfVhostHarness({ mode: 'rfc', dataPath: 'dma' }));
describeVhostTransportConformance('pci-epf-virtio (modern), DMA data path', pciEpfVhostHarness({ mode: 'modern', dataPath: 'dma' }));
