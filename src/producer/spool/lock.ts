// The spool directory's lock file (LOCK, holding the owner's pid), so two ingest processes
// never append to and drain the same segments. A lock left by a process that no longer
// runs (SIGKILL, power loss) is taken over. Must never take a lock whose holder is alive.
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SpoolLockedError } from './errors.js';

export const LOCK_FILE = 'LOCK';

/** Directories this process holds, so a second open within one process is refused too. */
const held = new Set<string>();

export interface SpoolLock {
  /** The pid of a dead holder whose lock was taken over, if any. */
  tookOverFrom: number | undefined;
  release(): Promise<void>;
}

export async function acquireLock(dir: string): Promise<SpoolLock> {
  const key = resolve(dir);
  const path = join(dir, LOCK_FILE);
  if (held.has(key)) throw new SpoolLockedError(dir, process.pid);
  let tookOverFrom: number | undefined;
  try {
    await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    // Our own pid in a lock we do not hold is a previous run's (a container restarts
    // with the same pid), so it is as stale as a dead one.
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
      throw new SpoolLockedError(dir, holder);
    }
    tookOverFrom = Number.isInteger(holder) ? holder : undefined;
    await writeFile(path, `${process.pid}\n`);
  }
  held.add(key);
  return {
    tookOverFrom,
    release: async () => {
      held.delete(key);
      const owner = await readFile(path, 'utf8').catch(() => '');
      if (Number.parseInt(owner, 10) === process.pid) await unlink(path).catch(() => undefined);
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
