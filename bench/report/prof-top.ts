// `node --import tsx bench/report/prof-top.ts FILE.cpuprofile... [--top N]`: the functions
// with the most self time in V8 CPU profiles (node --cpu-prof, or Profiler.stop of the
// inspector), without a browser. Several files (e.g. one per worker) are listed one by one.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The parts of a V8 `.cpuprofile` this reads. */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

/** One line of the listing: a function (name, file, line) and its self time. */
export interface SelfTime {
  name: string;
  where: string;
  selfMs: number;
  share: number;
}

/**
 * Self time per function, most first. A sample's time is the delta to the next sample
 * (V8 records the delta before each sample); without samples, hit counts × the mean interval.
 */
export function selfTimes(p: CpuProfile): SelfTime[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const us = new Map<number, number>();
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    for (let i = 0; i < p.samples.length; i++) {
      const next = p.timeDeltas[i + 1] ?? 0;
      us.set(p.samples[i]!, (us.get(p.samples[i]!) ?? 0) + Math.max(0, next));
    }
  } else {
    const hits = p.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
    const per = hits > 0 ? (p.endTime - p.startTime) / hits : 0;
    for (const n of p.nodes) us.set(n.id, (n.hitCount ?? 0) * per);
  }
  const total = [...us.values()].reduce((a, b) => a + b, 0) || 1;
  const byFn = new Map<string, SelfTime>();
  for (const [id, t] of us) {
    const f = byId.get(id)?.callFrame;
    if (f === undefined) continue;
    const name = f.functionName || '(anonymous)';
    const where = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${name}\u0000${where}`;
    const e = byFn.get(key) ?? { name, where, selfMs: 0, share: 0 };
    e.selfMs += t / 1000;
    e.share += t / total;
    byFn.set(key, e);
  }
  return [...byFn.values()].sort((a, b) => b.selfMs - a.selfMs);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--top');
  const top = i >= 0 ? Number(args.splice(i, 2)[1]) : 20;
  if (args.length === 0) {
    console.error('usage: node --import tsx bench/report/prof-top.ts FILE.cpuprofile... [--top N]');
    process.exit(2);
  }
  for (const file of args) {
    const rows = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile).slice(0, top);
    console.log(`\n${file}\n| self ms | share | function | where |\n|---:|---:|---|---|`);
    for (const r of rows) console.log(`| ${r.selfMs.toFixed(1)} | ${(r.share * 100).toFixed(1)} % | ${r.name} | ${r.where} |`);
  }
}
