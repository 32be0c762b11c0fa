/**
 * Test helpers for `@x/platform` users and transport authors: a doorbell ping-pong
 * system and a runner that checks every handoff arrives exactly once (the lost-wake-up
 * stress), in either topology mode and any wait mode.
 *
 * @packageDocumentation
 */
export {
  PING_PONG_SYSTEM,
  runPingPong,
  type PingPongOptions,
  type PingPongPhaseOptions,
  type PingPongPhaseResult,
  type PingPongResult,
} from './ping-pong.js';
export { default as pingPongSystem, type PingPongConfig, type PingPongPhase, type PingPongReport } from './ping-pong-system.js';
