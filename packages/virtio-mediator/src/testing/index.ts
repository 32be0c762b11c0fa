/**
 * `@x/virtio-mediator/testing`: a virtio driver double for either side of a mediated
 * device.
 *
 * @packageDocumentation
 */
export { QueuePairDriver, type QueuePairDriverOptions } from './queue-pair-driver.js';
