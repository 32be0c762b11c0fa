// Link down / link up under traffic, in one thread, on both backends (RFC §2.6 "link
// down", issue 6): the virtio and vhost devices are unregistered, pending sends fail
// with a typed LINK_DOWN, nothing is delivered twice, nothing acknowledged is lost,
// and after each link-up the whole handshake runs again and traffic resumes.
import { describe, expect, it } from 'vitest';
import { VirtioBus } from '@x/virtio-core';
import { isNtbError, type NtbVirtioEvent, type NtbVhostEvent } from '@x/transport-ntb';
import { NtbEchoClient, NtbEchoVhostDriver, createNtbBridgeHarness, createNtbPairHarness, type NtbHarness } from '@x/transport-ntb/testing';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

interface Rig {
  h: NtbHarness;
  client: NtbEchoClient;
  received: Map<number, number>;
  vEvents: NtbVirtioEvent[];
  hEvents: NtbVhostEvent[];
}

async function rig(backend: 'pair' | 'bridge'): Promise<Rig> {
  const received = new Map<number, number>();
  const echo = new NtbEchoVhostDriver({
    onMessage: (m) => {
      const seq = new DataView(m.buffer, m.byteOffset, 4).getUint32(0, true);
      received.set(seq, (received.get(seq) ?? 0) + 1);
    },
  });
  const bus = new VirtioBus();
  const client = new NtbEchoClient({ size: 64, rxBuffers: 64 });
  await bus.registerDriver(client);
  const vEvents: NtbVirtioEvent[] = [];
  const hEvents: NtbVhostEvent[] = [];
  const opts = { vhostDriver: echo, virtioBus: bus, onVirtioEvent: (e: NtbVirtioEvent) => vEvents.push(e), onVhostEvent: (e: NtbVhostEvent) => hEvents.push(e) };
  const h = backend === 'pair' ? createNtbPairHarness(opts) : await createNtbBridgeHarness(opts);
  await h.start();
  await h.ready();
  await client.ready();
  return { h, client, received, vEvents, hEvents };
}

for (const backend of ['pair', 'bridge'] as const) {
  describe(`link flaps under echo traffic (${backend})`, () => {
    it('RFC §2.6 gap: 6 flaps from both hosts; no duplicate, no acknowledged message lost, typed LINK_DOWN, traffic resumes', async () => {
      const { h, client, received, vEvents, hEvents } = await rig(backend);
      const total = 6000;
      let stop = false;
      const pump = (async () => {
        while (!stop && client.counts.sent < total) {
          if (!client.trySend()) await Promise.race([client.whenRoom(), sleep(2)]);
          else if (client.counts.sent % 64 === 0) await new Promise<void>((r) => setImmediate(r));
        }
      })();
      const flaps = 6;
      for (let f = 0; f < flaps; f++) {
        await until('traffic', () => client.counts.acked > (f + 1) * 200);
        // Alternate the host that takes the link down (ntb_link_disable on either side).
        const port = f % 2 === 0 ? h.port1 : h.port2;
        await port.dev.linkDisable();
        await until('HOST1 device removal', () => client.device === undefined && h.virtio.state === 'down');
        await until('HOST2 device removal', () => h.vhost.device.bus === undefined);
        await port.dev.linkEnable();
        await h.ready();
        await client.ready();
      }
      await until('all messages sent', () => client.counts.sent >= total, 20_000);
      stop = true;
      await pump;
      await until('drain', () => client.inflight === 0, 10_000);
      const c = client.counts;
      // Sessions: the first plus one per flap, each with a fresh handshake and device.
      expect(h.virtio.sessions).toBe(flaps + 1);
      expect(h.vhost.sessions).toBe(flaps + 1);
      expect(c.probes).toBe(flaps + 1);
      expect(vEvents.filter((e) => e.type === 'unregistered')).toHaveLength(flaps);
      expect(hEvents.filter((e) => e.type === 'unregistered')).toHaveLength(flaps);
      // Nothing delivered twice: HOST2 received each sequence number at most once, HOST1 each echo at most once.
      expect([...received.values()].filter((n) => n > 1)).toEqual([]);
      expect(c.duplicates).toBe(0);
      // Nothing acknowledged lost: every acknowledged message reached HOST2.
      const lost = [...client.acked].filter((s) => !received.has(s));
      expect(lost).toEqual([]);
      for (const s of client.echoed) expect(received.has(s)).toBe(true);
      // Sends caught in flight failed with a typed LINK_DOWN (never silently).
      expect(c.failed).toBeGreaterThan(0);
      for (const e of client.failures) expect(isNtbError(e, 'LINK_DOWN')).toBe(true);
      expect(c.sent).toBe(c.acked + c.failed);
      // Traffic resumed: the last session carried messages end to end.
      expect(c.acked).toBeGreaterThan((flaps + 1) * 200);
      await h.dispose();
    });
  });
}
