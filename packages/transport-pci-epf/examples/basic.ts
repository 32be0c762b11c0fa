// A Root Complex and an Endpoint over one PCIe link, in one thread: the endpoint (SoC1)
// runs a vhost device behind the RFC's BAR register block (or, with `mode: 'modern'`, a
// standard virtio-pci device), the root complex (SoC2) finds it, brings it up and
// drives it with a virtio driver. The two sides share only the link's
// SharedArrayBuffers and two wires, so each could run in its own worker.
import { VhostBus } from '@x/vhost-core';
import { VirtioBus } from '@x/virtio-core';
import { createLocalPciEpfLink, startPciEpfEndpoint, startPciEpfHost, type PciEpfMode } from '@x/transport-pci-epf';
import { VhostEchoDriver, VirtioEchoClient } from '@x/transport-pci-epf/testing';

export interface BasicResult {
  readonly mode: PciEpfMode;
  readonly function: string;
  readonly features: string;
  readonly queues: string;
  readonly echoed: number;
  readonly duplicates: number;
}

export async function main(mode: PciEpfMode = 'rfc'): Promise<BasicResult> {
  // The link: RC memory, EP memory and the fabric's state, plus two in-thread wires.
  // This controller has the mainline RC→EP doorbell; without it the endpoint polls (1 ms).
  const { link, lines } = createLocalPciEpfLink({ epc: { doorbell: true } });

  // Endpoint: a vhost driver (here an echo) on a vhost bus, then the endpoint function.
  const vhostBus = new VhostBus();
  await vhostBus.registerDriver(new VhostEchoDriver());
  const ep = await startPciEpfEndpoint({ link, lines, mode, vhostBus });

  // Root complex: a virtio driver (the echo's client) on a virtio bus, then the host side,
  // which waits for the link, enumerates, finds the registers and registers the device.
  const virtioBus = new VirtioBus();
  const client = new VirtioEchoClient();
  await virtioBus.registerDriver(client);
  const host = await startPciEpfHost({ link, lines, virtioBus });
  try {
    await client.run(1000, 64);
    const info = host.rc.info!;
    return {
      mode: host.mode,
      function: `${info.vendorId.toString(16)}:${info.deviceId.toString(16)}`,
      features: `0x${host.device.features.toString(16)}`,
      queues: host.transport.vqs.map((q) => `${q.name}(${q.num})`).join(' '),
      echoed: client.counts.received,
      duplicates: client.counts.duplicates,
    };
  } finally {
    await host.close();
    await ep.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const mode of ['rfc', 'modern'] as const) console.log(await main(mode));
}
