import type { GuestMemory, Virtqueue } from '@x/vring';
import { VirtioError } from './errors.js';

/**
 * A value or a promise of it. Every {@link VirtioConfigOps} op may answer either way;
 * core always awaits.
 *
 * @public
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * One queue asked of {@link VirtioConfigOps.findVqs} (the `names[]`, `callbacks[]` and
 * sizes of Linux `virtio_find_vqs`).
 *
 * @public
 */
export interface VirtqueueSpec {
  /** Queue name (Linux `names[i]`), e.g. `"input"` / `"output"` for rpmsg. */
  readonly name: string;
  /**
   * Used-buffer callback (Linux `vq_callback_t`), run from the transport's interrupt
   * handler through {@link @x/vring#Virtqueue.interrupt}. Must not block.
   */
  readonly callback?: (vq: Virtqueue) => void;
  /**
   * Requested queue size, a power of two. The transport answers with this size, or a
   * smaller power of two when the device's maximum is smaller; never larger. Default:
   * the device's maximum.
   */
  readonly size?: number;
}

/**
 * The ring features negotiated for the device, which {@link VirtioConfigOps.findVqs}
 * builds every queue with.
 *
 * @public
 */
export interface VirtioRingOptions {
  /** VIRTIO_F_EVENT_IDX (29) was negotiated. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC (28) was negotiated. */
  readonly indirect: boolean;
}

/**
 * Memory the transport declares for core's buffer allocator when it has no
 * {@link VirtioConfigOps.allocBuffer}: `[addr, addr + size)` must be reachable by the
 * device at those same bus addresses, and `memory.view` must give the driver a
 * zero-copy view of it (like memory from Linux `dma_alloc_coherent`).
 *
 * @public
 */
export interface VirtioDmaRegion {
  /** The driver's view of the memory. Must implement `view` for the whole region. */
  readonly memory: GuestMemory;
  /** First bus address of the region. */
  readonly addr: number;
  /** Size of the region in bytes. */
  readonly size: number;
}

/**
 * A buffer the device can reach (RFC patch 12, `virtio_config_ops.alloc_buffer`).
 *
 * @public
 */
export interface VirtioBuffer {
  /** The bus address the device uses: put it in descriptors. A multiple of 16. */
  readonly addr: number;
  /** Size in bytes, as asked. */
  readonly size: number;
  /** A zero-copy view of the buffer for the driver, `size` bytes long. */
  readonly view: Uint8Array;
}

/**
 * The transport contract (Linux `struct virtio_config_ops`, `include/linux/virtio_config.h`):
 * what a transport (PCIe endpoint, NTB, virtio-mmio, loopback, …) implements so that
 * `@x/virtio-core` can drive a device through it. This is the one place the contract is
 * documented; `README.md` repeats it.
 *
 * **One ops object per device.** Ops take no device argument; the transport binds the
 * ops object to one device when it creates it.
 *
 * **Every op may be asynchronous.** Each answers `T` or `Promise<T>`: transports like
 * the RFC's PCIe endpoint answer commands by writing a command byte and polling a
 * status register (RFC §2.2). Core awaits every answer, bounded by the bus's
 * `opTimeoutMs` (a `TIMEOUT` error), and never calls two lifecycle ops of one device
 * concurrently. An op that throws or rejects becomes a `TRANSPORT` error with the
 * original as `cause`, unless it already is a `VirtioError`.
 *
 * **Core owns the sequence.** The §3.1 initialisation order, the status machine and
 * feature negotiation live in core. A transport moves values to and from its device
 * and does not second-guess them, except that it never claims a feature bit the
 * device did not offer.
 *
 * **Optional ops have core fallbacks:** no `generation` → a config read is a single
 * `getConfig`; no `allocBuffer` / `freeBuffer` → core allocates from
 * {@link VirtioConfigOps.dmaRegion} (first fit, bounded); no `transportFeatures` → core
 * offers all of {@link CORE_TRANSPORT_FEATURES}.
 *
 * **Validated at registration** (as Linux `ntb_dev_ops_is_valid`): every required op is
 * a function, optional ops are functions when present, `allocBuffer` and `freeBuffer`
 * come as a pair, and either that pair or `dmaRegion` is present. Anything else is an
 * `INVALID_OPS` error from {@link VirtioBus.registerDevice}.
 *
 * @public
 */
export interface VirtioConfigOps {
  /**
   * The device's 64 feature bits (Linux `get_features`), in `[0, 2^64)`. Must be the
   * same on every read until the device is reset and, for a real device, across resets.
   */
  getFeatures(): MaybePromise<bigint>;
  /**
   * Writes the features the driver accepted (Linux `finalize_features`; RFC command
   * FINALIZE_FEATURES). Core guarantees `driverFeatures` ⊆ {@link VirtioConfigOps.getFeatures}.
   */
  finalizeFeatures(driverFeatures: bigint): MaybePromise<void>;
  /** Reads the device status byte (Linux `get_status`), including DEVICE_NEEDS_RESET. */
  getStatus(): MaybePromise<number>;
  /**
   * Writes the device status byte (Linux `set_status`; RFC command SET_STATUS). Never
   * 0: core resets through {@link VirtioConfigOps.reset}.
   */
  setStatus(status: number): MaybePromise<void>;
  /**
   * Resets the device (Linux `reset`; RFC command RESET). Resolves once the device
   * reads status 0 and has stopped using its queues; queues stay allocated until
   * {@link VirtioConfigOps.delVqs}.
   */
  reset(): MaybePromise<void>;
  /**
   * Creates one virtqueue per spec, in order (Linux `find_vqs`). The transport owns
   * the ring memory, tells the device where the rings are, builds each `Virtqueue`
   * with `index` = its position and `name` = the spec's name, the negotiated `ring`
   * options, a `notify` that rings its doorbell, and calls `vq.interrupt()` from its
   * used-buffer interrupt. Called after FEATURES_OK and before DRIVER_OK.
   */
  findVqs(specs: readonly VirtqueueSpec[], ring: VirtioRingOptions): MaybePromise<Virtqueue[]>;
  /** Frees every queue made by findVqs (Linux `del_vqs`). Called after a reset. */
  delVqs(): MaybePromise<void>;
  /** Copies `dst.length` bytes of device configuration space from `offset` (Linux `get`). */
  getConfig(offset: number, dst: Uint8Array): MaybePromise<void>;
  /** Copies `src` into device configuration space at `offset` (Linux `set`). */
  setConfig(offset: number, src: Uint8Array): MaybePromise<void>;
  /**
   * Optional. The configuration generation counter (Linux `generation`; VIRTIO 1.2
   * §2.5.1, virtio-pci `config_generation` §4.1.4.3, virtio-mmio `ConfigGeneration`):
   * changes whenever the device changes configuration space. Core reads it around
   * each config read and retries until it is stable.
   */
  generation?(): MaybePromise<number>;
  /**
   * Optional, paired with {@link VirtioConfigOps.freeBuffer} (RFC patch 12,
   * `alloc_buffer`): a buffer the device can reach, for transports whose peer sees
   * only a window of the driver's memory (NTB). `addr` must be a multiple of 16.
   */
  allocBuffer?(size: number): MaybePromise<VirtioBuffer>;
  /** Optional, paired with allocBuffer (RFC patch 12, `free_buffer`). */
  freeBuffer?(buf: VirtioBuffer): MaybePromise<void>;
  /**
   * Optional filter over the transport bits core would accept ({@link CORE_TRANSPORT_FEATURES}),
   * like Linux `vring_transport_features()`: returns the subset this transport can
   * carry. Bits it adds are ignored.
   */
  transportFeatures?(bits: bigint): MaybePromise<bigint>;
  /**
   * Memory for core's fallback buffer allocator; required when
   * {@link VirtioConfigOps.allocBuffer} is absent, ignored when it is present.
   */
  readonly dmaRegion?: VirtioDmaRegion;
}

const REQUIRED = [
  'getFeatures',
  'finalizeFeatures',
  'getStatus',
  'setStatus',
  'reset',
  'findVqs',
  'delVqs',
  'getConfig',
  'setConfig',
] as const;
const OPTIONAL = ['generation', 'allocBuffer', 'freeBuffer', 'transportFeatures'] as const;

/**
 * Validates a {@link VirtioConfigOps} object the way Linux `ntb_dev_ops_is_valid`
 * validates NTB ops: required ops present, optional ops functions when present,
 * paired ops both or neither, and a buffer source (allocBuffer or dmaRegion). Throws a
 * {@link VirtioError} `INVALID_OPS` naming every problem; returns the ops otherwise.
 *
 * @public
 */
export function checkVirtioConfigOps(ops: VirtioConfigOps): VirtioConfigOps {
  const problems: string[] = [];
  if (typeof ops !== 'object' || ops === null) {
    throw new VirtioError('INVALID_OPS', `ops must be an object, got ${ops === null ? 'null' : typeof ops}`);
  }
  const rec = ops as unknown as Record<string, unknown>;
  for (const name of REQUIRED) {
    if (typeof rec[name] !== 'function') problems.push(`required op ${name} is ${rec[name] === undefined ? 'missing' : 'not a function'}`);
  }
  for (const name of OPTIONAL) {
    if (rec[name] !== undefined && typeof rec[name] !== 'function') problems.push(`optional op ${name} is not a function`);
  }
  const hasAlloc = rec['allocBuffer'] !== undefined;
  const hasFree = rec['freeBuffer'] !== undefined;
  if (hasAlloc !== hasFree) problems.push('allocBuffer and freeBuffer are paired: give both or neither');
  if (!hasAlloc) {
    const r = ops.dmaRegion;
    if (r === undefined) {
      problems.push('no buffer source: give allocBuffer/freeBuffer or a dmaRegion');
    } else if (typeof r !== 'object' || r === null) {
      problems.push('dmaRegion must be an object');
    } else {
      const okNum = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
      if (!okNum(r.addr)) problems.push(`dmaRegion.addr must be an integer in [0, 2^53-1], got ${String(r.addr)}`);
      if (!okNum(r.size) || r.size === 0) problems.push(`dmaRegion.size must be a positive integer, got ${String(r.size)}`);
      const mem = r.memory as GuestMemory | undefined;
      if (typeof mem !== 'object' || mem === null || typeof mem.contains !== 'function') {
        problems.push('dmaRegion.memory must be a GuestMemory');
      } else if (typeof mem.view !== 'function') {
        problems.push('dmaRegion.memory has no view(): core cannot give the driver zero-copy buffers');
      } else if (okNum(r.addr) && okNum(r.size) && r.size > 0) {
        if (!mem.contains(r.addr, r.size)) {
          problems.push(`dmaRegion [0x${r.addr.toString(16)}, +${r.size}) is not inside dmaRegion.memory`);
        } else if (mem.view(r.addr, r.size) === undefined) {
          problems.push('dmaRegion.memory.view() gives no view of the region');
        }
      }
    }
  }
  if (problems.length > 0) throw new VirtioError('INVALID_OPS', problems.join('; '));
  return ops;
}
