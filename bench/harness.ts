// A small benchmark harness: each *.bench.ts exports run(ctx) returning rows; every row
// is the median of several runs with its spread. Never part of the test suite.
import os from 'node:os';

export interface Row {
  name: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
  /** Ratio to the baseline row measured in the same run, when there is one. */
  vsBaseline?: number;
}

export interface BenchContext {
  quick: boolean;
  runs: number;
  measure(name: string, unit: string, fn: () => number | Promise<number>): Promise<Row>;
}

export function createContext(quick: boolean, runs: number): BenchContext {
  return {
    quick,
    runs,
    async measure(name, unit, fn) {
      await fn(); // warm-up: JIT and worker start-up are not measured
      const values: number[] = [];
      for (let i = 0; i < runs; i++) values.push(await fn());
      const sorted = [...values].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      const row: Row = { name, unit, median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: values };
      process.stderr.write(`  ${name}: ${fmt(median)} ${unit}\n`);
      return row;
    },
  };
}

export function fmt(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k`;
  return v.toFixed(2);
}

export function machine(): Record<string, unknown> {
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

export function table(rows: Row[]): string {
  const lines = ['| benchmark | median | unit | min – max | × baseline |', '|---|---:|---|---|---:|'];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${fmt(r.median)} | ${r.unit} | ${fmt(r.min)} – ${fmt(r.max)} | ${r.vsBaseline === undefined ? '' : r.vsBaseline.toFixed(1) + '×'} |`);
  }
  return lines.join('\n');
}
