// Temp dirs a test file makes (spool dirs and the like), under the OS temp dir. After the
// file, test/support/scratch-setup.ts removes them when every test passed, and keeps them
// when one failed, naming them on stderr so the failure can be looked into. Must never
// remove a dir it did not make.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A new, empty temp dir named `<prefix>XXXXXX`, removed after this file if it passes. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every dir made so far, or, when `failed`, keeps them and says where they are. */
export function releaseScratchDirs(failed: boolean): void {
  const dirs = made.splice(0);
  if (dirs.length === 0) return;
  if (failed) {
    process.stderr.write(`temp dirs kept for diagnosis:\n${dirs.map((d) => `  ${d}\n`).join('')}`);
    return;
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
