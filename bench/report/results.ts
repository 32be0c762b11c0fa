// The results file of `pnpm bench` (JSON): the machine it ran on, each bench file's time,
// and every row with its runs, metrics, baseline ratio, target verdict and chart place.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { betterOf, type Better } from '../harness.js';
import { verdict, type ResultRow } from './format.js';

/** Bumped when the shape of {@link Results} changes incompatibly. */
export const RESULTS_SCHEMA = 1;

/** The machine and software a run was measured on. */
export interface MachineInfo {
  cpu: string;
  /** Logical CPUs (os.cpus().length). */
  cores: number;
  /** Nominal clock of the first CPU, MHz (0 when the OS does not tell). */
  speedMHz: number;
  memoryGiB: number;
  os: { type: string; release: string; platform: string; arch: string };
  node: string;
  v8: string;
  /** 1, 5 and 15 minute load averages before the first and after the last bench file. */
  loadavgBefore: number[];
  loadavgAfter: number[];
  /** `null` outside a git checkout; `dirty`: uncommitted changes, untracked files included. */
  git: { commit: string; dirty: boolean } | null;
}

/** One bench file of a run. */
export interface FileResult {
  /** Relative to the repository root. */
  file: string;
  /** Wall time of the file's run(), ms. */
  ms: number;
  rows: number;
  /** Set when the file threw (or timed out); its rows are missing. */
  error?: string;
}

/** A whole run of `pnpm bench`, as written to JSON. */
export interface Results {
  schema: number;
  /** ISO date of the start of the run. */
  date: string;
  quick: boolean;
  /** Measured runs per row (a warm-up run comes first unless quick). */
  runs: number;
  /** File-name filters; empty for the whole suite. */
  filter: string[];
  /** Total wall time, ms. */
  durationMs: number;
  machine: MachineInfo;
  files: FileResult[];
  rows: Array<ResultRow & { better: Better }>;
}

function git(root: string): MachineInfo['git'] {
  try {
    const opts = { cwd: root, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'] };
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], opts).trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}

/** Describes this machine; `loadavgAfter` is filled in by {@link finishResults}. */
export function machineInfo(root: string): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    speedMHz: cpus[0]?.speed ?? 0,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: { type: os.type(), release: os.release(), platform: process.platform, arch: process.arch },
    node: process.version,
    v8: process.versions.v8,
    loadavgBefore: os.loadavg().map(round2),
    loadavgAfter: [],
    git: git(root),
  };
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Completes a run's results: the load after, the total, each row's direction and verdict. */
export function finishResults(r: Omit<Results, 'rows' | 'durationMs'> & { rows: ResultRow[] }, durationMs: number): Results {
  r.machine.loadavgAfter = os.loadavg().map(round2);
  const rows = r.rows.map((row) => {
    const v = verdict(row);
    return { ...row, better: betterOf(row), ...(v ? { verdict: v } : {}) };
  });
  return { ...r, durationMs, rows };
}

/** A full run: the whole suite, not quick, no file threw. Only such runs write docs/performance/. */
export function isFullRun(r: Pick<Results, 'quick' | 'filter' | 'files'>): boolean {
  return !r.quick && r.filter.length === 0 && r.files.every((f) => f.error === undefined);
}

/** One line describing the machine: `Intel Xeon …, 2 cores @ 2100 MHz, 24 GiB, Linux 6.1, Node v20.20.2 (V8 11.3)`. */
export function machineLine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores${m.speedMHz ? ` @ ${m.speedMHz} MHz` : ''}, ${m.memoryGiB} GiB, ${m.os.type} ${m.os.release} ${m.os.arch}, Node ${m.node} (V8 ${m.v8})`;
}

/** Reads and minimally checks a results JSON. */
export function parseResults(text: string): Results {
  const r = JSON.parse(text) as Partial<Results>;
  if (r.schema !== RESULTS_SCHEMA || !Array.isArray(r.rows) || !Array.isArray(r.files) || r.machine === undefined) {
    throw new Error(`not a pnpm bench results file (schema ${String(r.schema)}, expected ${RESULTS_SCHEMA})`);
  }
  return r as Results;
}

/**
 * Merges the results of several runs of parts of the suite (e.g. one `pnpm bench FILE`
 * per bench file, each short enough to run while the machine is quiet) into one. A file
 * measured twice keeps its last run. The merge counts as the whole suite (`filter` empty)
 * when it covers every file of `suite` (paths relative to the root); `quick` if any part
 * was; `runs` the fewest of any part; the machine is the first part's, with the load after
 * the last part; a part from another machine is refused, and one from another commit too
 * unless `mixedCommits` (the merge then counts as dirty).
 */
export function mergeResults(parts: readonly Results[], suite: readonly string[], mixedCommits = false): Results {
  if (parts.length === 0) throw new Error('nothing to merge');
  const first = parts[0]!;
  for (const p of parts) {
    const a = first.machine;
    const b = p.machine;
    if (a.cpu !== b.cpu || a.cores !== b.cores || a.node !== b.node) throw new Error(`cannot merge runs from different machines (${machineLine(a)} / ${machineLine(b)})`);
    if (a.git?.commit !== b.git?.commit && !mixedCommits) throw new Error(`cannot merge runs of different commits (${a.git?.commit ?? 'none'} / ${b.git?.commit ?? 'none'})`);
  }
  const byFile = new Map<string, { file: FileResult; rows: Results['rows'] }>();
  for (const p of parts) {
    for (const f of p.files) byFile.set(f.file, { file: f, rows: p.rows.filter((r) => r.file === f.file) });
  }
  // keep the suite's order (the runner's), then any file the suite does not know
  const order = [...suite.filter((f) => byFile.has(f)), ...[...byFile.keys()].filter((f) => !suite.includes(f))];
  const covered = suite.length > 0 && suite.every((f) => byFile.has(f));
  const last = parts.at(-1)!;
  return {
    schema: RESULTS_SCHEMA,
    date: parts.map((p) => p.date).sort()[0]!,
    quick: parts.some((p) => p.quick),
    runs: Math.min(...parts.map((p) => p.runs)),
    filter: covered ? [] : [...new Set(parts.flatMap((p) => p.filter))],
    durationMs: order.reduce((s, f) => s + byFile.get(f)!.file.ms, 0),
    machine: {
      ...first.machine,
      loadavgAfter: last.machine.loadavgAfter,
      git: first.machine.git && {
        commit: first.machine.git.commit,
        dirty: parts.some((p) => p.machine.git?.dirty === true || p.machine.git?.commit !== first.machine.git?.commit),
      },
    },
    files: order.map((f) => byFile.get(f)!.file),
    rows: order.flatMap((f) => byFile.get(f)!.rows),
  };
}
