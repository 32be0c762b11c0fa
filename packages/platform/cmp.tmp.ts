import { Topology } from '@x/platform';
import { runPingPong } from '@x/platform/testing';
const rounds = 20000;
async function bare(): Promise<number> {
  const entry = new URL('./bench/bare-ping-pong-system.ts', import.meta.url);
  const regions = [{ region: 'words', base: 0 }];
  const t = new Topology({ mode: 'threads', regions: [{ name: 'words', size: 128 }], systems: [
    { name: 'ping', entry, regions, config: { role: 'ping', rounds } }, { name: 'pong', entry, regions, config: { role: 'pong', rounds } }] });
  await t.start();
  const e = await t.waitForEvent((x) => x.type === 'report' || x.type === 'crash');
  await t.stop();
  return ((e as any).data.ms * 1000) / rounds;
}
for (let k = 0; k < 3; k++) {
  for (const ph of [{ style: 'sync' }, { mode: 'sleep' }, { mode: 'poll' }, {mode: 'adaptive', spinUs: 5}] as const) console.log(JSON.stringify(ph), (await runPingPong({ rounds, phases: [ph] })).phases[0]!.usPerRoundTrip.toFixed(2)); console.log('bare', (await bare()).toFixed(2));
}
