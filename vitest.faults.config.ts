import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { FaultResultsReporter } from './test/faults/support/results-reporter.js';

// The scenarios' `[fault]` lines are collected here, then recorded by the reporter.
const LINES_FILE = join(tmpdir(), `tally-faults-${process.pid}.log`);

// The fault suite (`npm run test:faults`): real processes killed, paused and restarted.
// One file at a time, so each scenario has the machine's two cores to itself. A complete,
// passing run writes test/faults/results/<date>-<commit>.json (docs/reliability.md's figures).
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Removes the temp dirs each file made once it passes (test/support/scratch.ts).
    setupFiles: ['test/support/scratch-setup.ts'],
    env: { TALLY_FAULTS_REPORT: LINES_FILE },
    reporters: ['default', new FaultResultsReporter(LINES_FILE)],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
    fileParallelism: false,
  },
});
