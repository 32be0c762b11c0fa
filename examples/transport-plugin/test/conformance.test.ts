// The point of the template: both conformance suites of the published packages, run
// against this transport from outside packages/.
import { VhostBus } from '@x/vhost-core';
import { describeVhostTransportConformance } from '@x/vhost-core/testing';
import { describeVirtioTransportConformance } from '@x/virtio-core/testing';
import { attachEp, createBarLink, EpTransport, openRc } from '../src/index.js';
import { EchoVhostDriver } from './echo-driver.js';
import { RcPeer } from './peer.js';

// VirtioConfigOps (the RC side): the far end is an EP whose vhost driver echoes.
describeVirtioTransportConformance('plugin: RFC BAR transport, RC side', async () => {
  const link = createBarLink({ deviceId: 7 });
  const vhostBus = new VhostBus();
  await vhostBus.registerDriver(new EchoVhostDriver(7));
  const ep = await attachEp(link, vhostBus);
  const rc = await openRc(link);
  return {
    ops: rc.ops,
    id: rc.id,
    echo: true,
    configSize: 16,
    async dispose() {
      await rc.close();
      await ep.close();
    },
  };
});

// VhostConfigOps (the EP side): the far end is a raw RC driver.
describeVhostTransportConformance('plugin: RFC BAR transport, EP side', async (req) => {
  const link = createBarLink({ deviceId: 7, memorySize: Math.max(1 << 20, 4 * req.queues * req.queueSize * req.bufferSize) });
  const ep = new EpTransport(link);
  const peer = await RcPeer.open(link, req.bufferSize);
  return {
    device: ep.device,
    peer,
    async dispose() {
      await peer.close();
      await ep.close();
    },
  };
});
