// Writes a run's outputs: results.json, the SVG charts, and the generated section of
// docs/performance/README.md.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allCharts, type ChartSvg } from './charts.js';
import { replaceSection, resultsSection } from './docs.js';
import type { Results } from './results.js';

/** The subtitle every chart carries: where and how its figures were measured. */
export function chartSubtitle(r: Results): string {
  const m = r.machine;
  const how = r.quick ? 'quick run (1 run, indicative)' : `median of ${r.runs} runs`;
  return `${r.date.slice(0, 10)} · ${how} · ${m.cpu}, ${m.cores} cores · Node ${m.node}${m.git ? ` · ${m.git.commit.slice(0, 8)}${m.git.dirty ? '+' : ''}` : ''}`;
}

/** Draws every chart of a run into `dir` (created; stale `*.svg` there are removed first). */
export function writeCharts(r: Results, dir: string): ChartSvg[] {
  const charts = allCharts(r.rows, chartSubtitle(r));
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.svg')) rmSync(join(dir, f));
  for (const c of charts) writeFileSync(join(dir, c.file), c.svg);
  return charts;
}

/** Writes `results.json`. */
export function writeJson(r: Results, file: string): void {
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
}

/** Rewrites the marked results section of a README (the file must exist and carry the markers). */
export function writeDocsSection(r: Results, readme: string, charts: ReadonlyArray<{ file: string; title: string }>): void {
  if (!existsSync(readme)) throw new Error(`${readme} is missing`);
  const doc = readFileSync(readme, 'utf8');
  writeFileSync(readme, replaceSection(doc, resultsSection(r, charts)));
}

/**
 * A results directory: `results.json`, `charts/*.svg` and, when `readme` is set, the
 * generated section of that README.
 */
export function writeResultsDir(r: Results, dir: string, readme?: string): ChartSvg[] {
  mkdirSync(dir, { recursive: true });
  writeJson(r, join(dir, 'results.json'));
  const charts = writeCharts(r, join(dir, 'charts'));
  if (readme !== undefined) writeDocsSection(r, readme, charts);
  return charts;
}
