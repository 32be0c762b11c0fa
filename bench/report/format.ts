// Numbers, target verdicts and the Markdown tables of `pnpm bench`. Pure functions over
// rows, so the tests can check them on fixture rows.
import { betterOf, type Row, type Target } from '../harness.js';

/** A row as kept in the results: which bench file measured it. */
export interface ResultRow extends Row {
  /** The bench file, relative to the repository root. */
  file: string;
  /** The target check of the row, when it has a target. */
  verdict?: Verdict;
}

/** The outcome of a row's target (P1–P7) check. */
export interface Verdict {
  id: string;
  of: Target['of'];
  op: Target['op'];
  threshold: number;
  /** The metric's key when `of` is `metric`. */
  metric?: string;
  /** The compared figure: the median, or the ratio to the baseline; `null` when it is missing. */
  measured: number | null;
  /** `null` when the figure is missing (a ratio target without a baseline, a metric not reported). */
  met: boolean | null;
  /** E.g. `P2 ≥ 5 M: met`, `P1 ≥ 20×: missed`. */
  text: string;
}

const SUFFIXES: ReadonlyArray<[number, string]> = [
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
];

/** Three significant digits, SI suffix from 1000 up, no trailing zeros: `5 M`, `1.23 k`, `0.0042`. */
export function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  for (const [scale, suffix] of SUFFIXES) {
    // 999_950 rounds to 1000 k at three digits: promote it to the next suffix.
    if (a >= scale * 0.9995) return `${trim(v / scale)} ${suffix}`;
  }
  return trim(v);
}

function trim(v: number): string {
  return String(Number(v.toPrecision(3)));
}

/** A ratio: `23.4×`, `1.18×`, `512×`. */
export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return String(r);
  const a = Math.abs(r);
  return `${a >= 100 ? r.toFixed(0) : a >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/** Checks a row against its target; `undefined` when the row has none. */
export function verdict(row: Row): Verdict | undefined {
  const t = row.target;
  if (t === undefined) return undefined;
  const raw = t.of === 'value' ? row.median : t.of === 'ratio' ? row.vsBaseline : t.metric === undefined ? undefined : row.metrics?.[t.metric];
  const measured = raw === undefined || !Number.isFinite(raw) ? null : raw;
  const met = measured === null ? null : t.op === '>=' ? measured >= t.threshold : measured <= t.threshold;
  const what = t.of === 'metric' ? ` ${metricLabel(t.metric ?? '?')}` : '';
  const goal = `${t.id}${what} ${t.op === '>=' ? '≥' : '≤'} ${fmtNum(t.threshold)}${t.of === 'ratio' ? '×' : ''}`;
  const missing = t.of === 'ratio' ? 'no baseline' : t.of === 'metric' ? 'no such metric' : 'no value';
  const text = `${goal}: ${met === null ? missing : met ? 'met' : 'missed'}`;
  const v: Verdict = { id: t.id, of: t.of, op: t.op, threshold: t.threshold, measured, met, text };
  if (t.metric !== undefined) v.metric = t.metric;
  return v;
}

/**
 * How many times better than its baseline a row is (> 1 is better), whichever way the
 * unit goes: the ratio for `higher` rows, its inverse for `lower` (time) rows.
 */
export function speedup(row: Row): number | undefined {
  if (row.vsBaseline === undefined || !Number.isFinite(row.vsBaseline) || row.vsBaseline === 0) return undefined;
  return betterOf(row) === 'higher' ? row.vsBaseline : 1 / row.vsBaseline;
}

/** The metrics that get a column of their own, with their column headings. */
export const METRIC_COLUMNS: ReadonlyArray<readonly [key: string, heading: string]> = [
  ['cpuUsPerMsg', 'CPU µs/msg'],
  ['notificationsPerMsg', 'notifications/msg'],
];

/** A metric's short label: the column heading for the key metrics, else the key. */
export function metricLabel(key: string): string {
  return METRIC_COLUMNS.find(([k]) => k === key)?.[1] ?? key;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * One Markdown table of rows: median, spread (min – max), ratio to the named baseline,
 * target verdict, the key metrics (columns only when some row has them) and the rest.
 */
export function table(rows: readonly Row[]): string {
  const metricCols = METRIC_COLUMNS.filter(([k]) => rows.some((r) => r.metrics?.[k] !== undefined));
  const known = new Set(METRIC_COLUMNS.map(([k]) => k));
  const hasOther = rows.some((r) => Object.keys(r.metrics ?? {}).some((k) => !known.has(k)));
  const head = ['benchmark', 'median', 'unit', 'spread (min – max)', '× baseline', 'target', ...metricCols.map(([, h]) => h)];
  const align = ['---', '---:', '---', '---', '---', '---', ...metricCols.map(() => '---:')];
  if (hasOther) {
    head.push('other metrics');
    align.push('---');
  }
  const lines = [`| ${head.join(' | ')} |`, `|${align.join('|')}|`];
  for (const r of rows) {
    const ratio = r.vsBaseline === undefined ? '' : `${fmtRatio(r.vsBaseline)}${r.baseline ? ` ${r.baseline}` : ''}`;
    const v = 'verdict' in r && r.verdict ? (r.verdict as Verdict) : verdict(r);
    const cells = [r.name, fmtNum(r.median), r.unit, `${fmtNum(r.min)} – ${fmtNum(r.max)}`, ratio, v?.text ?? ''];
    for (const [k] of metricCols) cells.push(r.metrics?.[k] === undefined ? '' : fmtNum(r.metrics[k]));
    if (hasOther) {
      const rest = Object.entries(r.metrics ?? {}).filter(([k]) => !known.has(k));
      cells.push(rest.map(([k, val]) => `${k} ${fmtNum(val)}`).join(', '));
    }
    lines.push(`| ${cells.map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Milliseconds as seconds for humans: `12.3 s`. */
export function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
