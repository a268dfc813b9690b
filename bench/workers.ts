// Worker and helper processes for the benchmark, and drains timed with them: forked
// bench/ children under tsx driven over IPC, or the compiled worker as deployed. Each
// drain says whether process start-up is inside its clock. Must never measure or print
// figures itself; sections do.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerConfig } from '../src/worker/worker.js';
import { streamLength } from '../devkit/services.js';
import type { Harness } from './harness.js';
import type { StartUp } from './recorder.js';
import type { FromWorker, WorkerChildOptions } from './worker-child.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** Longest a drain may take before the run gives up on it. */
const DRAIN_TIMEOUT_MS = 120_000;
/**
 * Worker processes run with the V8 options `npm run worker` and docker-compose give them:
 * a 160 MB heap cap, 4 MB semi-spaces and single-threaded GC (docs/performance.md says why).
 */
export const WORKER_EXEC_ARGV = [
  '--max-old-space-size=160',
  '--max-semi-space-size=4',
  '--single-threaded-gc',
];

export interface WorkerRun {
  seconds: number;
  /** Whether `seconds` includes starting the worker processes. */
  startUp: StartUp;
  peakRssBytes: number;
  /** CPU the workers spent from ready to stop (start-up excluded); undefined when not measured. */
  cpuMs: number | undefined;
}

export function workerConfig(
  h: Harness,
  prefix: string,
  partitions: number,
  flushIntervalMs: number,
): WorkerConfig {
  return { ...h.config, keyPrefix: prefix, partitions, flushIntervalMs };
}

/** A bench/ module as a child process under tsx, its options as argv[2], with IPC. */
export function forkTs(file: string, arg: unknown, extraExecArgv: string[] = []): ChildProcess {
  return fork(join(HERE, file), [JSON.stringify(arg)], {
    execArgv: ['--import', 'tsx', ...extraExecArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** The child's next IPC message (of `type`, if given); rejects if the child exits first. */
export function nextMessage<T>(child: ChildProcess, type?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: T & { type?: string }) => {
      if (type !== undefined && message.type !== type) return;
      cleanup();
      resolve(message);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child ${child.pid} exited (${code}) before answering`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Seconds from `started` until the streams are empty (a timeout fails the run). */
async function waitDrained(
  h: Harness,
  prefix: string,
  partitions: number,
  started: number,
  check: () => void = () => undefined,
): Promise<number> {
  for (;;) {
    check();
    if ((await streamLength(h.redis, prefix, partitions)) === 0) break;
    if (performance.now() - started > DRAIN_TIMEOUT_MS) {
      h.rec.fail(`drain timed out after ${DRAIN_TIMEOUT_MS} ms`);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return (performance.now() - started) / 1000;
}

/**
 * Starts `workers` processes and waits until all are ready, then seals the backlog and
 * times until the streams are empty: process start-up is outside the clock and the CPU.
 */
export async function drainWith(
  h: Harness,
  prefix: string,
  partitions: number,
  workers: number,
): Promise<WorkerRun> {
  const options: WorkerChildOptions = {
    config: workerConfig(h, prefix, partitions, h.config.flushIntervalMs),
    databaseUrl: h.benchUrl,
    seal: false,
  };
  const profArgs = h.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(HERE, 'profiles')}`] : [];
  const children = Array.from({ length: workers }, () =>
    forkTs('worker-child.ts', options, [...WORKER_EXEC_ARGV, ...profArgs]),
  );
  await Promise.all(children.map((c) => nextMessage(c, 'ready')));
  const started = performance.now();
  const first = children[0];
  if (first === undefined) throw new Error('no worker');
  first.send({ type: 'seal' });
  await nextMessage(first, 'sealed');
  const seconds = await waitDrained(h, prefix, partitions, started);
  const stopped = await Promise.all(
    children.map((c) => {
      const answer = nextMessage<Extract<FromWorker, { type: 'stopped' }>>(c, 'stopped');
      c.send({ type: 'stop' });
      return answer;
    }),
  );
  return {
    seconds,
    startUp: 'excluded',
    peakRssBytes: Math.max(...stopped.map((s) => s.peakRssBytes)),
    cpuMs: stopped.reduce((sum, s) => sum + s.cpuMsSinceReady, 0),
  };
}

/**
 * Drains with the worker exactly as deployed: the compiled entry point (`npm run build`,
 * what the Docker image runs) under the heap cap docker-compose gives it, its own sealer
 * scheduler, and the peak RSS read from /proc before it is stopped. The clock starts at
 * the spawn: process start-up is included.
 */
export async function drainWithDeployedWorker(
  h: Harness,
  prefix: string,
  partitions: number,
): Promise<WorkerRun> {
  const child = spawn(
    process.execPath,
    [...WORKER_EXEC_ARGV, join(HERE, '..', 'dist', 'src', 'worker', 'main.js')],
    {
      env: {
        ...process.env,
        DATABASE_URL: h.benchUrl,
        REDIS_URL: h.config.redisUrl,
        TALLY_KEY_PREFIX: prefix,
        TALLY_PARTITIONS: String(partitions),
        // Short windows, so the first sealer tick comes at once; the backlog's windows are closed.
        TALLY_FLUSH_INTERVAL_MS: '1000',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const started = performance.now();
  const status = () => readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const seconds = await waitDrained(h, prefix, partitions, started, () => {
    if (child.exitCode !== null)
      throw new Error(`worker exited (${child.exitCode}) while draining`);
  });
  const peak = /VmHWM:\s+(\d+) kB/.exec(status())?.[1];
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
  return {
    seconds,
    startUp: 'included',
    peakRssBytes: Number(peak ?? 0) * 1024,
    cpuMs: undefined,
  };
}
