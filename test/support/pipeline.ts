// Starts a real worker (BullMQ sealer + batch processor) against a test database and a
// test key prefix, with short windows so tests finish quickly.
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createPrisma, type PrismaClient } from '../../src/db/client.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { startWorker, type RunningWorker, type WorkerConfig } from '../../src/worker/worker.js';
import { seedWorld } from '../../devkit/world.js';
import { assertRollupsMatchAudit, outcomeOf, type Outcome } from './invariants.js';
import {
  REDIS_URL,
  createTestDatabase,
  createTestRedis,
  waitFor,
  type TestDatabase,
  type TestRedis,
} from './services.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { enqueue } from './fixtures.js';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { BATCH_QUEUE } from '../../src/contract/keys.js';
import { batchSettings, createBatchProcessor } from '../../src/worker/batch-processor.js';
import { EntityLoader } from '../../src/worker/entity-loader.js';
import { UsageProducer } from '../../src/producer/producer.js';
import { buildIngestServer } from '../../src/producer/server.js';
import type { BatchJobData, BatchResult } from '../../src/worker/queues.js';

export function testWorkerConfig(
  prefix: string,
  overrides: Partial<WorkerConfig> = {},
): WorkerConfig {
  return {
    ...loadConfig({}),
    redisUrl: REDIS_URL,
    keyPrefix: prefix,
    partitions: 2,
    flushIntervalMs: 200,
    sealGraceMs: 20,
    entityCacheMs: 0,
    batchBackoffMs: 100,
    ...overrides,
  };
}

export async function startTestWorker(
  prisma: PrismaClient,
  prefix: string,
  overrides: Partial<WorkerConfig> = {},
  roles: { seal?: boolean; process?: boolean; logger?: Logger } = {},
): Promise<RunningWorker> {
  return startWorker({
    config: testWorkerConfig(prefix, overrides),
    prisma,
    logger: silentLogger,
    ...roles,
  });
}

/** Waits until every given report has an audit row or a rejection. */
export async function waitForOutcome(
  prisma: PrismaClient,
  reportIds: string[],
  timeoutMs = 30_000,
): Promise<Outcome> {
  return waitFor(
    `${reportIds.length} reports committed or rejected`,
    async () => {
      const outcome = await outcomeOf(prisma, reportIds);
      return outcome.committed + outcome.rejected >= reportIds.length ? outcome : undefined;
    },
    timeoutMs,
  );
}

export { streamLength } from '../../devkit/services.js';

export interface WorkerTestEnv {
  /** This file's database (created once per file, emptied and re-seeded before each test). */
  readonly db: TestDatabase;
  /** This test's Redis connection and key prefix. */
  readonly r: TestRedis;
  /** Runs `close` after the current test, newest first, before the invariant check. */
  defer(close: () => unknown): void;
  /** A worker on this test's database and prefix, closed after the test. */
  startWorker(
    overrides?: Partial<WorkerConfig>,
    roles?: { seal?: boolean; process?: boolean; logger?: Logger },
  ): Promise<RunningWorker>;
}

/**
 * Registers the lifecycle every worker test file shares: a database per file, the seed
 * world and a fresh Redis prefix per test, and after each test: close what the test
 * started, check invariant 2 by SQL, delete the test's Redis keys.
 */
export function useWorkerTestEnv(options: { seed?: boolean } = {}): WorkerTestEnv {
  let db: TestDatabase | undefined;
  let r: TestRedis | undefined;
  const closers: (() => unknown)[] = [];
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is only available inside a test`);
    return value;
  };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  beforeEach(async () => {
    const database = need(db, 'the database');
    await database.reset();
    if (options.seed !== false) await seedWorld(database.prisma);
    r = await createTestRedis();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await assertRollupsMatchAudit(need(db, 'the database').prisma);
    await r?.cleanup();
  });
  return {
    get db() {
      return need(db, 'the database');
    },
    get r() {
      return need(r, 'the Redis prefix');
    },
    defer: (close) => {
      closers.push(close);
    },
    startWorker: async (overrides = {}, roles = {}) => {
      const worker = await startTestWorker(
        need(db, 'the database').prisma,
        need(r, 'the Redis prefix').prefix,
        overrides,
        roles,
      );
      closers.push(() => worker.close());
      return worker;
    },
  };
}

/** A Prisma client reaching this test's database through a proxy the test can cut. */
export async function cuttableDatabase(
  env: WorkerTestEnv,
): Promise<{ prisma: PrismaClient; proxy: TcpProxy }> {
  const url = new URL(env.db.url);
  const proxy = await startTcpProxy(url.hostname, Number(url.port || 5432));
  url.port = String(proxy.port);
  const prisma = createPrisma(url.toString(), { max: 2 });
  env.defer(async () => {
    await prisma.$disconnect();
    await proxy.close();
  });
  return { prisma, proxy };
}

/**
 * Processes batches with the real batch processor on `streams` (a connection a test may
 * wrap to fail or interfere), in a BullMQ worker of its own; returns a regular worker that
 * only seals, whose queues the test reads. Everything is closed after the test.
 */
export async function processBatchesOn(env: WorkerTestEnv, streams: Redis): Promise<RunningWorker> {
  const processor = createBatchProcessor(
    {
      redis: streams,
      prisma: env.db.prisma,
      entities: new EntityLoader(env.db.prisma, 0),
      logger: silentLogger,
    },
    batchSettings(testWorkerConfig(env.r.prefix)),
  );
  const bull = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const batchWorker = new Worker<BatchJobData, BatchResult>(BATCH_QUEUE, processor, {
    connection: bull,
    prefix: env.r.prefix,
  });
  env.defer(async () => {
    await batchWorker.close();
    bull.disconnect();
    streams.disconnect();
  });
  return env.startWorker({}, { process: false });
}

/**
 * A batch that failed for a real cause: two reports, a worker whose database connection
 * is cut, two attempts spent. `proxy.restore()` fixes the cause.
 */
export async function exhaustedBatch(
  env: WorkerTestEnv,
  logger?: Logger,
): Promise<{
  ids: string[];
  proxy: TcpProxy;
  worker: RunningWorker;
  failed: Job<BatchJobData, BatchResult>;
}> {
  const { prisma, proxy } = await cuttableDatabase(env);
  proxy.cut();
  const ids = await enqueue(env.r.redis, env.r.prefix, [
    { model: 'qwen3-8b', model_id: 1, input_token: 5, completed: true },
    { model: 'qwen3-8b', model_id: 1, input_token: 6, completed: true },
  ]);
  const worker = await startTestWorker(
    prisma,
    env.r.prefix,
    { batchAttempts: 2, batchBackoffMs: 50 },
    logger === undefined ? {} : { logger },
  );
  env.defer(() => worker.close());
  const failed = await waitFor('the batch to exhaust its attempts', async () => {
    const [job] = await worker.batches.getJobs(['failed']);
    return job;
  });
  return { ids, proxy, worker, failed };
}

/** The real HTTP ingest server on this test's Redis prefix, closed after the test. */
export async function startIngest(env: WorkerTestEnv, gatewayToken: string): Promise<string> {
  const producer = new UsageProducer({ redis: REDIS_URL, partitions: 2, keyPrefix: env.r.prefix });
  const server = buildIngestServer({ producer, gatewayToken, logger: silentLogger });
  env.defer(async () => {
    await server.close();
    await producer.close();
  });
  return server.listen({ host: '127.0.0.1', port: 0 });
}
