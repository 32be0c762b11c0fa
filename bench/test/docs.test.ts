import { describe, expect, it } from 'vitest';
import { filterOf, replaceSection, resultsSection, RESULTS_END, RESULTS_START } from '../report/docs.js';
import { finishResults } from '../report/results.js';
import { row, suite, target } from './fixtures.js';

describe('the generated section of docs/performance/README.md', () => {
  const r = suite();
  const md = resultsSection(r, [
    { file: 'rpmsg-payload.svg', title: 'Chart rpmsg-payload' },
    { file: 'targets.svg', title: 'Targets' },
  ]);

  it('is wrapped in the markers and says when, where and how it was measured', () => {
    expect(md.startsWith(RESULTS_START)).toBe(true);
    expect(md.endsWith(RESULTS_END)).toBe(true);
    expect(md).toContain('Measured 2026-11-23 23:00 UTC at commit `0123456789ab` (with uncommitted changes): median of 5 runs per row');
    expect(md).toContain('| CPU | Fixture CPU @ 2.10GHz, 2 logical cores @ 2100 MHz |');
    expect(md).toContain('| load average 1 / 5 / 15 min | before 1.5 / 1.2 / 1; after');
  });

  it('lists every target P1–P7 with its measured median and verdict, or "not measured"', () => {
    const targetRows = md.split('\n').filter((l) => /^\| (P\d|) \|/.test(l));
    expect(targetRows.map((l) => l.split('|')[1]!.trim())).toEqual(['P1', 'P2', '', 'P3', 'P4', 'P5', 'P6', 'P7']);
    expect(md).toMatch(/\| P1 \| split ring across two workers[^|]*\| — \| — \| — \| not measured \|/);
    expect(md).toContain('| rpmsg 64 B, poll | 5.3 M msgs/s | P2 ≥ 5 M msgs/s | **met** |');
    expect(md).toContain('| rpmsg 64 B vs postMessage | 12.6× postMessage, two workers | P2 ≥ 12× | **met** |');
    expect(md).toMatch(/\| P3 \| [^|]+\| rpmsg round trip, poll \| 1.5 µs \| P3 ≤ 1 µs \| \*\*missed\*\* \|/);
  });

  it('shows a metric target with its metric, and a ratio target without a baseline as such', () => {
    const extra = finishResults(
      {
        ...r,
        rows: [
          ...r.rows,
          row('stream, sleeping doorbell', 'msgs/s', [1e6], { target: target('P4', 'metric', '<=', 0.01, 'notificationsPerMsg'), metrics: { notificationsPerMsg: 0.002 } }),
          row('ring, no baseline', 'buffers/s', [1e6], { target: target('P1', 'ratio', '>=', 20) }),
        ],
      },
      r.durationMs,
    );
    const out = resultsSection(extra, []);
    expect(out).toMatch(/\| P4 \| [^|]+\| stream, sleeping doorbell \| 0.002 notifications\/msg \| P4 ≤ 0.01 notifications\/msg \| \*\*met\*\* \|/);
    expect(out).toMatch(/\| P1 \| [^|]+\| ring, no baseline \| — \| P1 ≥ 20× \| no baseline \|/);
  });

  it('embeds the charts and gives the command that reproduces each bench file', () => {
    expect(md).toContain('![Chart rpmsg-payload](charts/rpmsg-payload.svg)');
    expect(md).toContain('![Targets](charts/targets.svg)');
    expect(md).toContain('#### `packages/rpmsg/bench/rpmsg.bench.ts` (4.0 s)');
    expect(md).toContain('Reproduce: `pnpm bench rpmsg.bench.ts`');
    expect(filterOf('packages/platform/bench/doorbell.bench.ts')).toBe('doorbell.bench.ts');
  });

  it('shows a failed bench file instead of dropping it', () => {
    const failed = { ...r, files: [...r.files, { file: 'bench/broken.bench.ts', ms: 10, rows: 0, error: 'Error: boom\n    at x' }] };
    expect(resultsSection(failed, [])).toContain('**Failed:** Error: boom\n');
  });

  it('replaceSection swaps only what lies between the markers', () => {
    const doc = `# Title\n\nhand-written\n\n${RESULTS_START}\nold figures\n${RESULTS_END}\n\nmore prose\n`;
    const out = replaceSection(doc, `${RESULTS_START}\nnew\n${RESULTS_END}`);
    expect(out).toBe(`# Title\n\nhand-written\n\n${RESULTS_START}\nnew\n${RESULTS_END}\n\nmore prose\n`);
    expect(replaceSection(out, md)).toContain('more prose');
    expect(() => replaceSection('# no markers', 'x')).toThrow(/results:start/);
    expect(() => replaceSection(`${RESULTS_END}${RESULTS_START}`, 'x')).toThrow();
  });
});
