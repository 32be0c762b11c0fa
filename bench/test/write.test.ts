import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RESULTS_END, RESULTS_START } from '../report/docs.js';
import { parseResults } from '../report/results.js';
import { writeResultsDir } from '../report/write.js';
import { checkXml, suite } from './fixtures.js';

describe('writing a results directory (what a full run does to docs/performance/)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes results.json, one valid SVG per chart (stale ones removed) and the README section', () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'x-bench-test-'));
    dirs.push(dir);
    const readme = join(dir, 'README.md');
    writeFileSync(readme, `# Perf\n\nprose\n\n${RESULTS_START}\nold\n${RESULTS_END}\n\ntail\n`);
    writeResultsDir(suite(), join(dir, 'first'));
    writeFileSync(join(dir, 'first', 'charts', 'stale.svg'), '<svg/>');
    const charts = writeResultsDir(suite(), join(dir, 'first'), readme);

    expect(parseResults(readFileSync(join(dir, 'first', 'results.json'), 'utf8')).rows).toHaveLength(suite().rows.length);
    const files = readdirSync(join(dir, 'first', 'charts')).sort();
    expect(files).toEqual(['headline.svg', 'rpmsg-payload.svg', 'targets.svg']);
    expect(charts.map((c) => c.file).sort()).toEqual(files);
    for (const f of files) checkXml(readFileSync(join(dir, 'first', 'charts', f), 'utf8'));

    const doc = readFileSync(readme, 'utf8');
    expect(doc.startsWith('# Perf\n\nprose\n\n')).toBe(true);
    expect(doc.endsWith(`${RESULTS_END}\n\ntail\n`)).toBe(true);
    expect(doc).not.toContain('\nold\n');
    expect(doc).toContain('![Targets P1–P7: measured / needed (≥ 1 is met)](charts/targets.svg)');
  });
});
