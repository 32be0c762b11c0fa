/**
 * Test doubles for `@x/vring` users: a ring pair over one memory seen at two bus
 * addresses (as Linux `tools/virtio/vringh_test.c` does), and a raw driver double that
 * writes any bytes into a ring, for hostile-ring tests.
 *
 * @packageDocumentation
 */
export { createRingPair, type RingPair, type RingPairOptions } from './ring-pair.js';
export { MockSplitQueue, type MockDesc } from './mock-split-queue.js';
