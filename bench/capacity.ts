// Measures what one report costs on this machine, for the capacity model in docs/scaling.md:
// ingest CPU (the real HTTP ingest server in its own process, one report per request as
// GPUStack's gateway sends), Redis CPU, commands and stream bytes, worker CPU, PostgreSQL
// backend CPU and WAL bytes per committed report, and the extra cost of each rollup key
// (a second run where every report has a rollup key of its own). Writes
// bench/results-capacity.json; scripts/capacity-model.ts turns it into the table.
// `npm run bench:capacity`. Uses a redis-server of its own and a database of its own.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { streamKey } from '../src/contract/keys.js';
import { createPrisma, type PrismaClient } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import { silentLogger } from '../src/logger.js';
import { UsageProducer } from '../src/producer/producer.js';
import { INGEST_PATH, TOKEN_HEADER } from '../src/producer/server.js';
import { startWorker } from '../src/worker/worker.js';
import {
  LOCAL_DATABASE_URL,
  createDatabase,
  dropDatabase,
  streamLength,
} from '../devkit/services.js';
import { startDedicatedRedis } from '../devkit/redis-server.js';
import { reportInput, rng, seedWorld } from './data.js';
import type { IngestChildOptions } from './ingest-child.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const MIX_REPORTS = 20_000;
const KEYED_REPORTS = 10_000;
const PARTITIONS = 4;
const CONNECTIONS = 32;
const TOKEN = 'capacity-bench-token';
const TICKS_PER_SECOND = 100;

/** CPU milliseconds a process has used (user + system), from /proc. */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0; // exited
  }
}

interface RedisCounters {
  cpuMs: number;
  commands: number;
}

async function redisCounters(redis: Redis): Promise<RedisCounters> {
  const cpu = await redis.info('cpu');
  const stats = await redis.info('commandstats');
  const seconds = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
  const commands = [...stats.matchAll(/calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  // INFO itself is counted too: two calls per reading, negligible next to thousands.
  return { cpuMs: (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000, commands };
}

/** CPU of the database's backends (this process's pool connections). */
async function pgCounters(admin: pg.Client, database: string, excludePid: number) {
  const { rows } = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> $2',
    [database, excludePid],
  );
  return { cpu: new Map(rows.map((r) => [r.pid, cpuMsOf(r.pid)])) };
}

/**
 * WAL bytes written for this database while it runs: pg_walinspect's records whose blocks
 * belong to it (PostgreSQL is shared, so the plain LSN difference counts others' writes
 * too), read every 250 ms so no segment is recycled before it is read. Commit records carry
 * no block and are left out: tens of bytes per page. Its own backend is not counted as CPU.
 */
function meterWal(inspect: pg.Client) {
  let from: string | undefined;
  let total = 0;
  let stopped = false;
  const flushed = async () =>
    (await inspect.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn')).rows[0]
      ?.lsn as string;
  const step = async () => {
    const to = await flushed();
    if (to === from) return;
    const { rows } = await inspect.query<{ n: string }>(
      `SELECT coalesce(sum(record_length), 0)::text AS n FROM pg_get_wal_records_info($1, $2)
        WHERE block_ref LIKE '%rel %/' || (SELECT oid FROM pg_database WHERE datname = current_database()) || '/%'`,
      [from, to],
    );
    total += Number(rows[0]?.n ?? 0);
    from = to;
  };
  const loop = (async () => {
    from = await flushed();
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 250));
      await step();
    }
    await step();
  })();
  return {
    async stop(): Promise<number> {
      stopped = true;
      await loop;
      return total;
    },
  };
}

function pgCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, ms] of after) sum += ms - (before.get(pid) ?? 0);
  return sum;
}

/** Single-report POSTs over keep-alive connections until `count` are acknowledged. */
async function sendOverHttp(port: number, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const random = rng(7);
  const bodies = Array.from({ length: 2_048 }, () => JSON.stringify(reportInput(random)));
  let next = 0;
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: INGEST_PATH,
          headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next < count) {
        const i = next;
        next += 1;
        const status = await post(bodies[i % bodies.length] as string);
        if (status !== 200) throw new Error(`ingest answered ${status}`);
      }
    }),
  );
  agent.destroy();
}

interface WorkerPhase {
  seconds: number;
  workerCpuMs: number;
  redis: RedisCounters;
  pgCpuMs: number;
  walBytes: number;
  rollupKeys: number;
  committed: number;
}

async function drainWithWorker(
  deps: {
    redisPort: number;
    redis: Redis;
    prisma: PrismaClient;
    admin: pg.Client;
    inspect: pg.Client;
    inspectPid: number;
    database: string;
  },
  prefix: string,
): Promise<WorkerPhase> {
  const config = {
    ...loadConfig({}),
    redisUrl: `redis://127.0.0.1:${deps.redisPort}`,
    keyPrefix: prefix,
    partitions: PARTITIONS,
    flushIntervalMs: 1_000,
    sealGraceMs: 50,
  };
  const keysBefore = await deps.prisma.modelUsage.count();
  const rowsBefore = await deps.prisma.modelUsageDetail.count();
  // Open the pool's connections first, so their backends are measured from the start.
  await deps.prisma.$queryRawUnsafe('SELECT 1');
  const wal = meterWal(deps.inspect);
  const pgBefore = await pgCounters(deps.admin, deps.database, deps.inspectPid);
  const redisBefore = await redisCounters(deps.redis);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const worker = await startWorker({ config, prisma: deps.prisma, logger: silentLogger });
  const deadline = Date.now() + 600_000;
  for (;;) {
    const left = await streamLength(deps.redis, prefix, PARTITIONS);
    const counts = await worker.batches.getJobCounts('waiting', 'active', 'delayed');
    const busy = (counts['waiting'] ?? 0) + (counts['active'] ?? 0) + (counts['delayed'] ?? 0);
    if (left === 0 && busy === 0) break;
    if (Date.now() > deadline) throw new Error('the worker did not drain the streams');
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisAfter = await redisCounters(deps.redis);
  const pgAfter = await pgCounters(deps.admin, deps.database, deps.inspectPid);
  const walWritten = await wal.stop();
  await worker.close();
  return {
    seconds,
    workerCpuMs: (cpu.user + cpu.system) / 1000,
    redis: {
      cpuMs: redisAfter.cpuMs - redisBefore.cpuMs,
      commands: redisAfter.commands - redisBefore.commands,
    },
    pgCpuMs: pgCpuDelta(pgBefore.cpu, pgAfter.cpu),
    walBytes: walWritten,
    rollupKeys: (await deps.prisma.modelUsage.count()) - keysBefore,
    committed: (await deps.prisma.modelUsageDetail.count()) - rowsBefore,
  };
}

async function main(): Promise<void> {
  const database = `tally_capacity_${process.pid}`;
  await dropDatabase(LOCAL_DATABASE_URL, database);
  const databaseUrl = await createDatabase(LOCAL_DATABASE_URL, database);
  await migrate(databaseUrl);
  const prisma = createPrisma(databaseUrl, { max: 4 });
  await seedWorld(prisma);
  const admin = new pg.Client({ connectionString: LOCAL_DATABASE_URL });
  await admin.connect();
  const inspect = new pg.Client({ connectionString: databaseUrl });
  await inspect.connect();
  await inspect.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
  const inspectPid = (await inspect.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))
    .rows[0]?.pid as number;
  const server = await startDedicatedRedis('none');
  const redis = new Redis(server.port, '127.0.0.1');
  try {
    // 1. Ingest: the real HTTP server in its own process, one report per request.
    const mixPrefix = 'cap-mix';
    const options: IngestChildOptions = {
      redisUrl: `redis://127.0.0.1:${server.port}`,
      keyPrefix: mixPrefix,
      partitions: PARTITIONS,
      token: TOKEN,
    };
    const ingest = fork(join(HERE, 'ingest-child.ts'), [JSON.stringify(options)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [ready] = (await once(ingest, 'message')) as [{ port: number }];
    const ingestCpuBefore = cpuMsOf(ingest.pid as number);
    const redisBefore = await redisCounters(redis);
    const ingestStarted = performance.now();
    await sendOverHttp(ready.port, MIX_REPORTS);
    const ingestSeconds = (performance.now() - ingestStarted) / 1000;
    const ingestCpuMs = cpuMsOf(ingest.pid as number) - ingestCpuBefore;
    const redisIngest = await redisCounters(redis);
    ingest.send({ type: 'stop' });
    await once(ingest, 'exit');
    let streamBytes = 0;
    for (let p = 0; p < PARTITIONS; p += 1) {
      streamBytes += Number(
        (await redis.call('MEMORY', 'USAGE', streamKey(mixPrefix, p), 'SAMPLES', '0')) ?? 0,
      );
    }

    // 2. The worker drains the mix (a few hundred rollup keys).
    const mix = await drainWithWorker(
      { redisPort: server.port, redis, prisma, admin, inspect, inspectPid, database },
      mixPrefix,
    );

    // 3. The extra cost of a rollup key: the same report shape twice, once all on one
    // rollup key (one day), once every report on a key of its own (its own day).
    const sameShape = async (prefix: string, ownKey: boolean) => {
      const producer = new UsageProducer({
        redis: `redis://127.0.0.1:${server.port}`,
        partitions: PARTITIONS,
        keyPrefix: prefix,
        timeoutMs: 10_000,
      });
      const day = 86_400_000;
      const first = Date.UTC(1990, 0, 1);
      for (let i = 0; i < KEYED_REPORTS; i += 1_000) {
        await producer.reportMany(
          Array.from({ length: 1_000 }, (_, j) => ({
            model: 'qwen3-8b',
            model_id: 1,
            user_id: 1,
            access_key: 'gpustack_ak_1',
            operation: 'chat_completion' as const,
            input_token: 500,
            output_token: 200,
            completed: true,
            completed_at: first + (ownKey ? i + j : 0) * day + j,
          })),
        );
      }
      await producer.close();
      return drainWithWorker(
        { redisPort: server.port, redis, prisma, admin, inspect, inspectPid, database },
        prefix,
      );
    };
    const oneKey = await sameShape('cap-one-key', false);
    const keyed = await sameShape('cap-keyed', true);

    // What an audit row occupies on disk (heap, indexes, TOAST), for storage planning.
    const audit = await inspect.query<{ bytes: string; rows: string }>(
      "SELECT pg_total_relation_size('model_usage_details')::text AS bytes, count(*)::text AS rows FROM model_usage_details",
    );
    const results = {
      measuredAt: new Date().toISOString(),
      machine: { cores: (await import('node:os')).cpus().length },
      ingest: {
        reports: MIX_REPORTS,
        seconds: ingestSeconds,
        cpuMs: ingestCpuMs,
        redisCpuMs: redisIngest.cpuMs - redisBefore.cpuMs,
        redisCommands: redisIngest.commands - redisBefore.commands,
        streamBytes,
      },
      auditRowBytes: Number(audit.rows[0]?.bytes) / Number(audit.rows[0]?.rows),
      mix,
      oneKey,
      keyed,
    };
    await writeFile('bench/results-capacity.json', `${JSON.stringify(results, null, 2)}\n`);
    console.log(JSON.stringify(results, null, 2));
  } finally {
    redis.disconnect();
    await server.cleanup();
    await inspect.end();
    await admin.end();
    await prisma.$disconnect();
    await dropDatabase(LOCAL_DATABASE_URL, database);
  }
}

await main();
