// Both transport contracts again, over the three-system bridge (HOST1 ↔ EPC1 | NTB
// function | EPC2 ↔ HOST2) in one thread.
import { describeVirtioTransportConformance } from '@x/virtio-core/testing';
import { describeVhostTransportConformance } from '@x/vhost-core/testing';
import { NtbEchoVhostDriver, NtbVirtioPeer, createNtbBridgeHarness } from '@x/transport-ntb/testing';

describeVirtioTransportConformance('NTB bridge (NtbVirtio ↔ NtbVhost echo)', async () => {
  const h = await createNtbBridgeHarness({ vhostDriver: new NtbEchoVhostDriver() });
  await h.start();
  await h.ready();
  return { ops: h.virtio.ops!, id: h.virtio.id!, echo: true, configSize: 16, dispose: () => h.dispose() };
}, { roundTrips: 300 });

describeVhostTransportConformance('NTB bridge (NtbVhost ↔ NtbVirtio peer)', async () => {
  const h = await createNtbBridgeHarness({ registerVhost: false });
  await h.start();
  await h.ready();
  return { device: h.vhost.device, peer: new NtbVirtioPeer(h.virtio, () => h.settle()), dispose: () => h.dispose() };
}, { buffers: 300 });
