import type { VhostDevice } from '@x/vhost-core';

/** A used buffer as the peer driver sees it. @public */
export interface VhostPeerUsedBuffer {
  /** The length the device wrote into the used element. */
  readonly len: number;
  /** For a device-writable buffer: the first `len` bytes of it; otherwise empty. */
  readonly data: Uint8Array;
}

/**
 * The far end of a transport under test: the peer's virtio driver, reduced to the
 * actions {@link describeVhostTransportConformance} needs. Every action goes through
 * the transport's real wire (registers, scratchpads, memory, doorbells); nothing may
 * reach the device's objects directly.
 *
 * Queue actions use the queue index the device created; buffers hold at most the
 * `bufferSize` of the {@link VhostConformanceRequirements}.
 *
 * @public
 */
export interface VhostTransportPeer {
  /** Reads the device status as the peer sees it. */
  getStatus(): Promise<number>;
  /**
   * Writes the device status and lets the device see it (the device gets
   * SET_STATUS); resolves with the status read back afterwards (§3.1.1 step 6).
   */
  setStatus(status: number): Promise<number>;
  /** Resets the device (the device gets RESET) and forgets every ring and buffer. */
  reset(): Promise<void>;
  /** Reads the features the device published. */
  readDeviceFeatures(): Promise<bigint>;
  /** Writes the driver's features and finalizes them (the device gets FINALIZE_FEATURES). */
  writeDriverFeatures(features: bigint): Promise<void>;
  /** The queue size the device published for queue `index`; 0 when the queue does not exist. */
  queueSize(index: number): Promise<number>;
  /**
   * Builds a ring of `queueSize(index)` entries in peer memory (EVENT_IDX as given, to
   * match what was negotiated) and hands it to the device; rejects when the device refuses.
   */
  activateQueue(index: number, options: { readonly eventIdx: boolean }): Promise<void>;
  /** A copy of the bytes of queue `index`'s ring (descriptors, available and used rings). */
  readRing(index: number): Uint8Array;
  /** Adds a device-readable buffer holding `data`; false when there is no room. Published by kick. */
  addOutbuf(index: number, data: Uint8Array): boolean;
  /** Adds a device-writable buffer of `len` bytes; false when there is no room. Published by kick. */
  addInbuf(index: number, len: number): boolean;
  /** Publishes added buffers, notifies the device if its ring asks for it, and lets the device run. */
  kick(index: number): Promise<void>;
  /** Takes the next used buffer of queue `index`, or undefined. */
  getUsed(index: number): VhostPeerUsedBuffer | undefined;
  /** Used-buffer interrupts the peer received for queue `index`. */
  interrupts(index: number): number;
  /** Reserves `len` bytes of peer memory the device can reach; returns their peer bus address. */
  alloc(len: number): number;
  /** Writes peer memory directly (as the peer's CPU). */
  writeMemory(addr: number, data: Uint8Array): void;
  /** Reads peer memory directly (as the peer's CPU). */
  readMemory(addr: number, len: number): Uint8Array;
  /** A peer bus address the device cannot reach (just past what the transport exposes). */
  readonly unreachableAddress: number;
  /** Waits until everything in flight between the two sides was delivered and handled. */
  settle(): Promise<void>;
}

/**
 * What a {@link VhostTransportFactory} returns: the device the transport created (not
 * yet registered on any bus, with the ops it implements) and a handle on the far-end
 * driver.
 *
 * @public
 */
export interface VhostTransportHarness {
  /** The transport's device. The suite sets its id if unset and registers it on its own bus. */
  readonly device: VhostDevice;
  /** The far end. */
  readonly peer: VhostTransportPeer;
  /** Frees what the harness holds (timers, workers, memory). */
  dispose?(): void | Promise<void>;
}

/** What the suite needs from a harness. @public */
export interface VhostConformanceRequirements {
  /** Queues the device creates. */
  readonly queues: number;
  /** Largest queue size the device asks for. */
  readonly queueSize: number;
  /** Largest buffer the peer must be able to hold per descriptor. */
  readonly bufferSize: number;
}

/** Makes a fresh transport and far end for one test. @public */
export type VhostTransportFactory = (requirements: VhostConformanceRequirements) => VhostTransportHarness | Promise<VhostTransportHarness>;
