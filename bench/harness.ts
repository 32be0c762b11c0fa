// A small benchmark harness: each *.bench.ts exports run(ctx) returning rows; every row
// is the median of several runs with its spread. Never part of the test suite.

/** Which way is better for a row's value. */
export type Better = 'higher' | 'lower';

/** A performance target of issue 7 (P1–P7) that a row is checked against. */
export interface Target {
  /** `P1` … `P7`, or a stretch goal such as `P1 stretch`. */
  id: string;
  /**
   * What is compared: the row's median (`value`), its ratio to the baseline (`ratio`:
   * median / baseline median), or one of its metrics (`metric`, named by `metric`).
   */
  of: 'value' | 'ratio' | 'metric';
  /** The metric's key when `of` is `metric`, e.g. `notificationsPerMsg`, `cpuUsPerMsg`. */
  metric?: string;
  op: '>=' | '<=';
  threshold: number;
}

/** Where a row sits in a chart (a sweep): one SVG per chart id, one line per series. */
export interface ChartPoint {
  /** File-name-safe id, e.g. `rpmsg-payload`; rows with the same id form one chart. */
  id: string;
  /** Chart title. */
  title: string;
  /** Line (legend entry) this row belongs to, e.g. `poll`, `postMessage`. */
  series: string;
  /** X value (numeric; charts use a log axis when `xLog`). */
  x: number;
  xLabel: string;
  xLog?: boolean;
  yLog?: boolean;
}

/** What a measured function may return: the value, plus metrics measured in the same run. */
export interface Sample {
  value: number;
  /**
   * Other figures of the same run, by name: e.g. `cpuUsPerMsg` (process CPU time, all
   * threads, per message), `notificationsPerMsg`, `bytesPerQueue`, `rttUs`. The row keeps
   * each metric's median over the runs.
   */
  metrics?: Record<string, number>;
}

export interface Row {
  name: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
  /** Which way is better. Default: `lower` for time units (µs, ns, ms), else `higher`. */
  better?: Better;
  /** Ratio to the baseline row measured in the same run, when there is one. */
  vsBaseline?: number;
  /** Name of that baseline row. */
  baseline?: string;
  /** Medians of the run's extra metrics. */
  metrics?: Record<string, number>;
  target?: Target;
  chart?: ChartPoint;
  /** Wall time spent measuring the row, warm-up included (ms): what a trim of `--quick` looks at. */
  ms?: number;
}

export interface MeasureOptions {
  /** The baseline row: sets `vsBaseline` (median / baseline median) and `baseline`. */
  baseline?: Row;
  better?: Better;
  target?: Target;
  chart?: ChartPoint;
}

export interface BenchContext {
  quick: boolean;
  runs: number;
  /**
   * A hint: how long one measured run of a row should take, ms (250 with `--quick`, whose
   * whole suite must stay under a minute on 2 cores; 1000 otherwise). A row that sizes its
   * message count from it (e.g. from the rate of a first short run) keeps its time when the
   * machine is slower or busier, where a fixed count does not.
   */
  budgetMs: number;
  measure(name: string, unit: string, fn: () => number | Sample | Promise<number | Sample>, options?: MeasureOptions): Promise<Row>;
}

/**
 * A row's direction: its own `better`, else `lower` for costs — times (`ns`, `µs`,
 * `µs/round trip`, `ms`, `s`), sizes (`bytes`, `KiB`…) and anything per message or per
 * queue (`notifications/msg`) — else `higher` (rates: `msgs/s`, `GB/s`).
 */
export function betterOf(row: Pick<Row, 'better' | 'unit'>): Better {
  if (row.better) return row.better;
  const u = row.unit.trim();
  if (/\/\s*s$/.test(u)) return 'higher'; // a rate: per second
  const cost = /^(ns|µs|us|ms|s)(\b|\/|$)/.test(u) || /^(bytes?|B|KiB|MiB|GiB)(\b|\/|$)/.test(u) || /\/\s*(msg|message|queue|op|call)s?$/.test(u);
  return cost ? 'lower' : 'higher';
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function createContext(quick: boolean, runs: number): BenchContext {
  return {
    quick,
    runs,
    budgetMs: quick ? 250 : 1000,
    async measure(name, unit, fn, options) {
      const t0 = performance.now();
      if (!quick) await fn(); // warm-up: JIT and worker start-up are not measured
      const values: number[] = [];
      const metricRuns = new Map<string, number[]>();
      for (let i = 0; i < runs; i++) {
        const s = await fn();
        if (typeof s === 'number') {
          values.push(s);
          continue;
        }
        values.push(s.value);
        for (const [k, v] of Object.entries(s.metrics ?? {})) {
          let a = metricRuns.get(k);
          if (a === undefined) metricRuns.set(k, (a = []));
          a.push(v);
        }
      }
      const sorted = [...values].sort((a, b) => a - b);
      const row: Row = { name, unit, median: median(values), min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: values };
      if (options?.better) row.better = options.better;
      if (options?.baseline) {
        row.baseline = options.baseline.name;
        row.vsBaseline = row.median / options.baseline.median;
      }
      if (metricRuns.size > 0) row.metrics = Object.fromEntries([...metricRuns].map(([k, v]) => [k, median(v)]));
      if (options?.target) row.target = options.target;
      if (options?.chart) row.chart = options.chart;
      row.ms = performance.now() - t0;
      process.stderr.write(`  ${name}: ${fmt(row.median)} ${unit} (${(row.ms / 1000).toFixed(1)} s)\n`);
      return row;
    },
  };
}

export function fmt(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(2);
}
