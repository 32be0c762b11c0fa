/**
 * Test doubles for `@x/rpmsg`: both sides of an rpmsg link in one thread over one
 * memory, with doorbells as queued tasks, and raw injection for hostile-peer tests.
 *
 * @packageDocumentation
 */
export {
  createRpmsgPair,
  createRpmsgTransportPair,
  type RpmsgPair,
  type RpmsgPairOptions,
  type RpmsgTransportPair,
  type RpmsgTransportPairOptions,
  type RpmsgTransportPairStats,
} from './transport-pair.js';
