// Which bench files make up the suite: bench/*.bench.ts and packages/*/bench/*.bench.ts.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The suite's bench files, relative to `root`, in the order the runner runs them; with
 * filters, only those whose file name contains one of them.
 */
export function benchFiles(root: string, filters: readonly string[] = []): string[] {
  const dirs = ['bench', ...readdirSync(join(root, 'packages')).sort().map((p) => join('packages', p, 'bench'))];
  const files: string[] = [];
  for (const d of dirs) {
    if (!existsSync(join(root, d))) continue;
    for (const f of readdirSync(join(root, d)).sort()) {
      if (f.endsWith('.bench.ts') && (filters.length === 0 || filters.some((x) => f.includes(x)))) files.push(join(d, f).split('\\').join('/'));
    }
  }
  return files;
}
