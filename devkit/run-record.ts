// What a recorded run says about where and when it ran: the machine, its load average,
// Node and the commit. Shared by the benchmark's and the fault suite's results files.
// Must never read anything but the OS and git.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  /** 1, 5 and 15-minute load averages (os.loadavg()). */
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
}

function git(...args: string[]): string {
  return execFileSync('git', args, { encoding: 'utf8' }).trim();
}

/** The commit being measured, and whether tracked files differ from it. */
export function currentCommit(): { commit: string; dirty: boolean } {
  try {
    const changes = git('status', '--porcelain', '--untracked-files=no');
    return { commit: git('rev-parse', 'HEAD'), dirty: changes !== '' };
  } catch {
    return { commit: 'unknown', dirty: true };
  }
}

/** Names of the files of `dir` that git tracks (committed or staged). */
export function trackedFiles(dir: string): Set<string> {
  const listed = execFileSync('git', ['ls-files', '--', '.'], { cwd: dir, encoding: 'utf8' });
  return new Set(listed.split('\n').filter((f) => f !== '' && !f.includes('/')));
}

export function loadAverageNow(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

export function machineAtStart(): Machine {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    loadAverageAtStart: loadAverageNow(),
    loadAverageAtEnd: [],
  };
}

/** `YYYY-MM-DD-<shortcommit>.json` for a run started at `at` (ISO) on `commit`. */
export function recordFileName(at: string, commit: string): string {
  return `${at.slice(0, 10)}-${commit.slice(0, 7)}.json`;
}

/** One sentence saying when, where and on what the run ran, for the generated docs. */
export function describeRun(
  r: { at: string; commit: string; dirty: boolean; seconds: number; machine: Machine },
  link: string,
): string {
  const m = r.machine;
  return (
    `Run of ${r.at.slice(0, 10)} ${r.at.slice(11, 16)} UTC at commit \`${r.commit.slice(0, 7)}\`` +
    `${r.dirty ? ' (with uncommitted changes)' : ''}, from [\`${link}\`](../${link}): ` +
    `${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, ${Math.round(r.seconds)} s in all. ` +
    `Load average (1, 5, 15 min) ${m.loadAverageAtStart.join(', ')} at the start and ` +
    `${m.loadAverageAtEnd.join(', ')} at the end, on a machine shared with other work.`
  );
}
