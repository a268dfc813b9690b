import { defaultServerConditions } from 'vite';
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  // `tally/producer` (package.json "exports") resolves to the TypeScript source in tests.
  ssr: { resolve: { conditions: ['tally-source', ...defaultServerConditions] } },
  test: {
    include: ['test/**/*.test.ts'],
    // The fault suite has its own config and command (npm run test:faults).
    exclude: [...configDefaults.exclude, 'test/faults/**'],
    globalSetup: ['test/support/global-setup.ts'],
    // Removes the temp dirs each file made once it passes (test/support/scratch.ts).
    setupFiles: ['test/support/scratch-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real services on a 2-core machine: two files at a time keeps timings honest.
    maxWorkers: 2,
  },
});
