/**
 * Test doubles and the conformance suite of `@x/virtio-core`, for transport authors:
 * {@link FakeVirtioTransport} (a virtio-mmio-shaped transport over a scriptable device
 * model) and {@link describeVirtioTransportConformance} (the suite every transport runs
 * against its own factory; it needs vitest).
 *
 * @packageDocumentation
 */
export {
  FAKE_REG,
  FakeDeviceModel,
  type FakeDeviceModelOptions,
  type FakeRegisterBlock,
} from './fake-device-model.js';
export {
  FakeVirtioTransport,
  type FakeFault,
  type FakeOpName,
  type FakeVirtioTransportOptions,
} from './fake-transport.js';
export {
  describeVirtioTransportConformance,
  type VirtioTransportConformanceOptions,
  type VirtioTransportFactory,
  type VirtioTransportUnderTest,
} from './conformance.js';
