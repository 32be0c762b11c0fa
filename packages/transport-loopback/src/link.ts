import { MAX_BUS_ADDR } from '@x/vring';
import { LOOPBACK_CONFIG_MAX, LOOPBACK_MAX_QUEUES, LOOPBACK_REGS_SIZE } from './registers.js';

/**
 * Everything the two sides of a loopback link share, as plain data: two
 * SharedArrayBuffers and the numbers that describe them (what a device tree would say
 * about a virtio-mmio node and its DMA range). Structured-clonable, so it can be posted
 * to a worker; each side attaches to it on its own side, and nothing but the bytes of
 * the two buffers is shared.
 *
 * @public
 */
export interface LoopbackLink {
  /** The driver's memory region: rings and buffers, seen by the driver at {@link LoopbackLink.driverBase}. */
  readonly memory: SharedArrayBuffer;
  /** The register block: virtio-mmio registers and config space (page 0), the doorbell page (page 1). */
  readonly regs: SharedArrayBuffer;
  /** Bus address of the first byte of `memory`, as the driver puts it in descriptors. */
  readonly driverBase: number;
  /** Queues the register block carries. */
  readonly maxQueues: number;
  /** Bytes of device configuration space at `VIRTIO_MMIO.CONFIG`. */
  readonly configSize: number;
  /** The virtio device type the device side publishes in `DeviceID` (e.g. 7 for rpmsg). */
  readonly deviceId: number;
  /** The vendor the device side publishes in `VendorID`. */
  readonly vendorId: number;
}

/** Options of {@link createLoopbackLink}. @public */
export interface LoopbackLinkOptions {
  /** The virtio device type (VIRTIO 1.2 §5), 1..0xfffffffe, e.g. 7 for rpmsg. */
  deviceId: number;
  /** `VendorID`. Default 0x1af4. */
  vendorId?: number;
  /** Bytes of the driver's memory region (rings and buffers), a multiple of 4096. Default 1 MiB. */
  memorySize?: number;
  /** Bus address at which the driver sees its memory. Default 0x4000_0000. */
  driverBase?: number;
  /** Queues the register block carries, 1..32. Default 8 (the RFC's MAX_VQS). */
  maxQueues?: number;
  /** Bytes of device configuration space, 0..3840. Default 256. */
  configSize?: number;
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

/** Largest memory region: 1 GiB keeps every offset a small integer and the SAB allocatable. */
const MAX_MEMORY = 1 << 30;

/**
 * Creates the shared bytes of one loopback link (VIRTIO 1.2 §4.2.2 registers, all
 * zero: no device yet). Pass the result to {@link attachVhost} on the device side and
 * {@link attachVirtio} on the driver side — in this thread or, posted, in a worker.
 *
 * @public
 */
export function createLoopbackLink(options: LoopbackLinkOptions): LoopbackLink {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const deviceId = checkInt('options.deviceId', options.deviceId, 1, 0xfffffffe);
  const vendorId = checkInt('options.vendorId', options.vendorId ?? 0x1af4, 0, 0xffffffff);
  const memorySize = checkInt('options.memorySize', options.memorySize ?? 1 << 20, 4096, MAX_MEMORY);
  if (memorySize % 4096 !== 0) throw new RangeError(`options.memorySize must be a multiple of 4096, got ${memorySize}`);
  const driverBase = checkInt('options.driverBase', options.driverBase ?? 0x4000_0000, 0, MAX_BUS_ADDR - memorySize);
  if (driverBase % 4096 !== 0) throw new RangeError(`options.driverBase must be a multiple of 4096, got ${driverBase}`);
  const maxQueues = checkInt('options.maxQueues', options.maxQueues ?? 8, 1, LOOPBACK_MAX_QUEUES);
  const configSize = checkInt('options.configSize', options.configSize ?? 256, 0, LOOPBACK_CONFIG_MAX);
  return Object.freeze({
    memory: new SharedArrayBuffer(memorySize),
    regs: new SharedArrayBuffer(LOOPBACK_REGS_SIZE),
    driverBase,
    maxQueues,
    configSize,
    deviceId,
    vendorId,
  });
}

/**
 * Checks a link handed to one side (it may come from another thread, so nothing is
 * trusted) and returns a copy of its numbers with its two buffers. @internal
 */
export function checkLink(link: LoopbackLink): LoopbackLink {
  if (typeof link !== 'object' || link === null) throw new TypeError('link must be a LoopbackLink');
  if (!(link.memory instanceof SharedArrayBuffer)) throw new TypeError('link.memory must be a SharedArrayBuffer');
  if (!(link.regs instanceof SharedArrayBuffer)) throw new TypeError('link.regs must be a SharedArrayBuffer');
  if (link.regs.byteLength !== LOOPBACK_REGS_SIZE) throw new RangeError(`link.regs must be ${LOOPBACK_REGS_SIZE} bytes, got ${link.regs.byteLength}`);
  const size = link.memory.byteLength;
  if (size < 4096 || size > MAX_MEMORY || size % 4096 !== 0) throw new RangeError(`link.memory must be a multiple of 4096 bytes in 4096..${MAX_MEMORY}, got ${size}`);
  return Object.freeze({
    memory: link.memory,
    regs: link.regs,
    driverBase: checkInt('link.driverBase', link.driverBase, 0, MAX_BUS_ADDR - size),
    maxQueues: checkInt('link.maxQueues', link.maxQueues, 1, LOOPBACK_MAX_QUEUES),
    configSize: checkInt('link.configSize', link.configSize, 0, LOOPBACK_CONFIG_MAX),
    deviceId: checkInt('link.deviceId', link.deviceId, 1, 0xfffffffe),
    vendorId: checkInt('link.vendorId', link.vendorId, 0, 0xffffffff),
  });
}
