// Setup file of both vitest configs: after each test file, releases the temp dirs its
// tests made with scratchDir() (removed if the file passed, kept and named if not). Runs
// after the file's own afterAll hooks, so the processes using them have stopped.
import { afterAll, beforeEach } from 'vitest';
import { releaseScratchDirs } from './scratch.js';

let failed = false;

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    failed = true;
  });
});

// The suite is the hook's second argument, and vitest insists the first be destructured.
// A failed beforeAll marks the suite failed without failing a test.
// eslint-disable-next-line no-empty-pattern
afterAll(({}, suite) => {
  releaseScratchDirs(failed || suite.result?.state === 'fail');
});
