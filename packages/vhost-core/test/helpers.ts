import {
  VHOST_DEV_ANY_ID,
  VHOST_NOTIFY,
  VhostVirtqueue as VhostVirtqueueCtor,
  type VhostConfigOps,
  type VhostDevice,
  type VhostDriver,
  type VhostEventInfo,
} from '@x/vhost-core';

/** Ops that do nothing, for bus tests that never touch a peer. */
export function nullOps(overrides: Partial<VhostConfigOps> = {}): VhostConfigOps {
  let status = 0;
  return {
    createVqs: () => [],
    delVqs: () => {},
    read: () => {},
    write: () => {},
    setFeatures: () => {},
    getStatus: () => status,
    setStatus: (s) => {
      status = s;
    },
    ...overrides,
  };
}

/** A driver that records what happens to it. */
export interface RecordingDriver extends VhostDriver {
  readonly log: string[];
  readonly events: VhostEventInfo[];
}

export function recordingDriver(
  name: string,
  idTable: VhostDriver['idTable'] = [{ vendor: VHOST_DEV_ANY_ID, device: 7 }],
  hooks: { probe?: (d: VhostDevice) => void | Promise<void>; event?: (d: VhostDevice, i: VhostEventInfo) => void | Promise<void>; features?: bigint } = {},
): RecordingDriver {
  const log: string[] = [];
  const events: VhostEventInfo[] = [];
  return {
    name,
    idTable,
    ...(hooks.features === undefined ? {} : { features: hooks.features }),
    log,
    events,
    async probe(d) {
      log.push(`probe ${d.name}`);
      await hooks.probe?.(d);
    },
    remove(d) {
      log.push(`remove ${d.name}`);
    },
    async event(d, info) {
      events.push(info);
      await hooks.event?.(d, info);
    },
  };
}

/**
 * The smallest transport: a status byte and a feature word as plain variables, which a
 * test writes in the peer's place before calling handleEvent (as a transport's command
 * handler would after reading its registers).
 */
export class ManualTransport {
  status = 0;
  published = 0n;
  statusWrites: number[] = [];
  interrupts = 0;
  device!: VhostDevice;
  readonly ops: VhostConfigOps;

  constructor(overrides: Partial<VhostConfigOps> = {}) {
    this.ops = {
      createVqs: (specs) =>
        specs.map(
          (s, index) =>
            new VhostVirtqueueCtor({
              device: this.device,
              index,
              num: s.size,
              name: s.name,
              ...(s.callback === undefined ? {} : { callback: s.callback }),
              notify: () => {
                this.interrupts++;
              },
            }),
        ),
      delVqs: () => {},
      read: () => {},
      write: () => {},
      setFeatures: (f) => {
        this.published = f;
      },
      getStatus: () => this.status,
      setStatus: (s) => {
        this.status = s;
        this.statusWrites.push(s);
      },
      ...overrides,
    };
  }

  /** The peer writes the status and the transport reports SET_STATUS. */
  write(status: number) {
    this.status = status;
    return this.device.handleEvent(VHOST_NOTIFY.SET_STATUS);
  }
}
