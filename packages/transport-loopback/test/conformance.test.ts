import { describeVirtioTransportConformance } from '@x/virtio-core/testing';
import { describeVhostTransportConformance } from '@x/vhost-core/testing';
import { loopbackVhostHarness, loopbackVirtioTarget } from '@x/transport-loopback/testing';

// Issue 3: the loopback transport passes both conformance suites, same thread. The
// virtio suite drives the driver side through VirtioConfigOps against a vhost echo
// driver on the device side; the vhost suite drives the device side's VhostConfigOps
// from a raw virtio-mmio peer on the driver side. Only the link's bytes join them.
describeVirtioTransportConformance('loopback (virtio side, vhost echo driver at the far end)', () => loopbackVirtioTarget());
describeVhostTransportConformance('loopback (vhost side, raw virtio-mmio peer at the far end)', (req) => loopbackVhostHarness(req));
