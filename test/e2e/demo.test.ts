// The README's first command: `npm run demo` runs the whole pipeline and exits 0 only if
// invariant 2 holds. Runs it exactly as a new user would.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ADMIN_DATABASE_URL } from '../support/services.js';

const run = promisify(execFile);

describe('npm run demo', () => {
  it('sends, commits and prints rollups, with invariant 2 holding', async () => {
    const { stdout } = await run('npm', ['run', '--silent', 'demo'], {
      env: { ...process.env, DATABASE_URL: ADMIN_DATABASE_URL },
      timeout: 120_000,
    });
    expect(stdout).toContain('Daily rollups (model_usages)');
    expect(stdout).toMatch(
      /committed: [1-9]\d*\s+duplicates ignored: [1-9]\d*\s+rejected: unknown_model [1-9]/,
    );
    expect(stdout).toContain('invariant 2 holds');
  }, 150_000);
});
