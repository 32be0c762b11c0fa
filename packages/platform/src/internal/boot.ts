// Starting a system's worker. Node 20 cannot run TypeScript, so when the runtime or the
// system's module is a .ts file the worker first registers tsx's ESM loader (tsx is an
// optional peer dependency, resolved from this package), then imports the runtime.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PlatformError } from '../errors.js';
import type { SystemPlan } from './plan.js';

/** True when this package runs from its TypeScript sources (the "@x/source" condition). */
const fromSource = import.meta.url.endsWith('.ts');
const workerMain = new URL(`./worker-main${fromSource ? '.ts' : '.js'}`, import.meta.url).href;

const TS_MODULE = /\.(?:ts|mts|cts|tsx)(?:[?#].*)?$/;

let tsxApi: string | undefined;

/** tsx's ESM API (`tsx/esm/api`'s import entry; require.resolve would give the CJS one). */
function tsxEsmApi(): string {
  if (tsxApi !== undefined) return tsxApi;
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  } catch (e) {
    throw new PlatformError('BAD_CONFIG', 'running a TypeScript system module in a worker needs tsx (an optional peer dependency of @x/platform): npm install tsx', { cause: e });
  }
  return (tsxApi = pathToFileURL(join(dirname(pkg), 'dist/esm/api/index.mjs')).href);
}

/** Default worker options: the source condition when this package or its owner uses it. */
export function defaultExecArgv(): string[] {
  const inherited = process.execArgv.some((a) => a === '--conditions=@x/source' || a === '-C=@x/source');
  return fromSource || inherited ? ['--conditions=@x/source'] : [];
}

export function startWorker(plan: SystemPlan, execArgv: readonly string[]): Worker {
  const needsTsx = fromSource || TS_MODULE.test(plan.entry);
  const body = needsTsx
    ? `import(${JSON.stringify(tsxEsmApi())}).then((m) => { m.register(); return import(${JSON.stringify(workerMain)}); })`
    : `import(${JSON.stringify(workerMain)})`;
  // A failure to load the runtime itself becomes the worker's uncaught error.
  const boot = `${body}.catch((e) => { process.nextTick(() => { throw e; }); });`;
  return new Worker(boot, { eval: true, workerData: plan, execArgv: [...execArgv], name: `@x/platform ${plan.name}` });
}
