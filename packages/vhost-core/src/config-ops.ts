import { VhostError } from './errors.js';
import type { VhostVirtqueue } from './virtqueue.js';

/**
 * A virtqueue callback (the RFC's `vhost_vq_callback_t`): run by core when the peer
 * kicks the queue, the device is ready and callbacks are enabled. It may return a
 * promise; a rejection is recorded on the queue, never left unhandled.
 *
 * @public
 */
export type VhostVqCallback = (vq: VhostVirtqueue) => void;

/**
 * One queue a vhost driver asks for (the `names[]` / `callbacks[]` / `num_bufs`
 * arguments of the RFC's `vhost_create_vqs`).
 *
 * @public
 */
export interface VhostVqSpec {
  /** Queue name, for traces and errors. */
  readonly name: string;
  /** Run when the peer kicks this queue; omit for a queue the driver only polls. */
  readonly callback?: VhostVqCallback;
  /**
   * Queue size (descriptors): a power of two ≤ 32768 (VIRTIO 1.2 §2.7). Default: the
   * device's configured `queueSize` (the configuration tree's `queue_size`, 256 unless set).
   */
  readonly size?: number;
}

/**
 * The transport contract of a vhost device: the RFC's `struct vhost_config_ops`
 * (patch 3), documented in one place. A transport (PCIe endpoint function, NTB client,
 * loopback, a plugin) implements it for each device it creates and passes it to
 * `new VhostDevice(ops)`. Drivers never call these directly; they call the
 * {@link VhostDevice} wrappers, which check arguments, state and results.
 *
 * Every op may answer synchronously or with a promise. Ops that touch the peer's
 * memory throw (or reject with) a `BUS_ERROR` for an address the device cannot reach;
 * core turns a `VringError('BUS_ERROR')` from a `GuestMemory` into a
 * {@link VhostError} with the same code.
 *
 * The other direction — the peer writing status, finalizing features, resetting,
 * activating a queue, kicking — reaches core as calls the transport makes:
 * {@link VhostDevice.handleEvent} (SET_STATUS, FINALIZE_FEATURES with the driver's
 * features, RESET), {@link VhostVirtqueue.attach} / {@link VhostVirtqueue.detach}
 * (queue activated at an address / deactivated) and {@link VhostVirtqueue.kicked}
 * (doorbell). A transport reports every status write the peer makes, in order, and
 * FINALIZE_FEATURES before the SET_STATUS that carries FEATURES_OK; one whose wire has
 * no separate finalize command sends it when it sees FEATURES_OK written.
 *
 * Registration validates the table ({@link validateVhostConfigOps}) the way Linux's
 * `ntb_dev_ops_is_valid` does: required ops present, optional ops in pairs.
 *
 * @public
 */
export interface VhostConfigOps {
  /**
   * Creates the device's queues (RFC `create_vqs`): one {@link VhostVirtqueue} per spec,
   * in order, with `index` = position and `num` = `spec.size` (core always fills it),
   * and publishes each queue's size to the peer (e.g. the `num_buffers` register).
   * The queues start detached: the transport attaches a ring when the peer activates it.
   */
  createVqs(specs: readonly (VhostVqSpec & { readonly size: number })[]): VhostVirtqueue[] | Promise<VhostVirtqueue[]>;
  /** Deletes every queue createVqs made and withdraws them from the peer (RFC `del_vqs`). */
  delVqs(): void | Promise<void>;
  /**
   * Copies `dst.length` bytes of the peer's memory at its bus address `peerAddr` into
   * `dst` (RFC `read` / `vhost_read`).
   */
  read(dst: Uint8Array, peerAddr: number): void | Promise<void>;
  /** Copies `src` into the peer's memory at its bus address `peerAddr` (RFC `write` / `vhost_write`). */
  write(peerAddr: number, src: Uint8Array): void | Promise<void>;
  /** Publishes the device features the peer will read (RFC `set_features`, e.g. `host_features`). */
  setFeatures(features: bigint): void | Promise<void>;
  /** Reads the device status as the peer last wrote it (RFC `get_status`). */
  getStatus(): number | Promise<number>;
  /**
   * Writes the device status the peer reads back (RFC `set_status`): core uses it to
   * refuse FEATURES_OK (§3.1.1 step 6), to raise NEEDS_RESET and to clear the status on
   * reset.
   */
  setStatus(status: number): void | Promise<void>;
  /**
   * Optional, paired with writeConfig: reads `dst.length` bytes of the device-specific
   * configuration space (VIRTIO 1.2 §2.5) at `offset`. Without the pair,
   * {@link VhostDevice.readConfig} fails with `NOT_SUPPORTED`.
   */
  readConfig?(offset: number, dst: Uint8Array): void | Promise<void>;
  /** Optional, paired with readConfig: writes `src` into the device-specific configuration space at `offset`. */
  writeConfig?(offset: number, src: Uint8Array): void | Promise<void>;
}

/** The ops every transport must provide. */
const REQUIRED_OPS = ['createVqs', 'delVqs', 'read', 'write', 'setFeatures', 'getStatus', 'setStatus'] as const;
/** Ops that come in pairs: both or neither (like ntb_dev_ops_is_valid's mw_set_trans / mw_clear_trans). */
const PAIRED_OPS: ReadonlyArray<readonly [string, string]> = [
  ['createVqs', 'delVqs'],
  ['read', 'write'],
  ['getStatus', 'setStatus'],
  ['readConfig', 'writeConfig'],
];

/**
 * Checks a {@link VhostConfigOps} table the way Linux's `ntb_dev_ops_is_valid` checks
 * `ntb_dev_ops`: every required op present, every optional op with its pair, every op
 * a function. Throws a {@link VhostError} with code `INVALID_OPS` naming the op.
 *
 * @public
 */
export function validateVhostConfigOps(ops: unknown): asserts ops is VhostConfigOps {
  if (typeof ops !== 'object' || ops === null) {
    throw new VhostError('INVALID_OPS', `ops must be an object, got ${ops === null ? 'null' : typeof ops}`);
  }
  const o = ops as Record<string, unknown>;
  for (const [a, b] of PAIRED_OPS) {
    const hasA = o[a] !== undefined;
    const hasB = o[b] !== undefined;
    if (hasA !== hasB) {
      throw new VhostError('INVALID_OPS', `ops.${hasA ? a : b} is present without its pair ops.${hasA ? b : a}`);
    }
  }
  for (const name of REQUIRED_OPS) {
    if (o[name] === undefined) throw new VhostError('INVALID_OPS', `ops.${name} is required`);
  }
  for (const [a, b] of PAIRED_OPS) {
    for (const name of [a, b]) {
      if (o[name] !== undefined && typeof o[name] !== 'function') {
        throw new VhostError('INVALID_OPS', `ops.${name} must be a function, got ${typeof o[name]}`);
      }
    }
  }
}
