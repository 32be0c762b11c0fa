import { describe, expect, it } from 'vitest';
import { isFullRun, mergeResults, type Results } from '../report/results.js';
import { row, suite } from './fixtures.js';

const SUITE = ['bench/fixture.bench.ts', 'packages/rpmsg/bench/rpmsg.bench.ts'];

/** The fixture suite cut into one result per bench file, as `pnpm bench FILE` would write. */
function perFile(): Results[] {
  const all = suite();
  return all.files.map((f, i) => ({
    ...all,
    date: `2026-11-23T23:0${i}:00.000Z`,
    filter: [f.file.split('/').at(-1)!],
    machine: { ...all.machine, loadavgAfter: [i, i, i] },
    files: [f],
    durationMs: f.ms,
    rows: all.rows.filter((r) => r.file === f.file),
  }));
}

describe('merging results of parts of the suite (pnpm bench:charts a.json b.json …)', () => {
  it('is a full result when the parts cover the suite, in the suite order', () => {
    const [a, b] = perFile();
    const m = mergeResults([b!, a!], SUITE);
    expect(m.files.map((f) => f.file)).toEqual(SUITE);
    expect(m.rows.map((r) => r.name)).toEqual(suite().rows.map((r) => r.name));
    expect(m.filter).toEqual([]);
    expect(isFullRun(m)).toBe(true);
    expect(m.date).toBe('2026-11-23T23:00:00.000Z'); // the earliest part
    expect(m.durationMs).toBe(12_300 + 4_000);
    expect(m.machine.loadavgAfter).toEqual([0, 0, 0]); // the last part given (a)
  });

  it('stays partial when a file is missing, and quick when a part was quick', () => {
    const [a, b] = perFile();
    const partial = mergeResults([a!], SUITE);
    expect(partial.filter).toEqual(['fixture.bench.ts']);
    expect(isFullRun(partial)).toBe(false);
    const quick = mergeResults([a!, { ...b!, quick: true, runs: 1 }], SUITE);
    expect(quick.quick).toBe(true);
    expect(quick.runs).toBe(1);
    expect(isFullRun(quick)).toBe(false);
  });

  it('keeps the last run of a file measured twice', () => {
    const [a, b] = perFile();
    const again = { ...a!, rows: [{ ...row('postMessage, two workers', 'msgs/s', [1]), better: 'higher' as const }], files: [{ ...a!.files[0]!, rows: 1 }] };
    const m = mergeResults([a!, b!, again], SUITE);
    expect(m.rows.filter((r) => r.file === 'bench/fixture.bench.ts').map((r) => r.median)).toEqual([1]);
  });

  it('refuses parts from another commit or machine, and marks the tree dirty if any part was', () => {
    const [a, b] = perFile();
    expect(() => mergeResults([a!, { ...b!, machine: { ...b!.machine, git: { commit: 'f'.repeat(40), dirty: false } } }], SUITE)).toThrow(/different commits/);
    expect(() => mergeResults([a!, { ...b!, machine: { ...b!.machine, cores: 8 } }], SUITE)).toThrow(/different machines/);
    const other = { ...b!, machine: { ...b!.machine, git: { commit: 'f'.repeat(40), dirty: false } } };
    expect(mergeResults([{ ...a!, machine: { ...a!.machine, git: { ...a!.machine.git!, dirty: false } } }, other], SUITE, true).machine.git!.dirty).toBe(true);
    const clean = { ...a!, machine: { ...a!.machine, git: { ...a!.machine.git!, dirty: false } } };
    expect(mergeResults([clean, b!], SUITE).machine.git!.dirty).toBe(true);
    expect(mergeResults([clean], SUITE).machine.git!.dirty).toBe(false);
  });
});
