import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Packages are tested from source: the custom "@x/source" export condition points each
// package at its src/index.ts, and worker threads get the same through execArgv.
const slow = process.env.X_SLOW === '1';

export default defineConfig({
  resolve: { conditions: ['@x/source'] },
  ssr: { resolve: { conditions: ['@x/source'], externalConditions: ['@x/source'] } },
  test: {
    reporters: ['default', ['json', { outputFile: fileURLToPath(new URL('./.vitest-report.json', import.meta.url)) }]],
    testTimeout: slow ? 600_000 : 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'vring', root: 'packages/vring', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'virtio-core', root: 'packages/virtio-core', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'vhost-core', root: 'packages/vhost-core', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'transport-loopback', root: 'packages/transport-loopback', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'rpmsg', root: 'packages/rpmsg', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'platform', root: 'packages/platform', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'virtio-mediator', root: 'packages/virtio-mediator', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'transport-pci-epf', root: 'packages/transport-pci-epf', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'transport-ntb', root: 'packages/transport-ntb', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'examples', root: 'examples', include: ['*/test/**/*.test.ts'] },
      },
      {
        extends: true,
        test: { name: 'bench', root: 'bench', include: ['test/**/*.test.ts'] },
      },
    ],
  },
});
