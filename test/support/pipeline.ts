// Starts a real worker (BullMQ sealer + batch processor) against a test database and a
// test key prefix, with short windows so tests finish quickly.
import type { Redis } from 'ioredis';
import { loadConfig } from '../../src/contract/config.js';
import { streamKey } from '../../src/contract/keys.js';
import type { PrismaClient } from '../../src/db/client.js';
import { silentLogger } from '../../src/logger.js';
import { startWorker, type RunningWorker, type WorkerConfig } from '../../src/worker/worker.js';
import { outcomeOf, type Outcome } from './invariants.js';
import { REDIS_URL, waitFor } from './services.js';

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
  roles: { seal?: boolean; process?: boolean } = {},
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

/** Total entries left in the partition streams. */
export async function streamLength(
  redis: Redis,
  prefix: string,
  partitions: number,
): Promise<number> {
  let total = 0;
  for (let p = 0; p < partitions; p += 1) total += await redis.xlen(streamKey(prefix, p));
  return total;
}
