// The vhost-core transport contract, run against HOST2's NtbVhost over a direct pair;
// the far end is HOST1's NtbVirtio driven through its session ops (scratchpads,
// commands, rings in the memory window, doorbells).
import { describeVhostTransportConformance } from '@x/vhost-core/testing';
import { NtbVirtioPeer, createNtbPairHarness } from '@x/transport-ntb/testing';

describeVhostTransportConformance('NTB direct pair (NtbVhost ↔ NtbVirtio peer)', async () => {
  // The suite registers the device on its own bus; HOST2 handshakes before that, so the
  // peer's memory window exists when the suite's first action runs.
  const h = createNtbPairHarness({ registerVhost: false });
  await h.start();
  await h.ready();
  return {
    device: h.vhost.device,
    peer: new NtbVirtioPeer(h.virtio, () => h.settle()),
    dispose: () => h.dispose(),
  };
});
