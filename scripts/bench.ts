// `pnpm bench [--quick] [--runs N] [--out DIR | --tmp-out] [--no-docs] [--timeout S] [filter...]`
//
// Runs every bench/*.bench.ts and packages/*/bench/*.bench.ts whose file name contains one
// of the filters (all when none), times each file, prints a Markdown table per file and a
// time summary on stdout, and writes the results JSON:
// - `--out DIR`: DIR/results.json and DIR/charts/*.svg (`--tmp-out`: a new directory
//   under the OS temp dir; what `pnpm bench:quick`, the last step of `pnpm test`, uses);
// - otherwise bench/results/latest.json;
// - a full run (whole suite, not --quick, no file failed) also writes
//   docs/performance/results.json, docs/performance/charts/*.svg and the generated section
//   of docs/performance/README.md, unless --no-docs.
// Exits 1 when a bench file throws or times out, never because of a figure.
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createContext, type BenchContext, type Row } from '../bench/harness.js';
import { targetsTable } from '../bench/report/docs.js';
import { benchFiles } from '../bench/report/files.js';
import { fmtMs, table, type ResultRow } from '../bench/report/format.js';
import { finishResults, isFullRun, machineInfo, RESULTS_SCHEMA, type FileResult } from '../bench/report/results.js';
import { writeJson, writeResultsDir } from '../bench/report/write.js';

/** What `--quick` should take for the whole suite on the 2-core reference machine (issue 7). */
const QUICK_BUDGET_MS = 60_000;
const USAGE = 'usage: pnpm bench [--quick] [--runs N] [--out DIR | --tmp-out] [--no-docs] [--timeout SECONDS] [filter...]';

interface Options {
  quick: boolean;
  runs: number;
  out: string | undefined;
  tmpOut: boolean;
  docs: boolean;
  timeoutMs: number;
  filters: string[];
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { quick: false, runs: 0, out: undefined, tmpOut: false, docs: true, timeoutMs: 0, filters: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--') continue; // `pnpm bench -- --quick` passes the separator on
    else if (a === '--quick') o.quick = true;
    else if (a === '--runs') o.runs = Number(value());
    else if (a === '--out') o.out = value();
    else if (a === '--tmp-out') o.tmpOut = true;
    else if (a === '--no-docs') o.docs = false;
    else if (a === '--timeout') o.timeoutMs = Number(value()) * 1000;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}\n${USAGE}`);
    else o.filters.push(a);
  }
  if (o.runs === 0) o.runs = o.quick ? 1 : 5;
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error(`--runs must be a positive integer\n${USAGE}`);
  if (o.timeoutMs === 0) o.timeoutMs = (o.quick ? 120 : 1800) * 1000;
  if (!(o.timeoutMs > 0)) throw new Error(`--timeout must be a positive number of seconds\n${USAGE}`);
  return o;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s (--timeout)`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const root = resolve(import.meta.dirname, '..');
  const files = benchFiles(root, opts.filters);
  if (files.length === 0) {
    console.error(`no bench file matches ${opts.filters.join(', ')}`);
    return 2;
  }

  const start = new Date();
  const t0 = performance.now();
  const machine = machineInfo(root);
  const ctx: BenchContext = createContext(opts.quick, opts.runs);
  const rows: ResultRow[] = [];
  const fileResults: FileResult[] = [];
  for (const rel of files) {
    process.stderr.write(`${rel}\n`);
    const ft = performance.now();
    try {
      const mod = (await import(pathToFileURL(join(root, rel)).href)) as { run?: (c: BenchContext) => Promise<Row[]> };
      if (typeof mod.run !== 'function') throw new Error(`${rel} exports no run(ctx)`);
      const got = await withTimeout(mod.run(ctx), opts.timeoutMs, rel);
      for (const r of got) rows.push({ ...r, file: rel });
      fileResults.push({ file: rel, ms: performance.now() - ft, rows: got.length });
    } catch (e) {
      const err = e instanceof Error ? (e.stack ?? e.message) : String(e);
      process.stderr.write(`  FAILED: ${err}\n`);
      fileResults.push({ file: rel, ms: performance.now() - ft, rows: 0, error: err });
    }
    process.stderr.write(`  (${fmtMs(fileResults.at(-1)!.ms)})\n`);
  }
  const results = finishResults(
    { schema: RESULTS_SCHEMA, date: start.toISOString(), quick: opts.quick, runs: opts.runs, filter: opts.filters, machine, files: fileResults, rows },
    performance.now() - t0,
  );

  // stdout: a table per file, then where the time went.
  const out: string[] = [];
  for (const f of results.files) {
    const fr = results.rows.filter((r) => r.file === f.file);
    out.push(`### ${f.file} (${fmtMs(f.ms)})`, '');
    if (f.error !== undefined) out.push(`FAILED: ${f.error.split('\n')[0]}`, '');
    if (fr.length > 0) out.push(table(fr), '');
  }
  if (results.rows.some((r) => r.target)) out.push('### Targets (issue 7)', '', targetsTable(results.rows), '');
  out.push('### Time per bench file', '', '| file | time | rows | |', '|---|---:|---:|---|');
  for (const f of results.files) out.push(`| ${f.file} | ${fmtMs(f.ms)} | ${f.rows} | ${f.error === undefined ? '' : 'FAILED'} |`);
  out.push(`| **total** | **${fmtMs(results.durationMs)}** | ${results.rows.length} | |`, '');
  if (opts.quick) {
    // What to trim when the quick suite outgrows its minute: the slowest rows.
    const slow = results.rows.filter((r) => r.ms !== undefined).sort((a, b) => b.ms! - a.ms!).slice(0, 10);
    out.push(`### Slowest rows (quick budget: the whole suite under ${fmtMs(QUICK_BUDGET_MS)})`, '', '| row | file | time |', '|---|---|---:|');
    for (const r of slow) out.push(`| ${r.name.replace(/\|/g, '\\|')} | ${r.file} | ${fmtMs(r.ms!)} |`);
    out.push('');
  }
  console.log(out.join('\n'));

  const written: string[] = [];
  let outDir = opts.out === undefined ? undefined : resolve(opts.out);
  if (opts.tmpOut) outDir = mkdtempSync(join(os.tmpdir(), 'x-bench-'));
  if (outDir !== undefined) {
    writeResultsDir(results, outDir);
    written.push(join(outDir, 'results.json'), join(outDir, 'charts'));
  } else {
    const dir = join(root, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeJson(results, join(dir, 'latest.json'));
    written.push(join(dir, 'latest.json'));
  }
  let docsFailed = false;
  if (isFullRun(results) && opts.docs) {
    const docs = join(root, 'docs', 'performance');
    try {
      writeResultsDir(results, docs, join(docs, 'README.md'));
      written.push(join(docs, 'results.json'), join(docs, 'charts'), join(docs, 'README.md'));
    } catch (e) {
      // The measurements are safe in the JSON above: `pnpm bench:charts FILE` redraws from it.
      docsFailed = true;
      process.stderr.write(`docs/performance/ not fully written: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
  } else if (!opts.quick && opts.filters.length === 0 && opts.docs) {
    process.stderr.write('docs/performance/ not updated: a bench file failed\n');
  }
  const failed = results.files.filter((f) => f.error !== undefined);
  process.stderr.write(
    `\n${results.rows.length} rows from ${results.files.length} files in ${fmtMs(results.durationMs)}` +
      ` (load ${machine.loadavgBefore[0]} → ${results.machine.loadavgAfter[0]})` +
      `${failed.length ? `; FAILED: ${failed.map((f) => f.file).join(', ')}` : ''}\nwrote ${written.map((w) => w.startsWith(root) ? w.slice(root.length + 1) : w).join(', ')}\n`,
  );
  if (opts.quick && results.durationMs > QUICK_BUDGET_MS) {
    process.stderr.write(`the quick suite took ${fmtMs(results.durationMs)}, over its ${fmtMs(QUICK_BUDGET_MS)} budget: see "Slowest rows" above\n`);
  }
  return failed.length > 0 || docsFailed ? 1 : 0;
}

// Exit explicitly: a bench file that leaves a worker or a timer behind must not hang the run.
main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(2);
  },
);
