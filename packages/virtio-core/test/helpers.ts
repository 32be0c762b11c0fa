import { VirtioBus, type VirtioBusEvent, type VirtioBusOptions, type VirtioDevice, type VirtioDeviceId, type VirtioDriver } from '@x/virtio-core';
import { FakeVirtioTransport, type FakeVirtioTransportOptions } from '@x/virtio-core/testing';

/** A driver that records what the bus asked of it; hooks can add behaviour. */
export interface RecordingDriver extends VirtioDriver {
  readonly calls: string[];
}

export function recordingDriver(
  name: string,
  idTable: readonly VirtioDeviceId[],
  hooks: {
    featureTable?: number[];
    validate?: (dev: VirtioDevice) => void | Promise<void>;
    probe?: (dev: VirtioDevice) => void | Promise<void>;
    remove?: (dev: VirtioDevice) => void | Promise<void>;
    configChanged?: (dev: VirtioDevice) => void | Promise<void>;
  } = {},
): RecordingDriver {
  const calls: string[] = [];
  return {
    name,
    idTable,
    featureTable: hooks.featureTable ?? [],
    calls,
    ...(hooks.validate
      ? {
          validate: async (dev: VirtioDevice) => {
            calls.push(`validate ${dev.name}`);
            await hooks.validate!(dev);
          },
        }
      : {}),
    probe: async (dev) => {
      calls.push(`probe ${dev.name}`);
      await hooks.probe?.(dev);
    },
    remove: async (dev) => {
      calls.push(`remove ${dev.name}`);
      await hooks.remove?.(dev);
    },
    configChanged: async (dev) => {
      calls.push(`configChanged ${dev.name}`);
      await hooks.configChanged?.(dev);
    },
  };
}

/** A bus that keeps its events, and a fake transport with a device. */
export function setup(options: FakeVirtioTransportOptions = {}, busOptions: Omit<VirtioBusOptions, 'onEvent'> = {}) {
  const events: VirtioBusEvent[] = [];
  const bus = new VirtioBus({ ...busOptions, onEvent: (e) => events.push(e) });
  const t = new FakeVirtioTransport(options);
  const dev = t.createDevice();
  const kinds = (): string[] => events.map((e) => (e.type === 'error' || e.type === 'probe-failed' ? `${e.type}:${e.error.code}` : e.type));
  return { bus, t, dev, events, kinds };
}
