// Checks (or, with --local, updates) the api-extractor report of every package.
// CI runs it without --local: any unreviewed change to a package's public surface fails.
// Usage: node scripts/api-report.mjs [--local] [package-dir ...]
// Each package may have several entry points: "etc/<name>.api.md" for ".", and
// "etc/<name>-<entry>.api.md" for "./<entry>" (e.g. ./testing).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const local = process.argv.includes('--local');
// Optional package directory names: `node scripts/api-report.mjs --local vring rpmsg`.
// `packages/rpmsg` and `packages/rpmsg/` are accepted too; an unknown name is an error.
const only = process.argv
  .slice(2)
  .filter((a) => !a.startsWith('--'))
  .map((a) => a.replace(/^packages\//, '').replace(/\/+$/, ''));
const root = resolve(import.meta.dirname, '..');
for (const name of only) {
  if (!existsSync(join(root, 'packages', name, 'api-extractor.json'))) {
    console.error(`api: no package directory packages/${name} with an api-extractor.json`);
    process.exit(2);
  }
}
let failed = 0;
for (const dir of readdirSync(join(root, 'packages')).sort()) {
  const pkgDir = join(root, 'packages', dir);
  const cfgPath = join(pkgDir, 'api-extractor.json');
  if (!existsSync(cfgPath) || (only.length > 0 && !only.includes(dir))) continue;
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const unscoped = pkg.name.replace(/^@[^/]+\//, '');
  const entries = Object.keys(pkg.exports).filter((k) => k !== './package.json');
  for (const entry of entries) {
    const sub = entry === '.' ? '' : entry.slice(2);
    const base = ExtractorConfig.loadFile(cfgPath);
    base.mainEntryPointFilePath = join(pkgDir, 'dist', sub, 'index.d.ts');
    // Analyse the emitted .d.ts with plain Node resolution (no "@x/source" condition), so
    // an import of the package's own name resolves to its published types.
    base.compiler = {
      overrideTsconfig: {
        compilerOptions: { target: 'ES2022', lib: ['ES2022'], module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], strict: true, skipLibCheck: true },
        include: [join(pkgDir, 'dist', '**', '*.d.ts')],
      },
    };
    if (sub !== '') {
      // A secondary entry (./testing) uses the main entry's types through the package's
      // own name; api-extractor counts those as local, so "forgotten export" would flag
      // every one of them. They are checked by the main entry's report instead.
      base.messages.extractorMessageReporting['ae-forgotten-export'] = { logLevel: 'none', addToApiReportFile: false };
    }
    base.apiReport.reportFileName = sub === '' ? `${unscoped}.api.md` : `${unscoped}-${sub.replace(/\//g, '-')}.api.md`;
    const config = ExtractorConfig.prepare({
      configObject: base,
      configObjectFullPath: cfgPath,
      packageJsonFullPath: join(pkgDir, 'package.json'),
    });
    const result = Extractor.invoke(config, { localBuild: local, showVerboseMessages: false });
    const what = `${pkg.name}${sub === '' ? '' : '/' + sub}`;
    if (!result.succeeded) {
      failed++;
      console.error(`api: ${what}: ${result.errorCount} error(s), ${result.warningCount} warning(s)${result.apiReportChanged ? ', report changed (run pnpm api:update and review etc/)' : ''}`);
    } else {
      console.log(`api: ${what}: ok${result.apiReportChanged ? ' (report updated)' : ''}`);
    }
  }
}
if (failed > 0) process.exit(1);
