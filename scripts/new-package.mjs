// Creates the skeleton of a workspace package: node scripts/new-package.mjs <dir> "<description>" [dep ...]
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const [dir, description, ...deps] = process.argv.slice(2);
if (!dir || !description) throw new Error('usage: new-package <dir> <description> [@x/dep ...]');
const root = resolve(import.meta.dirname, '..');
const pkgDir = join(root, 'packages', dir);
if (existsSync(join(pkgDir, 'package.json'))) throw new Error(`${dir} exists`);
for (const d of ['src/internal', 'src/testing', 'test', 'bench', 'etc']) mkdirSync(join(pkgDir, d), { recursive: true });
const pkg = {
  name: `@x/${dir}`,
  version: '0.1.0',
  description,
  license: 'MIT',
  type: 'module',
  sideEffects: false,
  engines: { node: '>=20.19' },
  exports: {
    '.': { '@x/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
    './testing': { '@x/source': './src/testing/index.ts', types: './dist/testing/index.d.ts', default: './dist/testing/index.js' },
    './package.json': './package.json',
  },
  files: ['dist', 'src', 'README.md', 'CHANGELOG.md'],
  scripts: { build: 'tsc -b' },
  ...(deps.length ? { peerDependencies: Object.fromEntries(deps.map((d) => [d, '^0.1.0'])), devDependencies: Object.fromEntries(deps.map((d) => [d, 'workspace:^'])) } : {}),
};
writeFileSync(join(pkgDir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
writeFileSync(
  join(pkgDir, 'tsconfig.json'),
  JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist' },
      include: ['src'],
      references: deps.map((d) => ({ path: `../${d.replace('@x/', '')}` })),
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(join(pkgDir, 'api-extractor.json'), JSON.stringify({ extends: '../../api-extractor.base.json', projectFolder: '.' }, null, 2) + '\n');
// Root project references and vitest projects.
const tsc = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'));
tsc.references.push({ path: `packages/${dir}` });
writeFileSync(join(root, 'tsconfig.json'), JSON.stringify(tsc, null, 2) + '\n');
const vc = readFileSync(join(root, 'vitest.config.ts'), 'utf8');
const marker = '      {\n        extends: true,\n        test: { name: \'examples\'';
writeFileSync(
  join(root, 'vitest.config.ts'),
  vc.replace(marker, `      {\n        extends: true,\n        test: { name: '${dir}', root: 'packages/${dir}', include: ['test/**/*.test.ts'] },\n      },\n${marker}`),
);
console.log(`created packages/${dir}`);
