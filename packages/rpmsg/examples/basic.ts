// Both sides of an rpmsg link in one thread: the device (vhost) side announces an echo
// channel through the name service; the driver (virtio) side's driver probes it and
// talks to it; a second, rpmsg_ctrl-style endpoint is read with for-await.
// Run: node --conditions=@x/source --import tsx packages/rpmsg/examples/basic.ts
import { RPMSG_ADDR_ANY, type RpmsgChannel } from '@x/rpmsg';
import { createRpmsgPair } from '@x/rpmsg/testing';

export async function main(): Promise<string> {
  const { driver, device, close } = createRpmsgPair(); // F_NS | F_AS, 256 × 512-byte buffers each way
  const out: string[] = [];

  // Device side: an echo service on a channel it announces (NS CREATE | AS_ANNOUNCE to 53).
  device.registerDriver({
    name: 'echo',
    idTable: ['rpmsg-echo'],
    callback: (ch, data, src) => void ch.endpoint!.sendTo(data, src),
  });
  const service = device.createChannel({ name: 'rpmsg-echo' }, { announce: true });

  // Driver side: a driver matched by channel name; probe runs when the announcement arrives.
  const replies: string[] = [];
  let probed!: (ch: RpmsgChannel) => void;
  const channel = new Promise<RpmsgChannel>((r) => (probed = r));
  driver.registerDriver({
    name: 'echo-client',
    idTable: ['rpmsg-echo'],
    probe: (ch) => probed(ch),
    callback: (_ch, data) => replies.push(new TextDecoder().decode(data)),
  });
  const ch = await channel;
  await ch.endpoint!.send('ping'); // waits for a TX buffer if none is free (15 s, AbortSignal)
  while (replies.length === 0) await new Promise((r) => setImmediate(r));
  out.push(`channel ${ch.name} 0x${ch.src.toString(16)} -> 0x${ch.dst.toString(16)}: ${replies[0]}`);
  // The Address Service (F_AS) told the device side which address the driver side bound.
  out.push(`device side bound: ${service.dst === ch.src && service.dst !== RPMSG_ADDR_ANY}`);

  // rpmsg_ctrl-like endpoints (no callback): one message per iteration, like /dev/rpmsgN.
  const rx = device.createEndpoint({ name: 'raw', src: 0x2000 });
  const tx = driver.createEndpoint({ name: 'raw', dst: 0x2000 });
  for (const word of ['one', 'two', 'three']) tx.trySend(word); // fails at once with NO_BUFFER when full
  const words: string[] = [];
  for await (const m of rx) {
    words.push(new TextDecoder().decode(m.data));
    if (words.length === 3) break;
  }
  out.push(`raw endpoint got: ${words.join(' ')}`);
  close();
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main());
