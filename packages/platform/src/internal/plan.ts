// Checks a topology declaration and turns it into plain data: one SystemPlan per system,
// holding only SharedArrayBuffers, numbers, strings and cloned config. A plan is what a
// worker receives (workerData), and what a deterministic system is built from, so both
// modes start from the same bytes.
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_BUS_ADDR } from '@x/vring';
import { PlatformError } from '../errors.js';
import type { RegionSpec, SystemSpec, TopologyConfig, TopologyMode } from '../types.js';
import { ControlBlock } from './control-block.js';

export interface RegionPlan {
  readonly name: string;
  readonly buffer: SharedArrayBuffer;
  readonly base: number;
  readonly offset: number;
  readonly size: number;
}

export interface LinePlan {
  readonly name: string;
  readonly index: number;
}

export interface SystemPlan {
  readonly mode: TopologyMode;
  readonly index: number;
  readonly name: string;
  /** Every system's name, by index. */
  readonly systems: readonly string[];
  readonly entry: string;
  readonly exportName: string;
  readonly control: SharedArrayBuffer;
  /** Lines in the control region, the peer-status line included. */
  readonly lineCount: number;
  readonly regions: readonly RegionPlan[];
  readonly lines: readonly LinePlan[];
  readonly config: unknown;
  readonly recheckMs: number;
}

export interface TopologyPlan {
  readonly mode: TopologyMode;
  readonly control: ControlBlock;
  readonly regions: ReadonlyMap<string, { readonly spec: RegionSpec; readonly buffer: SharedArrayBuffer }>;
  /** Line name → index in the control region. */
  readonly lines: ReadonlyMap<string, number>;
  readonly systems: readonly SystemPlan[];
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly recheckMs: number;
}

const MODES: readonly TopologyMode[] = ['deterministic', 'threads'];

function bad(message: string, cause?: unknown): PlatformError {
  return new PlatformError('BAD_CONFIG', message, cause === undefined ? undefined : { cause });
}

function checkName(where: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw bad(`${where} must be a non-empty string`);
  return name;
}

function checkInt(where: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw bad(`${where} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

function checkMs(where: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !(v > 0)) throw bad(`${where} must be a positive number of milliseconds, got ${String(v)}`);
  return v;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && 2 ** Math.round(Math.log2(n)) === n;
}

/** A module URL from a URL or a path. */
export function entryHref(entry: unknown, where: string): string {
  if (entry instanceof URL) return entry.href;
  if (typeof entry !== 'string' || entry.length === 0) throw bad(`${where} must be a URL or a path`);
  if (isAbsolute(entry) || entry.startsWith('.')) return pathToFileURL(resolve(entry)).href;
  try {
    return new URL(entry).href;
  } catch {
    return pathToFileURL(resolve(entry)).href;
  }
}

export function buildPlan(config: TopologyConfig): TopologyPlan {
  if (typeof config !== 'object' || config === null) throw new TypeError('config must be an object');
  if (!MODES.includes(config.mode)) throw bad(`config.mode must be 'deterministic' or 'threads', got ${String(config.mode)}`);
  const startTimeoutMs = checkMs('config.startTimeoutMs', config.startTimeoutMs, 20_000);
  const stopTimeoutMs = checkMs('config.stopTimeoutMs', config.stopTimeoutMs, 2_000);
  const recheckMs = checkMs('config.recheckMs', config.recheckMs, 1_000);

  const regionSpecs = new Map<string, RegionSpec>();
  (config.regions ?? []).forEach((r, k) => {
    const name = checkName(`config.regions[${k}].name`, r?.name);
    if (regionSpecs.has(name)) throw bad(`config.regions[${k}]: duplicate region name '${name}'`);
    checkInt(`config.regions[${k}].size`, r.size, 1, MAX_BUS_ADDR);
    if (r.align !== undefined && (typeof r.align !== 'number' || !isPowerOfTwo(r.align) || r.align > 2 ** 52)) {
      throw bad(`config.regions[${k}].align must be a power of two, got ${String(r.align)}`);
    }
    regionSpecs.set(name, r);
  });

  const lines = new Map<string, number>();
  (config.lines ?? []).forEach((l, k) => {
    const name = checkName(`config.lines[${k}]`, l);
    if (lines.has(name)) throw bad(`config.lines[${k}]: duplicate line name '${name}'`);
    lines.set(name, lines.size + 1); // index 0 is the reserved peer-status line
  });

  const systemsIn: readonly SystemSpec[] = config.systems;
  if (!Array.isArray(systemsIn as unknown) || systemsIn.length === 0) throw bad('config.systems must list at least one system');
  const names = new Set<string>();
  for (const [k, s] of systemsIn.entries()) {
    const name = checkName(`config.systems[${k}].name`, s?.name);
    if (names.has(name)) throw bad(`config.systems[${k}]: duplicate system name '${name}'`);
    names.add(name);
  }

  // Memory is allocated only once the whole declaration is known to be valid.
  const checked = systemsIn.map((s, k) => {
    const where = `config.systems[${k}]`;
    const entry = entryHref(s.entry, `${where}.entry`);
    const exportName = s.export ?? 'default';
    if (typeof exportName !== 'string' || exportName.length === 0) throw bad(`${where}.export must be a non-empty string`);
    const seen = new Set<string>();
    const spans: Array<{ start: number; end: number; region: string }> = [];
    const atts = (s.regions ?? []).map((a, j) => {
      const w = `${where}.regions[${j}]`;
      const region = checkName(`${w}.region`, a?.region);
      const spec = regionSpecs.get(region);
      if (spec === undefined) throw bad(`${w}: no region named '${region}'`);
      if (seen.has(region)) throw bad(`${w}: system '${s.name}' attaches region '${region}' twice`);
      seen.add(region);
      const base = checkInt(`${w}.base`, a.base, 0, MAX_BUS_ADDR);
      const align = spec.align ?? 1;
      if (base % align !== 0) throw bad(`${w}.base 0x${base.toString(16)} is not aligned to region '${region}' alignment ${align}`);
      const offset = checkInt(`${w}.offset`, a.offset ?? 0, 0, spec.size - 1);
      const size = checkInt(`${w}.size`, a.size ?? spec.size - offset, 1, spec.size - offset);
      if (base + size - 1 > MAX_BUS_ADDR) throw bad(`${w}: 0x${base.toString(16)} + ${size} bytes passes 2^53`);
      for (const o of spans) {
        if (base < o.end && o.start < base + size) throw bad(`${w}: region '${region}' at 0x${base.toString(16)} overlaps region '${o.region}' in system '${s.name}'`);
      }
      spans.push({ start: base, end: base + size, region });
      return { name: region, base, offset, size };
    });
    const sysLines = (s.lines ?? []).map((l, j) => {
      const lname = checkName(`${where}.lines[${j}]`, l);
      const index = lines.get(lname);
      if (index === undefined) throw bad(`${where}.lines[${j}]: no line named '${lname}'`);
      return { name: lname, index };
    });
    if (new Set(sysLines.map((l) => l.name)).size !== sysLines.length) throw bad(`${where}.lines names a line twice`);
    let cfg: unknown;
    try {
      cfg = structuredClone(s.config);
    } catch (e) {
      throw bad(`${where}.config must be plain structured-clone-able data (no functions or class instances with behaviour)`, e);
    }
    return { name: s.name, entry, exportName, atts, sysLines, cfg };
  });

  const regions = new Map<string, { spec: RegionSpec; buffer: SharedArrayBuffer }>();
  for (const [name, spec] of regionSpecs) {
    let buffer: SharedArrayBuffer;
    try {
      buffer = new SharedArrayBuffer(spec.size);
    } catch (e) {
      throw bad(`region '${name}': cannot allocate ${spec.size} bytes`, e);
    }
    regions.set(name, { spec, buffer });
  }
  const control = ControlBlock.create(systemsIn.length, lines.size + 1);
  const systemNames = systemsIn.map((s) => s.name);
  const systems: SystemPlan[] = checked.map((c, index) => ({
    mode: config.mode,
    index,
    name: c.name,
    systems: systemNames,
    entry: c.entry,
    exportName: c.exportName,
    control: control.buffer,
    lineCount: control.lines,
    regions: c.atts.map((a) => ({ ...a, buffer: regions.get(a.name)!.buffer })),
    lines: c.sysLines,
    config: c.cfg,
    recheckMs,
  }));
  return { mode: config.mode, control, regions, lines, systems, startTimeoutMs, stopTimeoutMs, recheckMs };
}
