// `pnpm bench:charts [results.json...] [--out DIR] [--force]`: redraws the SVG charts and
// the generated section of docs/performance/README.md from results JSON, without measuring.
// - Default input: docs/performance/results.json; default output: docs/performance/
//   (results.json, charts/*.svg, the README section).
// - Several inputs are merged (see mergeResults): e.g. one `pnpm bench --out DIR FILE` per
//   bench file, each run while the machine is quiet, make one full result when together
//   they cover the suite.
// - `--out DIR`: DIR/results.json and DIR/charts/*.svg instead; docs/performance/ untouched.
// - A quick or partial result is refused for docs/performance/ unless --force: quick
//   figures never replace the published ones by accident. --force also merges parts
//   measured at different commits.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { benchFiles } from '../bench/report/files.js';
import { isFullRun, mergeResults, parseResults, type Results } from '../bench/report/results.js';
import { writeCharts, writeDocsSection, writeJson, writeResultsDir } from '../bench/report/write.js';

const USAGE = 'usage: pnpm bench:charts [results.json...] [--out DIR] [--force]';

function main(): number {
  const root = resolve(import.meta.dirname, '..');
  const docs = join(root, 'docs', 'performance');
  const inputs: string[] = [];
  let out: string | undefined;
  let force = false;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') continue; // `pnpm bench:charts -- …` passes the separator on
    else if (a === '--out') {
      out = argv[++i];
      if (out === undefined) {
        console.error(USAGE);
        return 2;
      }
    } else if (a === '--force') force = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      return 0;
    } else if (a.startsWith('-')) {
      console.error(`unknown option ${a}\n${USAGE}`);
      return 2;
    } else inputs.push(resolve(a));
  }
  const docsJson = join(docs, 'results.json');
  if (inputs.length === 0) inputs.push(docsJson);
  const parts: Results[] = [];
  for (const file of inputs) {
    if (!existsSync(file)) {
      console.error(`${file} does not exist: a full \`pnpm bench\` writes docs/performance/results.json (or name a results file)\n${USAGE}`);
      return 2;
    }
    parts.push(parseResults(readFileSync(file, 'utf8')));
  }
  const results = parts.length === 1 ? parts[0]! : mergeResults(parts, benchFiles(root), force);
  const from = inputs.length === 1 ? inputs[0]! : `${inputs.length} results files`;

  if (out !== undefined) {
    const dir = resolve(out);
    const charts = parts.length === 1 ? writeCharts(results, join(dir, 'charts')) : writeResultsDir(results, dir);
    console.log(`${charts.length} charts → ${join(dir, 'charts')}${parts.length > 1 ? `; merged results → ${join(dir, 'results.json')}` : ''}`);
    return 0;
  }
  if (!isFullRun(results) && !force) {
    const why = results.quick ? 'a quick run' : results.files.some((f) => f.error) ? 'a run where a bench file failed' : `a partial run (filter: ${results.filter.join(', ')})`;
    console.error(`${from} is ${why}: refusing to overwrite docs/performance/ (use --out DIR, or --force)`);
    return 1;
  }
  // The README links results.json: keep it the data the charts were drawn from.
  if (inputs.length > 1 || inputs[0] !== docsJson) writeJson(results, docsJson);
  const charts = writeCharts(results, join(docs, 'charts'));
  writeDocsSection(results, join(docs, 'README.md'), charts);
  console.log(`${charts.length} charts → docs/performance/charts; docs/performance/README.md results section rewritten from ${from}`);
  return 0;
}

process.exitCode = main();
