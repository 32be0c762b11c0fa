// The first module a system's worker runs (after tsx's loader when TypeScript is
// involved): it builds the system's runtime from the plan in workerData, loads the
// system's module and calls its function.
import { parentPort, workerData } from 'node:worker_threads';
import { PlatformError } from '../errors.js';
import type { SystemFunction } from '../types.js';
import type { SystemPlan } from './plan.js';
import { ThreadRuntime } from './thread-runtime.js';

const plan = workerData as SystemPlan;
const rt = new ThreadRuntime(plan, parentPort!);

async function load(): Promise<SystemFunction> {
  const mod = (await import(plan.entry)) as Record<string, unknown>;
  const fn = mod[plan.exportName];
  if (typeof fn !== 'function') {
    throw new PlatformError('BAD_CONFIG', `module ${plan.entry} has no function export '${plan.exportName}'`, { system: plan.name });
  }
  return fn as SystemFunction;
}

load().then(
  (fn) => rt.launch(fn),
  (e: unknown) => rt.crash(e, 'start-failed'),
);
