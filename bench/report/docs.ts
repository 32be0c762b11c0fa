// The generated part of docs/performance/README.md: the marked section between
// `<!-- results:start -->` and `<!-- results:end -->`, rewritten from a results JSON by a
// full `pnpm bench` run and by `pnpm bench:charts`.
import { basename } from 'node:path';
import { fmtMs, fmtNum, fmtRatio, metricLabel, table, verdict, type ResultRow } from './format.js';
import { machineLine, type Results } from './results.js';

export const RESULTS_START = '<!-- results:start -->';
export const RESULTS_END = '<!-- results:end -->';

/** The targets of issue 7, as the issue states them (the rows carry the checkable form). */
export const TARGETS: ReadonlyArray<readonly [id: string, text: string]> = [
  ['P1', 'split ring across two workers, 64-byte buffers: ≥ 20× postMessage (stretch: with batching, ≥ 21 M buffers/s)'],
  ['P2', 'rpmsg 64-byte payload across two workers: ≥ 5 M messages/s and ≥ 12× postMessage'],
  ['P3', 'rpmsg round trip with the polling doorbell: ≤ 1 µs'],
  ['P4', 'sleeping doorbell: round trip ≤ 1.2× the bare Atomics ping-pong; streaming ≤ 0.01 notifications per message'],
  ['P5', 'CPU time per streamed message ≤ 0.3 µs'],
  ['P6', '64 KiB payloads: zero-copy ≥ 10 GB/s; with one copy ≥ postMessage with a copy'],
  ['P7', 'use case 1 and use case 2 end to end ≥ 1 M messages/s with the doorbell'],
];

/** The `pnpm bench` filter that runs exactly one bench file: its file name. */
export function filterOf(file: string): string {
  return basename(file);
}

function targetId(id: string): string {
  return /^P\d+/.exec(id)?.[0] ?? id;
}

/** The targets P1–P7 with every row that carries one: measured, needed, verdict ("not measured" when none does). */
export function targetsTable(rows: readonly ResultRow[]): string {
  const lines = ['| target | the issue asks | row | measured | needed | verdict |', '|---|---|---|---:|---|---|'];
  const ids = [...TARGETS.map(([id]) => id)];
  for (const r of rows) if (r.target && !ids.includes(targetId(r.target.id))) ids.push(targetId(r.target.id));
  for (const id of ids) {
    const text = TARGETS.find(([t]) => t === id)?.[1] ?? '';
    const hits = rows.filter((r) => r.target && targetId(r.target.id) === id);
    if (hits.length === 0) {
      lines.push(`| ${id} | ${text} | — | — | — | not measured |`);
      continue;
    }
    hits.forEach((r, i) => {
      const v = r.verdict ?? verdict(r)!;
      const what = (x: number): string =>
        v.of === 'ratio' ? `${fmtRatio(x)} ${r.baseline ?? 'the baseline'}` : v.of === 'metric' ? `${fmtNum(x)} ${metricLabel(v.metric ?? '?')}` : `${fmtNum(x)} ${r.unit}`;
      const measured = v.measured === null ? '—' : what(v.measured);
      const needed = `${v.id} ${v.op === '>=' ? '≥' : '≤'} ${v.of === 'ratio' ? `${fmtNum(v.threshold)}×` : v.of === 'metric' ? `${fmtNum(v.threshold)} ${metricLabel(v.metric ?? '?')}` : `${fmtNum(v.threshold)} ${r.unit}`}`;
      const verdictText = v.met === null ? v.text.replace(/^.*: /, '') : `**${v.met ? 'met' : 'missed'}**`;
      lines.push(`| ${i === 0 ? id : ''} | ${i === 0 ? text : ''} | ${r.name.replace(/\|/g, '\\|')} | ${measured} | ${needed} | ${verdictText} |`);
    });
  }
  return lines.join('\n');
}

/** The whole generated section, markers included. `charts` are file names under `charts/`. */
export function resultsSection(r: Results, charts: ReadonlyArray<{ file: string; title: string }>): string {
  const m = r.machine;
  const date = r.date.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
  const commit = m.git ? `commit \`${m.git.commit.slice(0, 12)}\`${m.git.dirty ? ' (with uncommitted changes)' : ''}` : 'outside git';
  const out: string[] = [
    RESULTS_START,
    '<!-- Generated from results.json by `pnpm bench` (full run) or `pnpm bench:charts`; edits here are overwritten. -->',
    '',
    `Measured ${date} at ${commit}: ${r.quick ? 'a **quick** run (1 run per row, no warm-up: indicative only)' : `median of ${r.runs} runs per row after a warm-up run`}; the suite took ${fmtMs(r.durationMs)}. Raw figures: [results.json](results.json).`,
    '',
    '### Machine',
    '',
    '| | |',
    '|---|---|',
    `| CPU | ${m.cpu}, ${m.cores} logical cores${m.speedMHz ? ` @ ${m.speedMHz} MHz` : ''} |`,
    `| memory | ${m.memoryGiB} GiB |`,
    `| OS | ${m.os.type} ${m.os.release} (${m.os.platform} ${m.os.arch}) |`,
    `| Node | ${m.node} (V8 ${m.v8}) |`,
    `| load average 1 / 5 / 15 min | before ${m.loadavgBefore.join(' / ')}; after ${m.loadavgAfter.join(' / ')} |`,
    '',
    '### Targets',
    '',
    targetsTable(r.rows),
    '',
  ];
  if (charts.length > 0) {
    out.push('### Charts', '');
    for (const c of charts) out.push(`![${c.title}](charts/${c.file})`, '');
  }
  out.push('### Every row, by bench file', '');
  for (const f of r.files) {
    const rows = r.rows.filter((row) => row.file === f.file);
    out.push(`#### \`${f.file}\` (${fmtMs(f.ms)})`, '', `Reproduce: \`pnpm bench ${filterOf(f.file)}\` (add \`--quick\` for a short run).`, '');
    if (f.error !== undefined) out.push(`**Failed:** ${f.error.split('\n')[0]}`, '');
    if (rows.length > 0) out.push(table(rows), '');
  }
  out.push(`_Machine: ${machineLine(m)}._`, '', RESULTS_END);
  return out.join('\n');
}

/** Replaces the marked section of a document; throws when the markers are missing or out of order. */
export function replaceSection(doc: string, section: string): string {
  const a = doc.indexOf(RESULTS_START);
  const b = doc.indexOf(RESULTS_END);
  if (a < 0 || b < 0 || b < a) throw new Error(`the document has no ${RESULTS_START} … ${RESULTS_END} section`);
  return doc.slice(0, a) + section + doc.slice(b + RESULTS_END.length);
}
