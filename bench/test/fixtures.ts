// Fixture rows and results for the report tests: written here, never measured.
import type { ChartPoint, Row, Target } from '../harness.js';
import type { ResultRow } from '../report/format.js';
import { finishResults, RESULTS_SCHEMA, type MachineInfo, type Results } from '../report/results.js';

export function row(name: string, unit: string, runs: number[], extra: Partial<Row> = {}, file = 'bench/fixture.bench.ts'): ResultRow {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { name, unit, median, min: sorted[0]!, max: sorted.at(-1)!, runs, file, ...extra };
}

export function target(id: string, of: Target['of'], op: Target['op'], threshold: number, metric?: string): Target {
  return metric === undefined ? { id, of, op, threshold } : { id, of, op, threshold, metric };
}

export function point(id: string, series: string, x: number, more: Partial<ChartPoint> = {}): ChartPoint {
  return { id, title: `Chart ${id}`, series, x, xLabel: 'payload (bytes)', ...more };
}

export const MACHINE: MachineInfo = {
  cpu: 'Fixture CPU @ 2.10GHz',
  cores: 2,
  speedMHz: 2100,
  memoryGiB: 24,
  os: { type: 'Linux', release: '6.1.0', platform: 'linux', arch: 'x64' },
  node: 'v20.20.2',
  v8: '11.3.244.8-node.33',
  loadavgBefore: [1.5, 1.2, 1],
  loadavgAfter: [],
  git: { commit: '0123456789abcdef0123456789abcdef01234567', dirty: true },
};

/** A small suite: postMessage baseline, rpmsg rows with targets, a payload sweep. */
export function suite(): Results {
  const pm = row('postMessage, two workers', 'msgs/s', [400e3, 410e3, 420e3, 430e3, 440e3]);
  const rpmsg = row('rpmsg 64 B, poll', 'msgs/s', [5.1e6, 5.2e6, 5.3e6, 5.4e6, 5.5e6], {
    baseline: pm.name,
    vsBaseline: 5.3e6 / 420e3,
    target: target('P2', 'value', '>=', 5e6),
    metrics: { cpuUsPerMsg: 0.35, notificationsPerMsg: 0.004 },
  });
  const ratio = row('rpmsg 64 B vs postMessage', 'msgs/s', [5.3e6], { baseline: pm.name, vsBaseline: 5.3e6 / 420e3, target: target('P2', 'ratio', '>=', 12) });
  const rtt = row('rpmsg round trip, poll', 'µs', [1.4, 1.5, 1.6], { target: target('P3', 'value', '<=', 1) });
  const sweep = [16, 1024, 65536].flatMap((x, i) => [
    row(`rpmsg ${x} B, poll`, 'msgs/s', [5e6 / (i + 1)], { chart: point('rpmsg-payload', 'poll', x, { xLog: true, yLog: true }) }, 'packages/rpmsg/bench/rpmsg.bench.ts'),
    row(`postMessage ${x} B`, 'msgs/s', [4e5 / (i + 1)], { chart: point('rpmsg-payload', 'postMessage', x, { xLog: true, yLog: true }) }, 'packages/rpmsg/bench/rpmsg.bench.ts'),
  ]);
  return finishResults(
    {
      schema: RESULTS_SCHEMA,
      date: '2026-11-23T23:00:00.000Z',
      quick: false,
      runs: 5,
      filter: [],
      machine: structuredClone(MACHINE),
      files: [
        { file: 'bench/fixture.bench.ts', ms: 12_300, rows: 4 },
        { file: 'packages/rpmsg/bench/rpmsg.bench.ts', ms: 4_000, rows: sweep.length },
      ],
      rows: [pm, rpmsg, ratio, rtt, ...sweep],
    },
    16_300,
  );
}

/**
 * A strict-enough XML well-formedness check for SVG output: one root `<svg>`, every tag
 * closed in order, attributes quoted with no stray quote, no raw `<` or `&` in text.
 */
export function checkXml(xml: string): void {
  const stack: string[] = [];
  let roots = 0;
  const re = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>/g;
  let last = 0;
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) {
    checkText(xml.slice(last, m.index), stack);
    last = re.lastIndex;
    if (m[2] === undefined) continue; // comment, PI, CDATA
    const [, close, tag, , selfClose] = m as unknown as [string, string, string, string, string];
    if (close) {
      const open = stack.pop();
      if (open !== tag) throw new Error(`</${tag}> closes <${open}>`);
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(tag);
    } else if (stack.length === 0) roots++;
  }
  checkText(xml.slice(last), stack);
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('> <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

function checkText(text: string, stack: readonly string[]): void {
  if (text.includes('<')) throw new Error(`a malformed tag near ${JSON.stringify(text.slice(text.indexOf('<'), text.indexOf('<') + 80))}`);
  if (/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(text)) throw new Error(`a raw & in ${JSON.stringify(text.slice(0, 80))}`);
  if (stack.length === 0 && text.trim() !== '') throw new Error(`text outside the root: ${JSON.stringify(text.slice(0, 80))}`);
}
