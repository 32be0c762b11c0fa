import { describeVhostTransportConformance, FakeVhostTransport } from '@x/vhost-core/testing';

// The suite every transport runs (issue 3, "For transport authors"), here against the
// test double: the peer's virtio driver at the far end of a register block, a window
// onto its memory, and doorbell / interrupt lines.
describeVhostTransportConformance('FakeVhostTransport', (req) => {
  const t = new FakeVhostTransport({ maxQueues: req.queues, bufferSize: req.bufferSize });
  return { device: t.device, peer: t.peer, dispose: () => t.dispose() };
});
