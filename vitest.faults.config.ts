import { defineConfig } from 'vitest/config';

// The fault suite (`npm run test:faults`): real processes killed, paused and restarted.
// One file at a time, so each scenario has the machine's two cores to itself.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
    fileParallelism: false,
  },
});
