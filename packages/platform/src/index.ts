/**
 * `@x/platform`: where systems run. A {@link Topology} declares systems, the shared
 * memory regions they see (each at its own bus address) and the doorbell / interrupt
 * lines between them, and runs the same system code either all in one thread on a
 * deterministic scheduler or each in its own `worker_thread`. Systems share nothing but
 * bytes: `SharedArrayBuffer` regions (as `@x/vring` `ArrayBufferMemory`), and counter
 * words in a control region rung with `Atomics.add` + `Atomics.notify`.
 *
 * @packageDocumentation
 */
export { PlatformError, isPlatformError, type PlatformErrorCode, type PlatformErrorOptions } from './errors.js';
export {
  CONTROL_LAYOUT,
  CONTROL_MAGIC,
  CONTROL_VERSION,
  DOWN_REASON,
  PEER_STATUS_LINE,
  SYSTEM_STATUS,
  controlRegionSize,
  lineBlockOffset,
  systemBlockOffset,
  type DownReason,
  type SystemStatus,
} from './control.js';
export { Topology } from './topology.js';
export { LocalLine, systemClock, type Clock, type LocalLineListener } from './local.js';
export type {
  CrashEvent,
  DeterministicScheduler,
  ExitEvent,
  Line,
  LineHandler,
  LineStats,
  ListenOptions,
  Listener,
  LogEvent,
  PeerDownEvent,
  RegionAttachment,
  RegionSpec,
  ReportEvent,
  RunOptions,
  RunningEvent,
  SleepOptions,
  StartOptions,
  SystemContext,
  SystemFunction,
  SystemSpec,
  TopologyConfig,
  TopologyEvent,
  TopologyEventBase,
  TopologyMode,
  TopologyState,
  WaitForEventOptions,
  WaitMode,
  WaitModeOptions,
  WaitOptions,
  WaitSyncOptions,
  WaitSyncResult,
} from './types.js';
