// Benchmark of the ingest spool at the HTTP edge: one report per POST (GPUStack's shape)
// through the same server twice in one run, once with Redis answering (the Redis path) and
// once with Redis refusing connections (every request appended to the spool and synced
// before its 200). Reports throughput and p50/p99 latency of both, the spool's against the
// Redis path's as its baseline.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../devkit/services.js';
import { INGEST_PATH, TOKEN_HEADER } from '../src/producer/server.js';
import { reportInput, rng } from './data.js';
import type { LoadOptions, LoadResult } from './http-load.js';
import type { SpoolIngestChildOptions } from './spool-ingest-child.js';
import { median } from './stats.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const TOKEN = 'bench-spool-token';
const REPS = 3;

export interface SpoolFigure {
  section: string;
  name: string;
  value: number;
  unit: string;
  baselineName?: string;
  baseline?: number;
}

function forkTs(file: string, arg: unknown): ChildProcess {
  return fork(join(HERE, file), [JSON.stringify(arg)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** The child's next message (of `type`, if given); rejects if the child exits first. */
function message<T>(child: ChildProcess, type?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (value: T & { type?: string }) => {
      if (type !== undefined && value.type !== type) return;
      child.off('exit', onExit);
      child.off('message', onMessage);
      resolve(value);
    };
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`${child.spawnfile} exited (${code}) before answering`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function startServer(redisUrl: string, keyPrefix: string) {
  const spoolDir = await mkdtemp(join(tmpdir(), 'tally-bench-spool-'));
  const options: SpoolIngestChildOptions = {
    redisUrl,
    keyPrefix,
    partitions: 8,
    token: TOKEN,
    spoolDir,
  };
  const child = forkTs('spool-ingest-child.ts', options);
  const { port } = await message<{ port: number }>(child, 'ready');
  return {
    port,
    stop: async () => {
      const stopped = message<{ spooled: number }>(child, 'stopped');
      child.send({ type: 'stop' });
      const { spooled } = await stopped;
      await rm(spoolDir, { recursive: true, force: true });
      return spooled;
    },
  };
}

/**
 * Runs both paths `REPS` times, alternating, and returns the figures (medians). The Redis
 * path uses `redisUrl` under `keyPrefix` (the caller deletes those keys).
 */
export async function benchSpool(redisUrl: string, keyPrefix: string): Promise<SpoolFigure[]> {
  const refusing = `redis://127.0.0.1:${await freePort()}`;
  const servers = {
    redis: await startServer(redisUrl, keyPrefix),
    spool: await startServer(refusing, keyPrefix),
  };
  const load = forkTs('http-load.ts', {});
  const body = JSON.stringify(reportInput(rng(7)));
  const results: Record<'redis' | 'spool', LoadResult[]> = { redis: [], spool: [] };
  let spooled = 0;
  try {
    for (let rep = 0; rep < REPS; rep += 1) {
      for (const path of ['redis', 'spool'] as const) {
        const options: LoadOptions = {
          port: servers[path].port,
          method: 'POST',
          path: INGEST_PATH,
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
          body,
          connections: 32,
          durationMs: 1_500,
          warmupMs: 300,
        };
        const answer = message<LoadResult>(load);
        load.send(options);
        const result = await answer;
        if (result.errors > 0) throw new Error(`${path} path: ${result.errors} non-200 answers`);
        results[path].push(result);
      }
    }
  } finally {
    load.disconnect();
    await servers.redis.stop();
    spooled = await servers.spool.stop();
  }
  if (spooled === 0) throw new Error('the spool path spooled nothing');
  const rps = (path: 'redis' | 'spool') => median(results[path].map((r) => r.requests / r.seconds));
  const p = (path: 'redis' | 'spool', key: 'p50Ms' | 'p99Ms') =>
    median(results[path].map((r) => r[key]));
  const section = 'spool';
  return [
    { section, name: 'POST one report, Redis path', value: rps('redis'), unit: 'reports/s' },
    {
      section,
      name: 'POST one report, spool path (Redis refusing)',
      value: rps('spool'),
      unit: 'reports/s',
      baselineName: 'Redis path',
      baseline: rps('redis'),
    },
    { section, name: 'Redis path latency p50', value: p('redis', 'p50Ms'), unit: 'ms' },
    { section, name: 'Redis path latency p99', value: p('redis', 'p99Ms'), unit: 'ms' },
    {
      section,
      name: 'spool path latency p50',
      value: p('spool', 'p50Ms'),
      unit: 'ms',
      baselineName: 'Redis path p50',
      baseline: p('redis', 'p50Ms'),
    },
    {
      section,
      name: 'spool path latency p99',
      value: p('spool', 'p99Ms'),
      unit: 'ms',
      baselineName: 'Redis path p99',
      baseline: p('redis', 'p99Ms'),
    },
  ];
}
