// Section "spool": the ingest spool at the HTTP edge. One report per POST (GPUStack's shape)
// to two ingest servers with their spool on: one whose Redis answers (the Redis path, the
// baseline) and one whose Redis refuses connections, so every request is appended to the
// spool and synced before its 200. Throughput and p50/p99 of both, alternating, medians.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../devkit/services.js';
import { INGEST_PATH, TOKEN_HEADER } from '../../src/producer/server.js';
import type { Harness } from '../harness.js';
import type { LoadOptions, LoadResult } from '../http-load.js';
import type { SpoolIngestChildOptions } from '../spool-ingest-child.js';
import { PARTITIONS, type Section } from '../section.js';
import { median } from '../stats.js';
import { forkTs, nextMessage } from '../workers.js';
import { templates } from './producer.js';

const TOKEN = 'bench-spool-token';
const CONNECTIONS = 32;
const REPETITIONS = 3;
const PATHS = ['redis', 'spool'] as const;
type Path = (typeof PATHS)[number];

async function startServer(redisUrl: string, keyPrefix: string) {
  const spoolDir = await mkdtemp(join(tmpdir(), 'tally-bench-spool-'));
  const options: SpoolIngestChildOptions = {
    redisUrl,
    keyPrefix,
    partitions: PARTITIONS,
    token: TOKEN,
    spoolDir,
  };
  const child = forkTs('spool-ingest-child.ts', options);
  const { port } = await nextMessage<{ port: number }>(child, 'ready');
  return {
    port,
    /** Stops the server; returns how many reports it spooled. */
    stop: async (): Promise<number> => {
      const stopped = nextMessage<{ spooled: number }>(child, 'stopped');
      child.send({ type: 'stop' });
      const { spooled } = await stopped;
      await rm(spoolDir, { recursive: true, force: true });
      return spooled;
    },
  };
}

async function run(h: Harness): Promise<void> {
  h.rec.heading(
    `Ingest spool at the HTTP edge (one report per POST, ${CONNECTIONS} keep-alive connections)`,
  );
  const prefix = h.prefix('spool');
  const refusing = `redis://127.0.0.1:${await freePort()}`;
  const servers = {
    redis: await startServer(h.config.redisUrl, prefix),
    spool: await startServer(refusing, prefix),
  };
  const load = forkTs('http-load.ts', {});
  const body = JSON.stringify(templates(1)[0]);
  const results: Record<Path, LoadResult[]> = { redis: [], spool: [] };
  let spooled = 0;
  try {
    for (let rep = 0; rep < REPETITIONS; rep += 1) {
      for (const path of PATHS) {
        const options: LoadOptions = {
          port: servers[path].port,
          method: 'POST',
          path: INGEST_PATH,
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
          body,
          connections: CONNECTIONS,
          durationMs: 1_500,
          warmupMs: 300,
        };
        const answer = nextMessage<LoadResult>(load);
        load.send(options);
        const result = await answer;
        if (result.errors > 0)
          h.rec.fail(`spool section, ${path} path: ${result.errors} non-200 answers`);
        results[path].push(result);
      }
    }
  } finally {
    load.disconnect();
    await servers.redis.stop();
    spooled = await servers.spool.stop();
    await h.clearPrefix(prefix);
  }
  if (spooled === 0) h.rec.fail('spool section: the spool path spooled nothing');
  const rps = (path: Path) => median(results[path].map((r) => r.requests / r.seconds));
  const p = (path: Path, key: 'p50Ms' | 'p99Ms') => median(results[path].map((r) => r[key]));

  const redisPath = rps('redis');
  h.rec.figure({
    id: 'spool.redis',
    name: 'POST one report, Redis path',
    value: redisPath,
    unit: 'requests/s',
    startUp: 'excluded',
  });
  h.rec.figure({
    id: 'spool.spool',
    name: 'POST one report, spool path (Redis refusing)',
    value: rps('spool'),
    unit: 'requests/s',
    startUp: 'excluded',
    baselineName: 'Redis path, requests/s',
    baseline: redisPath,
  });
  for (const key of ['p50Ms', 'p99Ms'] as const) {
    const label = key === 'p50Ms' ? 'p50' : 'p99';
    h.rec.figure({
      id: `spool.redis_${label}`,
      name: `Redis path latency ${label}`,
      value: p('redis', key),
      unit: 'ms',
    });
    h.rec.figure({
      id: `spool.spool_${label}`,
      name: `spool path latency ${label}`,
      value: p('spool', key),
      unit: 'ms',
      baselineName: `Redis path ${label}, ms`,
      baseline: p('redis', key),
    });
  }
}

const section: Section = { run };
export default section;
