// `pnpm bench [--quick] [filter]`: runs every bench/*.bench.ts and packages/*/bench/*.bench.ts,
// prints a Markdown table and writes bench/results/latest.json.
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createContext, machine, table, type Row } from '../bench/harness.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filter = args.find((a) => !a.startsWith('--'));
const root = resolve(import.meta.dirname, '..');
const files: string[] = [];
const dirs = [join(root, 'bench'), ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'bench'))];
for (const d of dirs) {
  if (!existsSync(d)) continue;
  for (const f of readdirSync(d).sort()) if (f.endsWith('.bench.ts') && (!filter || f.includes(filter))) files.push(join(d, f));
}
const ctx = createContext(quick, quick ? 1 : 5);
const all: Array<Row & { file: string }> = [];
for (const f of files) {
  process.stderr.write(`${f.slice(root.length + 1)}\n`);
  const mod = (await import(pathToFileURL(f).href)) as { run(c: typeof ctx): Promise<Row[]> };
  for (const r of await mod.run(ctx)) all.push({ ...r, file: f.slice(root.length + 1) });
}
console.log(table(all));
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'latest.json'), JSON.stringify({ date: new Date().toISOString(), quick, machine: machine(), rows: all }, null, 2) + '\n');
