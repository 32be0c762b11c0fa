/**
 * One buffer lent by an {@link RpmsgTransport}: a TX buffer to fill, or a received RX
 * buffer. The bytes may be a zero-copy view of shared memory; they are valid only until
 * the buffer is given back (sent, released).
 *
 * @public
 */
export interface RpmsgBuffer {
  /**
   * The whole buffer, the 16-byte header included. For TX its length is the capacity
   * (header + largest payload); for RX it holds the received bytes from offset 0.
   */
  readonly bytes: Uint8Array;
  /** `bytes.subarray(16)`: where the payload goes (zero-copy senders fill this). */
  readonly payload: Uint8Array;
}

/**
 * What an {@link RpmsgTransport} calls back into: the rpmsg core
 * ({@link RpmsgVirtproc}) gives the transport one of these in
 * {@link RpmsgTransport.attach}.
 *
 * @public
 */
export interface RpmsgTransportSink {
  /**
   * A buffer arrived; `len` is its used length (bytes the peer wrote or offered). The
   * core always gives the buffer back with {@link RpmsgTransport.releaseRxBuffer},
   * at once or later (held buffers). `len` may exceed `buf.bytes.length`: the core then
   * drops the message (the transport must not read more than the buffer holds).
   */
  receive(buf: RpmsgBuffer, len: number): void;
  /** TX buffers may be free again (sent after {@link RpmsgTransport.setTxWaiting}(true)). */
  txReady(): void;
  /** The transport hit a problem it cannot hide (a broken ring); the core reports it. */
  fault(error: unknown): void;
}

/**
 * The transport-facing contract of the rpmsg core: how {@link RpmsgVirtproc} gets TX
 * buffers, sends them, and gives RX buffers back. Linux hides the same split inside
 * `virtio_rpmsg_bus.c` (`get_a_tx_buf`, `virtqueue_add_outbuf` + kick,
 * `rpmsg_recv_done`); here the driver-role ring transport
 * ({@link RpmsgVirtqueueTransport}), the device-role one ({@link RpmsgVringhTransport})
 * and any third-party link implement it. Only bytes move through it.
 *
 * @public
 */
export interface RpmsgTransport {
  /** Negotiated rpmsg feature bits as a mask (bit {@link VIRTIO_RPMSG_F}.NS, .AS). */
  readonly features: number;
  /** Bytes of the largest TX buffer, header included (512 by default). */
  readonly txBufferSize: number;
  /** Bytes of an RX buffer, header included (512 by default); longer messages are dropped. */
  readonly rxBufferSize: number;
  /** Connects the core. Called once, before any other call; received buffers go to `sink`. */
  attach(sink: RpmsgTransportSink): void;
  /** Disconnects the core: no more sink calls. Buffers still lent are forgotten. */
  detach(): void;
  /** Takes a free TX buffer, or returns undefined at once when none is free. */
  getTxBuffer(): RpmsgBuffer | undefined;
  /** Sends a TX buffer filled with `len` bytes (header included) and notifies the peer if it wants. */
  sendTxBuffer(buf: RpmsgBuffer, len: number): void;
  /** Gives back a TX buffer that was not sent. */
  releaseTxBuffer(buf: RpmsgBuffer): void;
  /** Gives back a received buffer so the peer can use it again. */
  releaseRxBuffer(buf: RpmsgBuffer): void;
  /**
   * While true, call {@link RpmsgTransportSink.txReady} when TX buffers come back
   * (Linux enables the TX queue's callback only while a sender sleeps).
   */
  setTxWaiting(waiting: boolean): void;
}
