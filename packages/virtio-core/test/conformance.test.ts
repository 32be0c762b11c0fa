import { describeVirtioTransportConformance, FakeVirtioTransport } from '@x/virtio-core/testing';

// The suite a transport author runs, run here against the fake in two shapes: async
// ops with core's dmaRegion fallback, and sync ops with the transport's own allocBuffer.
describeVirtioTransportConformance('FakeVirtioTransport (async ops, dmaRegion fallback)', () => {
  const t = new FakeVirtioTransport({ echo: true, asyncOps: true });
  return { ops: t.ops, id: t.id, echo: true, configSize: 16, dispose: () => t.dispose() };
});

describeVirtioTransportConformance('FakeVirtioTransport (sync ops, allocBuffer op, no generation)', () => {
  const t = new FakeVirtioTransport({ echo: true, asyncOps: false, allocBuffer: true, generation: false });
  return { ops: t.ops, id: t.id, echo: true, configSize: 16, dispose: () => t.dispose() };
});

describeVirtioTransportConformance('FakeVirtioTransport (no echo, small queues)', () => {
  const t = new FakeVirtioTransport({ maxQueueSize: 16 });
  return { ops: t.ops, id: t.id, dispose: () => t.dispose() };
});
