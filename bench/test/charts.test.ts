import { describe, expect, it } from 'vitest';
import { allCharts, chartFile, fmtPow2, headlineChart, logXAxis, renderSvg, sweepCharts, targetsChart } from '../report/charts.js';
import type { ResultRow } from '../report/format.js';
import { checkXml, point, row, suite, target } from './fixtures.js';

type Axis = { type?: string; logBase?: number; name?: string; min?: number; max?: number };
type Series = { name?: string; type?: string; data: unknown[] };

/** The text nodes of an SVG, unescaped. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
}

describe('the XML check the chart tests rely on', () => {
  it('rejects what ECharts would produce from a quoted font family, and other breakage', () => {
    expect(() => checkXml('<svg><text style="font-family:"Segoe UI"">a</text></svg>')).toThrow();
    expect(() => checkXml('<svg><g></svg>')).toThrow();
    expect(() => checkXml('<svg>a & b</svg>')).toThrow();
    expect(() => checkXml('<svg></svg><svg></svg>')).toThrow();
    expect(() => checkXml('<svg a="1"><g/><text>x &amp; y</text></svg>')).not.toThrow();
  });
});

describe('sweep charts (one SVG per chart id)', () => {
  const sweep = (more: Parameters<typeof point>[3] = {}): ResultRow[] => [
    row('poll 65536', 'msgs/s', [2e4], { chart: point('payload', 'poll', 65536, more) }),
    row('poll 16', 'msgs/s', [5e6], { chart: point('payload', 'poll', 16, more) }),
    row('poll 1024', 'msgs/s', [1e6], { chart: point('payload', 'poll', 1024, more) }),
    row('pm 16', 'msgs/s', [4e5], { chart: point('payload', 'postMessage', 16, more) }),
    row('pm 65536', 'msgs/s', [1e4], { chart: point('payload', 'postMessage', 65536, more) }),
    row('sleep 64', 'msgs/s', [3e6], { chart: point('payload', 'sleep <&> "q"', 64, more) }),
    row('not charted', 'msgs/s', [1]),
    row('queues 1', 'msgs/s', [1e6], { chart: point('queues', 'poll', 1, { xLabel: 'queues' }) }),
  ];

  it('groups rows by chart id into one chart each, one line per series, points sorted by x', () => {
    const specs = sweepCharts(sweep({ xLog: true }));
    expect(specs.map((s) => s.file)).toEqual(['payload.svg', 'queues.svg']);
    const series = specs[0]!.option.series as Series[];
    expect(series.map((s) => s.name)).toEqual(['poll', 'postMessage', 'sleep <&> "q"']);
    expect(series.every((s) => s.type === 'line')).toBe(true);
    expect(series[0]!.data).toEqual([
      [16, 5e6],
      [1024, 1e6],
      [65536, 2e4],
    ]);
    expect((specs[1]!.option.series as Series[]).map((s) => s.name)).toEqual(['poll']);
  });

  it('uses log axes only when asked (base 2 for power-of-two x), pinned to the data', () => {
    const lin = sweepCharts(sweep())[0]!.option;
    expect((lin.xAxis as Axis).type).toBe('value');
    expect((lin.yAxis as Axis).type).toBe('value');
    const log = sweepCharts(sweep({ xLog: true, yLog: true }))[0]!.option;
    expect(log.xAxis as Axis).toMatchObject({ type: 'log', logBase: 2, min: 16, max: 65536, name: 'payload (bytes)' });
    expect(log.yAxis as Axis).toMatchObject({ type: 'log', name: 'msgs/s' });
    const dec = sweepCharts([row('a', 'µs', [1], { chart: point('d', 's', 0.5, { xLog: true }) }), row('b', 'µs', [2], { chart: point('d', 's', 20, { xLog: true }) })])[0]!;
    expect(dec.option.xAxis as Axis).toMatchObject({ type: 'log', logBase: 10, min: 0.1, max: 100 });
  });

  it('draws the spread of the runs as min–max whiskers under the line of the same name', () => {
    const rows = [16, 1024].map((x) => row(`poll ${x}`, 'msgs/s', [4e6 / x, 5e6 / x, 7e6 / x], { chart: point('w', 'poll', x, { xLog: true, yLog: true }) }));
    const spec = sweepCharts(rows)[0]!;
    const series = spec.option.series as Series[];
    expect(series.map((s) => [s.type, s.name])).toEqual([
      ['line', 'poll'],
      ['custom', 'poll'],
    ]);
    expect(series[1]!.data).toEqual([
      [16, 4e6 / 16, 7e6 / 16],
      [1024, 4e6 / 1024, 7e6 / 1024],
    ]);
    const svg = renderSvg(spec);
    checkXml(svg);
    expect(texts(svg).filter((t) => t === 'poll')).toHaveLength(1); // one legend entry for both
    // each whisker: a vertical stroke and two caps, 1 px wide, in the line's colour
    const strokes = svg.match(/<path [^>]*stroke="#0072b2"[^>]*>/g)!.filter((p) => !p.includes('stroke-width'));
    expect(strokes).toHaveLength(6);
    // no whiskers when every run gave the same figure (quick runs)
    expect((sweepCharts([row('one', 'msgs/s', [1], { chart: point('w', 'poll', 1) })])[0]!.option.series as Series[]).map((s) => s.type)).toEqual(['line']);
  });

  it('falls back to a linear axis when a value is ≤ 0, which a log axis cannot show', () => {
    const spec = sweepCharts([
      row('a', 'notifications/msg', [0], { chart: point('n', 's', 0, { xLog: true, yLog: true }) }),
      row('b', 'notifications/msg', [0.5], { chart: point('n', 's', 8, { xLog: true, yLog: true }) }),
    ])[0]!;
    expect((spec.option.xAxis as Axis).type).toBe('value');
    expect((spec.option.yAxis as Axis).type).toBe('value');
    checkXml(renderSvg(spec));
  });

  it('a log x axis encloses the data in whole powers of its base, with about 8 ticks', () => {
    expect(logXAxis([16, 1024, 65520])).toEqual({ logBase: 2, min: 16, max: 65536, interval: 2 });
    expect(logXAxis([1, 2, 4, 8])).toEqual({ logBase: 2, min: 1, max: 8, interval: 1 });
    expect(logXAxis([64, 4096])).toEqual({ logBase: 2, min: 64, max: 4096, interval: 1 });
    expect(logXAxis([3, 1000])).toEqual({ logBase: 2, min: 2, max: 1024, interval: 2 });
    expect(logXAxis([5])).toEqual({ logBase: 2, min: 4, max: 8, interval: 1 });
    expect(logXAxis([0.02, 0.5])).toEqual({ logBase: 10, min: 0.01, max: 1, interval: 1 });
  });

  it('renders valid SVG with title, units on the axes and one legend entry per series name', () => {
    const spec = sweepCharts(sweep({ xLog: true, yLog: true }), 'subtitle here')[0]!;
    const svg = renderSvg(spec);
    checkXml(svg);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toMatch(new RegExp(`width="${spec.width}" height="${spec.height}"`));
    const t = texts(svg);
    for (const s of ['Chart payload', 'subtitle here', 'msgs/s', 'payload (bytes)']) expect(t).toContain(s);
    for (const name of ['poll', 'postMessage', 'sleep <&> "q"']) expect(t.filter((x) => x === name)).toHaveLength(1);
    // one polyline per series: the data lines are the paths drawn 2 px wide without fill
    const lines = svg.match(/<path [^>]*fill="none"[^>]*stroke-width="2"[^>]*stroke-linejoin[^>]*>/g) ?? [];
    expect(lines).toHaveLength(3);
  });

  it('labels a log₂ axis in powers of two, and a log axis in SVG shows them', () => {
    expect(fmtPow2(16)).toBe('16');
    expect(fmtPow2(4096)).toBe('4 Ki');
    expect(fmtPow2(65536)).toBe('64 Ki');
    expect(fmtPow2(2 ** 20)).toBe('1 Mi');
    const t = texts(renderSvg(sweepCharts(sweep({ xLog: true, yLog: true }))[0]!));
    expect(t).toEqual(expect.arrayContaining(['16', '64', '1 Ki', '64 Ki']));
    expect(t).toEqual(expect.arrayContaining(['10 k', '100 k', '1 M'])); // decades on the log y axis
  });

  it('makes chart ids file-name-safe', () => {
    expect(chartFile('rpmsg payload/µs')).toBe('rpmsg-payload-s.svg');
  });
});

describe('the headline and targets charts', () => {
  it('headline: rows with a baseline, as speed-up over it (time rows inverted), labelled with both medians', () => {
    const base = row('bare ping-pong', 'µs', [2]);
    const rows = [base, row('sleep rtt', 'µs', [2.4], { baseline: base.name, vsBaseline: 1.2 }), row('alone', 'µs', [1])];
    const spec = headlineChart(rows)!;
    const s = (spec.option.series as Array<Series & { data: Array<{ value: number; label: { formatter: string } }> }>)[0]!;
    expect(s.data).toHaveLength(1);
    expect(s.data[0]!.value).toBeCloseTo(1 / 1.2);
    expect(s.data[0]!.label.formatter).toBe('0.83×  2.4 vs 2 µs');
    checkXml(renderSvg(spec));
    expect(headlineChart([row('alone', 'µs', [1])])).toBeUndefined();
  });

  it('targets: one bar per row with a target, ≥ 1 when met whichever way the target goes, green met / red missed', () => {
    const r = suite();
    const spec = targetsChart(r.rows)!;
    const yAxis = spec.option.yAxis as { data: string[] };
    expect(yAxis.data).toEqual(['P3: rpmsg round trip, poll', 'P2: rpmsg 64 B vs postMessage', 'P2: rpmsg 64 B, poll']);
    const data = (spec.option.series as Array<{ data: Array<{ value: number; itemStyle: { color: string } }> }>)[0]!.data;
    expect(data[0]!.value).toBeCloseTo(1 / 1.5); // P3: needed 1 µs / measured 1.5 µs
    expect(data[0]!.itemStyle.color).toBe('#d9534f');
    expect(data[2]!.value).toBeCloseTo(5.3e6 / 5e6);
    expect(data[2]!.itemStyle.color).toBe('#2e9d5b');
    const svg = renderSvg(spec);
    checkXml(svg);
    expect(texts(svg)).toContain('1.5 ≤ 1 µs: missed');
  });

  it('allCharts draws targets.svg, headline.svg, then the sweeps, all valid SVG', () => {
    const charts = allCharts(suite().rows, 'sub');
    expect(charts.map((c) => c.file)).toEqual(['targets.svg', 'headline.svg', 'rpmsg-payload.svg']);
    for (const c of charts) checkXml(c.svg);
    expect(allCharts([row('plain', 'msgs/s', [1], { target: target('P9', 'ratio', '>=', 2) })])).toEqual([]);
  });
});
