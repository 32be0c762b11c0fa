import { RPMSG_ADDR_ANY, type RpmsgChannel, type RpmsgDriver } from '@x/rpmsg';

/** The sample's message (Linux `MSG`). */
export const MSG = 'hello world!';
/** Messages each side takes before it says goodbye (Linux `MSG_LIMIT`, the `count` parameter). */
export const MSG_LIMIT = 100;

/** Options of {@link rpmsgClientSample}. */
export interface SampleOptions {
  /** Messages to receive before "goodbye!". Default 100. */
  count?: number;
  /** Delay of the first message after probe (RFC patch 15: delayed work, 500 ms). */
  firstDelayMs?: number;
  /** Re-poll period while the channel's dst is not bound yet (RFC patch 16: 50 ms). */
  pollMs?: number;
  /** Where the `dev_info` lines go. */
  log: (line: string) => void;
  /** Called once per channel after "goodbye!". */
  onGoodbye?: (channel: RpmsgChannel) => void;
}

interface Instance {
  rxCount: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const hex = (v: number): string => `0x${v.toString(16)}`;

/**
 * Linux `samples/rpmsg/rpmsg_client_sample.c` with the RFC's patches 15 and 16: on
 * probe it schedules the first "hello world!" (delayed work), which waits until the
 * channel's remote address is bound (the vhost side learns it through the Address
 * Service); each message received is answered with another until `count` have
 * arrived.
 */
export function rpmsgClientSample(options: SampleOptions): RpmsgDriver {
  const count = options.count ?? MSG_LIMIT;
  const firstDelayMs = options.firstDelayMs ?? 500;
  const pollMs = options.pollMs ?? 50;
  const { log } = options;
  const send = (ch: RpmsgChannel): void => {
    ch.endpoint!.send(MSG).catch((e: unknown) => log(`rpmsg_send failed: ${(e as Error).message}`));
  };
  return {
    name: 'rpmsg_client_sample',
    idTable: ['rpmsg-client-sample'],
    probe(ch) {
      log(`new channel: ${hex(ch.src)} -> ${hex(ch.dst)}!`);
      const idata: Instance = { rxCount: 0, timer: undefined };
      ch.data = idata;
      // Patch 15: the first message goes from delayed work; patch 16: until dst is bound,
      // look again every 50 ms.
      const work = (): void => {
        idata.timer = undefined;
        if (ch.removed) return;
        if (ch.dst === RPMSG_ADDR_ANY) {
          idata.timer = setTimeout(work, pollMs);
          return;
        }
        send(ch);
      };
      idata.timer = setTimeout(work, firstDelayMs);
    },
    callback(ch, data, src) {
      const idata = ch.data as Instance;
      // Linux prints the line, then a hex dump of the payload; the payload is shown as text here.
      log(`incoming msg ${++idata.rxCount} (src: ${hex(src)}): ${JSON.stringify(new TextDecoder().decode(data))}`);
      // samples should not live forever
      if (idata.rxCount >= count) {
        log('goodbye!');
        options.onGoodbye?.(ch);
        return;
      }
      send(ch);
    },
    remove(ch) {
      const idata = ch.data as Instance | undefined;
      if (idata?.timer !== undefined) clearTimeout(idata.timer);
      log('rpmsg sample client driver is removed');
    },
  };
}
