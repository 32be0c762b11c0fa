// The virtio-core transport contract, run against HOST1's NtbVirtio over a direct pair
// whose HOST2 runs the echo vhost device (rpmsg's two queues).
import { describeVirtioTransportConformance } from '@x/virtio-core/testing';
import { NtbEchoVhostDriver, createNtbPairHarness } from '@x/transport-ntb/testing';

describeVirtioTransportConformance('NTB direct pair (NtbVirtio ↔ NtbVhost echo)', async () => {
  const h = createNtbPairHarness({ vhostDriver: new NtbEchoVhostDriver() });
  await h.start();
  await h.ready();
  return {
    ops: h.virtio.ops!,
    id: h.virtio.id!,
    echo: true,
    configSize: 16,
    dispose: () => h.dispose(),
  };
});
