import { RpmsgConfigFs, VhostRpmsgBus, VirtioRpmsgBus } from '@x/rpmsg';
import { createLink } from './link.js';
import { MSG_LIMIT, rpmsgClientSample } from './sample.js';

/** Options of {@link main}. */
export interface SampleRunOptions {
  /** Messages each side receives before "goodbye!". Default 100. */
  count?: number;
  /** RFC patch 15's delay of the first message. Default 500 ms. */
  firstDelayMs?: number;
  /** RFC patch 16's re-poll period. Default 50 ms. */
  pollMs?: number;
}

/** What each side logged (its `dev_info` lines). */
export interface SampleRunResult {
  /** The RC: `VirtioRpmsgBus`, driver role. */
  readonly virtio: readonly string[];
  /** The EP: `VhostRpmsgBus`, device role. */
  readonly vhost: readonly string[];
}

/**
 * The Linux rpmsg client sample on both sides of the RFC's link: the EP creates the
 * `rpmsg-client-sample` channel through its configuration tree
 * (`rpmsg/virtproc/vhost0 → rpmsg/channel/rpmsg-client-sample/c1`), announces it when
 * the RC sets DRIVER_OK, the RC's sample probes and both send "hello world!"; each
 * message is answered until each side has received `count`.
 */
export async function main(options: SampleRunOptions = {}): Promise<SampleRunResult> {
  const count = options.count ?? MSG_LIMIT;
  const logs = { virtio: [] as string[], vhost: [] as string[] };
  let goodbyes = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const sample = (side: 'virtio' | 'vhost') =>
    rpmsgClientSample({
      count,
      ...(options.firstDelayMs === undefined ? {} : { firstDelayMs: options.firstDelayMs }),
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      log: (line) => logs[side].push(line),
      onGoodbye: () => {
        if (++goodbyes === 2) done();
      },
    });

  const link = createLink();
  try {
    // EP (vhost side): the vhost rpmsg bus, its configuration subtree, the sample driver.
    const rcfs = new RpmsgConfigFs(link.tree);
    const ep = new VhostRpmsgBus({ configFs: rcfs });
    ep.registerDriver(sample('vhost'));
    await link.vhostBus.registerDriver(ep);
    await link.tree.link(link.addTransport(), '/vhost/vhost-client/vhost_rpmsg/ffffffff:00000007');
    const epDevice = link.vhostBus.devices[0]!;
    await link.tree.mkdir('/rpmsg/channel/rpmsg-client-sample/c1');
    await link.tree.link(`/rpmsg/virtproc/${epDevice.name}`, '/rpmsg/channel/rpmsg-client-sample/c1');

    // RC (virtio side): the virtio rpmsg bus with the same sample driver.
    const rc = new VirtioRpmsgBus();
    rc.registerDriver(sample('virtio'));
    await link.virtioBus.registerDriver(rc);
    await link.attachRc();

    await finished;
    return logs;
  } finally {
    await link.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await main();
  console.log(['RC (virtio_rpmsg_bus):', ...r.virtio.map((l) => `  ${l}`), 'EP (vhost_rpmsg):', ...r.vhost.map((l) => `  ${l}`)].join('\n'));
}
