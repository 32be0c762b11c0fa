// SVG charts of a run, drawn with Apache ECharts' server-side renderer (no DOM): one line
// chart per sweep (`row.chart.id`), a bar chart of the headline rows against their
// baselines, and a chart of the targets (measured / needed).
import * as echarts from 'echarts';
import type { CustomSeriesOption, EChartsOption } from 'echarts';
import { fmtNum, fmtRatio, metricLabel, speedup, verdict, type ResultRow } from './format.js';

/** A chart to draw: its file name (`<id>.svg`), its title and its ECharts option. */
export interface ChartSpec {
  file: string;
  title: string;
  option: EChartsOption;
  width: number;
  height: number;
}

/** Drawn chart. */
export interface ChartSvg {
  file: string;
  title: string;
  svg: string;
}

// No quotes: ECharts writes the family into a style="…" attribute without escaping them.
const SWEEP_WIDTH = 860;

/** Contrasting, colour-blind-friendlier than ECharts' default palette (Okabe–Ito order). */
const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#999999', '#000000'] as const;

const FONT = 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif';

function base(title: string, subtitle: string | undefined, width: number): EChartsOption {
  return {
    animation: false,
    backgroundColor: '#ffffff',
    color: [...PALETTE],
    textStyle: { fontFamily: FONT },
    // A title too long for the chart wraps instead of running off both edges.
    title: {
      text: title,
      left: 'center',
      top: 8,
      textStyle: { fontSize: 15, width: width - 60, overflow: 'break' },
      ...(subtitle ? { subtext: subtitle, subtextStyle: { width: width - 60, overflow: 'break' } } : {}),
    },
  };
}

/**
 * The x axis of a log sweep: base 2 for counts and sizes (positive integers), else 10,
 * spanning the powers of the base that enclose the data (16 B … 65520 B → 16 … 64 Ki;
 * a log axis left alone spans whole decades of powers), about 8 ticks.
 */
export function logXAxis(xs: readonly number[]): { logBase: number; min: number; max: number; interval: number } {
  const logBase = xs.every((x) => Number.isInteger(x) && x > 0) ? 2 : 10;
  const lg = (v: number): number => Math.log(v) / Math.log(logBase);
  // the epsilon keeps 2^k from rounding to 2^(k±1) through floating-point error
  const lo = Math.floor(lg(Math.min(...xs)) + 1e-9);
  const hi = Math.ceil(lg(Math.max(...xs)) - 1e-9);
  return { logBase, min: logBase ** lo, max: logBase ** Math.max(hi, lo + 1), interval: Math.max(1, Math.ceil((hi - lo) / 8)) };
}

/** Axis labels of a log₂ axis: powers of two, `Ki` / `Mi` from 1024 up. */
export function fmtPow2(x: number): string {
  if (x >= 1024 * 1024 && x % (1024 * 1024) === 0) return `${x / (1024 * 1024)} Mi`;
  if (x >= 1024 && x % 1024 === 0) return `${x / 1024} Ki`;
  return fmtNum(x);
}

/** The file name of a chart id (ids are meant to be file-name-safe already; this makes sure). */
export function chartFile(id: string): string {
  return `${id.replace(/[^A-Za-z0-9._-]+/g, '-')}.svg`;
}

/**
 * One line chart per `row.chart.id`: a line per series, sorted by x, y = the median.
 * The x axis is logarithmic when a point asks (`xLog`; see {@link logXAxis}), likewise y
 * (`yLog`), unless a value is ≤ 0, which a log axis cannot show. Axis names carry the units.
 */
export function sweepCharts(rows: readonly ResultRow[], subtitle?: string): ChartSpec[] {
  const byId = new Map<string, ResultRow[]>();
  for (const r of rows) {
    if (!r.chart) continue;
    let list = byId.get(r.chart.id);
    if (list === undefined) byId.set(r.chart.id, (list = []));
    list.push(r);
  }
  const specs: ChartSpec[] = [];
  for (const [id, list] of byId) {
    const first = list[0]!.chart!;
    const xLog = list.some((r) => r.chart!.xLog) && list.every((r) => r.chart!.x > 0);
    const yLog = list.some((r) => r.chart!.yLog) && list.every((r) => r.median > 0);
    const units = [...new Set(list.map((r) => r.unit))];
    const logX = xLog ? logXAxis(list.map((r) => r.chart!.x)) : undefined;
    const series = new Map<string, ResultRow[]>();
    for (const r of list) {
      let s = series.get(r.chart!.series);
      if (s === undefined) series.set(r.chart!.series, (s = []));
      s.push(r);
    }
    const legendH = 20 * series.size + 10;
    const option: EChartsOption = {
      ...base(first.title, subtitle, SWEEP_WIDTH),
      // One legend entry a line under the plot: ECharts measures text without a font, so
      // entries side by side overlap when the real font is wider than its guess.
      legend: { orient: 'vertical', left: 90, bottom: 10, itemGap: 6 },
      grid: { left: 90, right: 40, top: subtitle ? 76 : 56, bottom: legendH + 64 },
      xAxis: {
        type: xLog ? 'log' : 'value',
        ...(logX ?? { scale: true }),
        name: first.xLabel,
        nameLocation: 'middle',
        nameGap: 32,
        axisLabel: { formatter: (v: number) => (logX?.logBase === 2 ? fmtPow2(v) : fmtNum(v)) },
      },
      yAxis: {
        type: yLog ? 'log' : 'value',
        name: units.join(' / '),
        nameLocation: 'middle',
        nameGap: 64,
        axisLabel: { formatter: (v: number) => fmtNum(v) },
      },
      series: [...series].flatMap(([name, points], i) => {
        const sorted = [...points].sort((a, b) => a.chart!.x - b.chart!.x);
        const color = PALETTE[i % PALETTE.length]!;
        const line = { type: 'line' as const, name, color, symbol: 'circle', symbolSize: 7, data: sorted.map((p) => [p.chart!.x, p.median]) };
        // The spread of the runs (min – max) as a whisker at each point, when there is one.
        if (sorted.every((p) => p.min === p.max)) return [line];
        return [line, spreadSeries(name, color, sorted)];
      }),
    };
    specs.push({ file: chartFile(id), title: first.title, option, width: SWEEP_WIDTH, height: 400 + legendH });
  }
  return specs;
}

/** Whiskers from each point's min to its max: a custom series under the line of the same name. */
function spreadSeries(name: string, color: string, points: readonly ResultRow[]): CustomSeriesOption {
  return {
    type: 'custom',
    name,
    z: 1,
    silent: true,
    encode: { x: 0, y: [1, 2] },
    data: points.map((p) => [p.chart!.x, p.min, p.max]),
    renderItem: (_params, api) => {
      const lo = api.coord([api.value(0), api.value(1)]);
      const hi = api.coord([api.value(0), api.value(2)]);
      const cap = 4;
      const style = { stroke: color, lineWidth: 1 };
      return {
        type: 'group',
        children: [
          { type: 'line', shape: { x1: lo[0]!, y1: lo[1]!, x2: hi[0]!, y2: hi[1]! }, style },
          { type: 'line', shape: { x1: lo[0]! - cap, y1: lo[1]!, x2: lo[0]! + cap, y2: lo[1]! }, style },
          { type: 'line', shape: { x1: hi[0]! - cap, y1: hi[1]!, x2: hi[0]! + cap, y2: hi[1]! }, style },
        ],
      };
    },
  };
}

/** Row names as bar labels: up to two lines in a 290 px column; the grid leaves 370 px, as ECharts measures text without a font and a wide one needs the slack. */
const CATEGORY_LABEL = { width: 290, overflow: 'break', lineHeight: 13, fontSize: 11 } as const;
const BAR_ROW = 36;

function short(name: string, max = 60): string {
  return name.length <= max ? name : `${name.slice(0, max - 1)}…`;
}

/**
 * The headline rows against their baselines: every row with a baseline that carries a
 * target or sits in no sweep. The bar is how many times better than the baseline the row
 * is (log axis; time rows inverted so that longer is always better); the label gives the
 * two medians.
 */
export function headlineChart(rows: readonly ResultRow[], subtitle?: string): ChartSpec | undefined {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const picked = rows.filter((r) => speedup(r) !== undefined && (r.target !== undefined || r.chart === undefined));
  if (picked.length === 0) return undefined;
  const ordered = [...picked].reverse(); // a category axis draws bottom-up: keep the table's order top-down
  const title = 'Headline rows against their baselines (same run)';
  const option: EChartsOption = {
    ...base(title, subtitle, 980),
    grid: { left: 370, right: 200, top: subtitle ? 76 : 56, bottom: 56 },
    xAxis: { type: 'log', name: '× better than the baseline (log)', nameLocation: 'middle', nameGap: 30, axisLabel: { formatter: (v: number) => `${fmtNum(v)}×` } },
    yAxis: { type: 'category', data: ordered.map((r) => short(r.name, 110)), axisLabel: { ...CATEGORY_LABEL } },
    series: [
      {
        type: 'bar',
        name: 'speed-up',
        data: ordered.map((r) => {
          const b = r.baseline === undefined ? undefined : byName.get(r.baseline);
          const vs = b ? (r.unit === b.unit ? `${fmtNum(r.median)} vs ${fmtNum(b.median)} ${r.unit}` : `${fmtNum(r.median)} ${r.unit} vs ${fmtNum(b.median)} ${b.unit}`) : '';
          return {
            value: speedup(r)!,
            itemStyle: { color: speedup(r)! >= 1 ? '#3b7dd8' : '#d9534f' },
            label: { show: true, position: 'right', formatter: `${fmtRatio(speedup(r)!)}${vs ? `  ${vs}` : ''}` },
          };
        }),
        markLine: { silent: true, symbol: 'none', data: [{ xAxis: 1 }], lineStyle: { color: '#888', type: 'dashed' }, label: { formatter: 'baseline' } },
      },
    ],
  };
  return { file: 'headline.svg', title, option, width: 980, height: 110 + BAR_ROW * picked.length };
}

/**
 * The targets P1–P7: per row with a target, measured / needed for `≥` targets and needed /
 * measured for `≤` ones, so that a bar past 1 is met (green) and short of it missed (red).
 */
export function targetsChart(rows: readonly ResultRow[], subtitle?: string): ChartSpec | undefined {
  const picked = rows
    .map((r) => ({ r, v: r.verdict ?? verdict(r) }))
    .filter((x): x is { r: ResultRow; v: NonNullable<ReturnType<typeof verdict>> } => x.v !== undefined && x.v.measured !== null && x.v.measured > 0)
    .sort((a, b) => a.v.id.localeCompare(b.v.id, 'en', { numeric: true }));
  if (picked.length === 0) return undefined;
  const ordered = [...picked].reverse();
  const title = 'Targets P1–P7: measured / needed (≥ 1 is met)';
  const option: EChartsOption = {
    ...base(title, subtitle, 1000),
    grid: { left: 370, right: 190, top: subtitle ? 76 : 56, bottom: 56 },
    xAxis: { type: 'log', name: 'measured / needed (log; for ≤ targets: needed / measured)', nameLocation: 'middle', nameGap: 30, axisLabel: { formatter: (v: number) => `${fmtNum(v)}×` } },
    yAxis: { type: 'category', data: ordered.map(({ r, v }) => short(`${v.id}: ${r.name}`, 110)), axisLabel: { ...CATEGORY_LABEL } },
    series: [
      {
        type: 'bar',
        name: 'measured / needed',
        data: ordered.map(({ r, v }) => {
          const m = v.measured!;
          const score = v.op === '>=' ? m / v.threshold : v.threshold / m;
          const fmt = (x: number): string => (v.of === 'ratio' ? fmtRatio(x) : `${fmtNum(x)}`);
          return {
            value: score,
            itemStyle: { color: v.met ? '#2e9d5b' : '#d9534f' },
            label: { show: true, position: 'right', formatter: `${fmt(m)} ${v.op === '>=' ? '≥' : '≤'} ${fmtNum(v.threshold)}${v.of === 'ratio' ? '×' : ''}${v.of === 'value' ? ` ${r.unit}` : v.of === 'metric' ? ` ${metricLabel(v.metric ?? '')}` : ''}: ${v.met ? 'met' : 'missed'}` },
          };
        }),
        markLine: { silent: true, symbol: 'none', data: [{ xAxis: 1 }], lineStyle: { color: '#333', type: 'dashed' }, label: { formatter: 'target' } },
      },
    ],
  };
  return { file: 'targets.svg', title, option, width: 1000, height: 110 + BAR_ROW * picked.length };
}

/** Renders one chart to an SVG string (ECharts SSR: no DOM, no canvas). */
export function renderSvg(spec: Pick<ChartSpec, 'option' | 'width' | 'height'>): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: spec.width, height: spec.height });
  try {
    chart.setOption(spec.option);
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** Every chart of a run, drawn: `targets.svg`, `headline.svg`, then the sweeps. */
export function allCharts(rows: readonly ResultRow[], subtitle?: string): ChartSvg[] {
  const specs: ChartSpec[] = [];
  const t = targetsChart(rows, subtitle);
  if (t) specs.push(t);
  const h = headlineChart(rows, subtitle);
  if (h) specs.push(h);
  specs.push(...sweepCharts(rows, subtitle));
  return specs.map((s) => ({ file: s.file, title: s.title, svg: renderSvg(s) }));
}
