// Package hygiene, run by `pnpm test` after the build: publint (package.json against the
// packed files) and attw (are the types right for ESM consumers) on every package.
// Usage: node scripts/pack-check.mjs [package-dir ...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const only = process.argv.slice(2);
const bin = (name) => join(root, 'node_modules', '.bin', name);
let failed = 0;
for (const dir of readdirSync(join(root, 'packages')).sort()) {
  const pkgDir = join(root, 'packages', dir);
  if (!existsSync(join(pkgDir, 'package.json')) || (only.length > 0 && !only.includes(dir))) continue;
  for (const [what, cmd, args] of [
    ['publint', bin('publint'), ['--pack', 'npm', '--strict']],
    ['attw', bin('attw'), ['--pack', '.', '--profile', 'esm-only', '--format', 'ascii']],
  ]) {
    const r = spawnSync(cmd, args, { cwd: pkgDir, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error' } });
    if (r.status !== 0) {
      failed++;
      console.error(`pack-check: ${dir}: ${what} failed\n${r.stdout}${r.stderr}`);
    } else {
      console.log(`pack-check: ${dir}: ${what} ok`);
    }
  }
}
if (failed > 0) process.exit(1);
