import { runPingPong } from '@x/platform/testing';
const sets = {
  a: [{ mode: 'poll', budgetUs: 1, style: 'listen' }],
  b: [{ mode: 'poll', budgetUs: 0 }, { mode: 'poll', budgetUs: 1, style: 'listen' }],
  c: [{ mode: 'poll', budgetUs: 1, style: 'listen' }, { mode: 'poll', budgetUs: 5 }],
  d: [{ mode: 'sleep', style: 'listen' }, { mode: 'poll', budgetUs: 5 }],
};
for (const [k, phases] of Object.entries(sets)) {
  try {
    const r = await runPingPong({ rounds: 1000, phases, timeoutMs: 3000 });
    console.log(k, 'ok', r.phases.map((p) => p.usPerRoundTrip.toFixed(1)));
  } catch (e) { console.log(k, 'FAIL', e.message); }
}
