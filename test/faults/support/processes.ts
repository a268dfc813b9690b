// Real Tally processes for the fault suite: workers and ingest servers spawned with
// `node --import tsx`, killed with real signals. Output is kept (bounded) so a failing
// scenario can show what the child said.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from '../../../devkit/services.js';
import { scratchDir } from '../../support/scratch.js';
import { waitFor } from '../../support/services.js';

const KEEP_OUTPUT_CHARS = 20_000;

export interface Child {
  process: ChildProcess;
  pid: number;
  /** The last characters the child wrote to stdout and stderr. */
  output(): string;
  /** Sends `signal`; resolves when the child has exited (SIGKILL follows after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  signal(signal: NodeJS.Signals): void;
  exited(): boolean;
}

function track(child: ChildProcess): Child {
  let output = '';
  const keep = (chunk: string) => {
    output = (output + chunk).slice(-KEEP_OUTPUT_CHARS);
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  if (child.pid === undefined) throw new Error('child process did not start');
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    process: child,
    pid: child.pid,
    output: () => output,
    exited,
    signal: (signal) => {
      if (!exited()) child.kill(signal);
    },
    stop: async (signal = 'SIGTERM', graceMs = 10_000) => {
      if (exited()) return child.exitCode;
      const exit = once(child, 'exit');
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        const [code] = (await exit) as [number | null];
        return code;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Spawns a TypeScript entry point of this repository with extra environment. */
export function spawnTs(entry: string, env: Record<string, string>, args: string[] = []): Child {
  return track(
    spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** A worker process (`src/worker/main.ts`). */
export function spawnWorker(env: Record<string, string>): Child {
  return spawnTs('src/worker/main.ts', { LOG_LEVEL: 'warn', ...env });
}

export { freePort };

/** An ingest process (`src/producer/main.ts`) on `port` (default: a free one), once it answers /healthz. */
export async function spawnIngest(
  env: Record<string, string>,
  port?: number,
): Promise<{ child: Child; base: string }> {
  port ??= await freePort();
  const child = spawnTs('src/producer/main.ts', {
    LOG_LEVEL: 'warn',
    // A spool directory of its own unless the scenario names one (to restart on it).
    TALLY_SPOOL_DIR: scratchDir('tally-spool-'),
    ...env,
    TALLY_INGEST_HOST: '127.0.0.1',
    TALLY_INGEST_PORT: String(port),
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      'the ingest process to answer /healthz',
      async () => {
        if (child.exited()) throw new Error(`ingest exited: ${child.output()}`);
        const response = await fetch(`${base}/healthz`);
        return response.ok ? true : undefined;
      },
      30_000,
      100,
    );
  } catch (error) {
    await child.stop('SIGKILL');
    throw error;
  }
  return { child, base };
}

/** Runs a script to completion; resolves to its exit code and output. */
export async function runTs(
  entry: string,
  env: Record<string, string>,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  const child = spawnTs(entry, env, args);
  // 'close' (not 'exit') so every line the child wrote has been read.
  const exit = once(child.process, 'close');
  const timer = setTimeout(() => child.signal('SIGKILL'), timeoutMs);
  try {
    const [code] = (await exit) as [number | null];
    return { code, output: child.output() };
  } finally {
    clearTimeout(timer);
  }
}
