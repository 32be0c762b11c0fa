import { RPMSG_ADDR_ANY, type RpmsgChannel, type RpmsgDriver } from '@x/rpmsg';

/** The sample's message (Linux `MSG`). */
export const MSG = 'hello world!';
/** Messages each side takes before it says goodbye (Linux `MSG_LIMIT`). */
export const MSG_LIMIT = 100;

/** Options of {@link rpmsgClientSample}. */
export interface SampleOptions {
  /** Messages to receive before "goodbye!". Default 100. */
  readonly count?: number;
  /** Delay of the first message after probe (RFC patch 15: delayed work, 500 ms). */
  readonly firstDelayMs?: number;
  /** Re-poll period while the channel's dst is not bound yet (RFC patch 16: 50 ms). */
  readonly pollMs?: number;
  /**
   * The timer to use, returning a cancel function: a system's `ctx.setTimer` (virtual
   * time in a deterministic topology). Default: `setTimeout`.
   */
  readonly setTimer?: (ms: number, callback: () => void) => () => void;
  /** Where the `dev_info` lines go. */
  readonly log: (line: string) => void;
  /** Called once per channel after "goodbye!". */
  readonly onGoodbye?: (channel: RpmsgChannel) => void;
}

const hex = (v: number): string => `0x${v.toString(16)}`;

function wallTimer(ms: number, callback: () => void): () => void {
  const t = setTimeout(callback, ms);
  return () => clearTimeout(t);
}

/**
 * Linux `samples/rpmsg/rpmsg_client_sample.c` with the RFC's patches 15 and 16: on probe
 * it schedules the first "hello world!" (delayed work), which waits until the channel's
 * remote address is bound (the vhost side learns it through the Address Service); each
 * message received is answered with another until `count` have arrived. Used by this
 * example and by both use-case examples (on their systems' timers).
 */
export function rpmsgClientSample(options: SampleOptions): RpmsgDriver {
  const count = options.count ?? MSG_LIMIT;
  const firstDelayMs = options.firstDelayMs ?? 500;
  const pollMs = options.pollMs ?? 50;
  const { log } = options;
  const setTimer = options.setTimer ?? wallTimer;
  const timers = new Map<RpmsgChannel, () => void>();
  const rx = new Map<RpmsgChannel, number>();
  const send = (ch: RpmsgChannel): void => {
    ch.endpoint!.send(MSG).catch((e: unknown) => log(`rpmsg_send failed: ${(e as Error).message}`));
  };
  return {
    name: 'rpmsg_client_sample',
    idTable: ['rpmsg-client-sample'],
    probe(ch) {
      log(`new channel: ${hex(ch.src)} -> ${hex(ch.dst)}!`);
      rx.set(ch, 0);
      // Patch 15: the first message goes from delayed work; patch 16: until dst is bound
      // (the vhost side learns it from the Address Service), look again every 50 ms.
      const work = (): void => {
        timers.delete(ch);
        if (ch.removed) return;
        if (ch.dst === RPMSG_ADDR_ANY) {
          timers.set(ch, setTimer(pollMs, work));
          return;
        }
        send(ch);
      };
      timers.set(ch, setTimer(firstDelayMs, work));
    },
    callback(ch, data, src) {
      const n = (rx.get(ch) ?? 0) + 1;
      rx.set(ch, n);
      log(`incoming msg ${n} (src: ${hex(src)}): ${JSON.stringify(new TextDecoder().decode(data))}`);
      // samples should not live forever
      if (n >= count) {
        log('goodbye!');
        options.onGoodbye?.(ch);
        return;
      }
      send(ch);
    },
    remove(ch) {
      timers.get(ch)?.();
      timers.delete(ch);
      rx.delete(ch);
      log('rpmsg sample client driver is removed');
    },
  };
}
