import { describe, expect, it } from 'vitest';
import { betterOf } from '../harness.js';
import { fmtNum, fmtRatio, speedup, table, verdict } from '../report/format.js';
import { finishResults, isFullRun, parseResults, RESULTS_SCHEMA } from '../report/results.js';
import { MACHINE, row, suite, target } from './fixtures.js';

describe('numbers', () => {
  it('fmtNum keeps three significant digits with an SI suffix and no trailing zeros', () => {
    expect(fmtNum(5e6)).toBe('5 M');
    expect(fmtNum(1234)).toBe('1.23 k');
    expect(fmtNum(999)).toBe('999');
    expect(fmtNum(999_999)).toBe('1 M'); // not "1000 k"
    expect(fmtNum(21.04e6)).toBe('21 M');
    expect(fmtNum(12.345)).toBe('12.3');
    expect(fmtNum(0.0042)).toBe('0.0042');
    expect(fmtNum(0)).toBe('0');
    expect(fmtNum(-2500)).toBe('-2.5 k');
    expect(fmtNum(1.5e10)).toBe('15 G');
  });

  it('fmtRatio shows two decimals below 10, one below 100, none above', () => {
    expect(fmtRatio(1.184)).toBe('1.18×');
    expect(fmtRatio(12.62)).toBe('12.6×');
    expect(fmtRatio(512.4)).toBe('512×');
  });
});

describe('direction of a row (better)', () => {
  it('time units are lower-is-better, rates higher-is-better, unless the row says', () => {
    expect(betterOf({ unit: 'µs' })).toBe('lower');
    expect(betterOf({ unit: 'ns' })).toBe('lower');
    expect(betterOf({ unit: 'ms' })).toBe('lower');
    expect(betterOf({ unit: 'msgs/s' })).toBe('higher');
    expect(betterOf({ unit: 'GB/s' })).toBe('higher');
    expect(betterOf({ unit: 'µs/round trip' })).toBe('lower');
    expect(betterOf({ unit: 'bytes' })).toBe('lower');
    expect(betterOf({ unit: 'notifications/msg' })).toBe('lower');
    expect(betterOf({ unit: 'buffers/s' })).toBe('higher');
    expect(betterOf({ unit: 'MB/s' })).toBe('higher');
    expect(betterOf({ unit: 'bytes/s' })).toBe('higher');
    expect(betterOf({ unit: 'µs', better: 'higher' })).toBe('higher');
  });

  it('speedup inverts the ratio of a time row so that > 1 is always better', () => {
    expect(speedup(row('rate', 'msgs/s', [10], { vsBaseline: 4 }))).toBe(4);
    expect(speedup(row('rtt', 'µs', [1], { vsBaseline: 0.25 }))).toBe(4);
    expect(speedup(row('no baseline', 'µs', [1]))).toBeUndefined();
  });
});

describe('target verdicts (P1–P7)', () => {
  it('a value target ≥ is met at or above the threshold, missed below', () => {
    const met = verdict(row('rpmsg', 'msgs/s', [5e6, 5.2e6, 5.4e6], { target: target('P2', 'value', '>=', 5e6) }))!;
    expect(met).toMatchObject({ id: 'P2', measured: 5.2e6, met: true, text: 'P2 ≥ 5 M: met' });
    const edge = verdict(row('rpmsg', 'msgs/s', [5e6], { target: target('P2', 'value', '>=', 5e6) }))!;
    expect(edge.met).toBe(true);
    const missed = verdict(row('rpmsg', 'msgs/s', [4.99e6], { target: target('P2', 'value', '>=', 5e6) }))!;
    expect(missed).toMatchObject({ met: false, text: 'P2 ≥ 5 M: missed' });
  });

  it('a ≤ target is met at or below the threshold; the median decides, not the best run', () => {
    const r = row('rtt', 'µs', [0.8, 1.1, 1.2], { target: target('P3', 'value', '<=', 1) });
    expect(verdict(r)).toMatchObject({ measured: 1.1, met: false, text: 'P3 ≤ 1: missed' });
    expect(verdict(row('rtt', 'µs', [0.9], { target: target('P3', 'value', '<=', 1) }))!.met).toBe(true);
  });

  it('a ratio target compares the ratio to the baseline, and says so when there is none', () => {
    const r = row('ring', 'buffers/s', [8e6], { baseline: 'postMessage', vsBaseline: 20.5, target: target('P1', 'ratio', '>=', 20) });
    expect(verdict(r)).toMatchObject({ measured: 20.5, met: true, text: 'P1 ≥ 20×: met' });
    const none = verdict(row('ring', 'buffers/s', [8e6], { target: target('P1', 'ratio', '>=', 20) }))!;
    expect(none).toMatchObject({ measured: null, met: null, text: 'P1 ≥ 20×: no baseline' });
  });

  it('a metric target reads the named metric', () => {
    const t = target('P4', 'metric', '<=', 0.01, 'notificationsPerMsg');
    expect(verdict(row('stream', 'msgs/s', [1e6], { target: t, metrics: { notificationsPerMsg: 0.02 } }))).toMatchObject({
      measured: 0.02,
      met: false,
      metric: 'notificationsPerMsg',
      text: 'P4 notifications/msg ≤ 0.01: missed',
    });
    expect(verdict(row('stream', 'msgs/s', [1e6], { target: t }))).toMatchObject({ met: null, text: 'P4 notifications/msg ≤ 0.01: no such metric' });
  });

  it('a row without a target has no verdict', () => {
    expect(verdict(row('x', 'msgs/s', [1]))).toBeUndefined();
  });
});

describe('the Markdown table', () => {
  const lines = (md: string): string[][] => md.split('\n').map((l) => l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));

  it('has median, spread, the ratio with the baseline name, the verdict and the key metrics', () => {
    const r = suite();
    const t = lines(table(r.rows.slice(0, 4)));
    expect(t[0]).toEqual(['benchmark', 'median', 'unit', 'spread (min – max)', '× baseline', 'target', 'CPU µs/msg', 'notifications/msg']);
    expect(t[1]).toHaveLength(8);
    const rpmsg = t.find((c) => c[0] === 'rpmsg 64 B, poll')!;
    expect(rpmsg).toEqual(['rpmsg 64 B, poll', '5.3 M', 'msgs/s', '5.1 M – 5.5 M', '12.6× postMessage, two workers', 'P2 ≥ 5 M: met', '0.35', '0.004']);
    const rtt = t.find((c) => c[0] === 'rpmsg round trip, poll')!;
    expect(rtt.slice(3, 6)).toEqual(['1.4 – 1.6', '', 'P3 ≤ 1: missed']);
    expect(rtt.slice(6)).toEqual(['', '']);
    expect(t).toHaveLength(2 + 4);
  });

  it('leaves out metric columns no row has, and lists other metrics in one column', () => {
    const plain = lines(table([row('a', 'msgs/s', [1, 2, 3])]));
    expect(plain[0]).toEqual(['benchmark', 'median', 'unit', 'spread (min – max)', '× baseline', 'target']);
    const other = lines(table([row('q', 'bytes', [4096], { metrics: { bytesPerQueue: 4096, rttUs: 1.25 } })]));
    expect(other[0]!.at(-1)).toBe('other metrics');
    expect(other[2]!.at(-1)).toBe('bytesPerQueue 4.1 k, rttUs 1.25');
  });

  it('escapes a pipe in a row name so the table keeps its columns', () => {
    const md = table([row('a | b', 'msgs/s', [1])]);
    expect(md).toContain('a \\| b');
    expect(lines(md)[2]).toHaveLength(6);
  });
});

describe('results JSON', () => {
  it('finishResults fills in the direction and verdict of every row and the load after', () => {
    const r = suite();
    expect(r.durationMs).toBe(16_300);
    expect(r.machine.loadavgAfter).toHaveLength(3);
    const rtt = r.rows.find((x) => x.name === 'rpmsg round trip, poll')!;
    expect(rtt.better).toBe('lower');
    expect(rtt.verdict).toMatchObject({ id: 'P3', met: false });
    expect(r.rows.find((x) => x.name === 'postMessage, two workers')!.verdict).toBeUndefined();
    // every run, the spread and the chart place survive the round trip through JSON
    const back = parseResults(JSON.stringify(r));
    expect(back.rows[1]!.runs).toEqual([5.1e6, 5.2e6, 5.3e6, 5.4e6, 5.5e6]);
    expect(back.rows.find((x) => x.chart)!.chart).toMatchObject({ id: 'rpmsg-payload', xLog: true });
  });

  it('only a whole, slow, failure-free run counts as full (and may write docs/performance/)', () => {
    const base = { quick: false, filter: [] as string[], files: [{ file: 'a', ms: 1, rows: 1 }] };
    expect(isFullRun(base)).toBe(true);
    expect(isFullRun({ ...base, quick: true })).toBe(false);
    expect(isFullRun({ ...base, filter: ['rpmsg'] })).toBe(false);
    expect(isFullRun({ ...base, files: [{ file: 'a', ms: 1, rows: 0, error: 'boom' }] })).toBe(false);
  });

  it('parseResults refuses a file of another shape', () => {
    expect(() => parseResults(JSON.stringify({ date: 'x', quick: true, rows: [] }))).toThrow(/not a pnpm bench results file/);
    expect(() => parseResults(JSON.stringify({ schema: RESULTS_SCHEMA, rows: [], files: [], machine: MACHINE }))).not.toThrow();
  });

  it('finishResults does not mutate the rows it is given', () => {
    const r = row('x', 'µs', [1], { target: target('P3', 'value', '<=', 1) });
    finishResults({ schema: RESULTS_SCHEMA, date: '', quick: true, runs: 1, filter: [], machine: structuredClone(MACHINE), files: [], rows: [r] }, 1);
    expect(r).not.toHaveProperty('verdict');
    expect(r).not.toHaveProperty('better');
  });
});
