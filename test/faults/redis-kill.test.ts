// Fault 3: a dedicated redis-server (AOF, appendfsync always) killed with SIGKILL while
// reports arrive and a worker runs, then restarted on the same dir. Every report the
// producer acknowledged survives and commits once; calls made while it is down fail with
// RedisUnavailableError and are resent by the "gateway" with the same report_ids.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UsageReportInput } from '../../src/contract/index.js';
import { RedisUnavailableError, UsageProducer } from '../../src/producer/index.js';
import { seedWorld } from '../support/fixtures.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { streamLength } from '../support/pipeline.js';
import { printLine, waitSettled } from './support/accounting.js';
import { spawnWorker, type Child } from './support/processes.js';
import { startDedicatedRedis, type DedicatedRedis } from '../../devkit/redis-server.js';

let db: TestDatabase;
let redis: DedicatedRedis;
let worker: Child | undefined;
let producer: UsageProducer | undefined;

beforeAll(async () => {
  [db, redis] = await Promise.all([createTestDatabase(), startDedicatedRedis('always')]);
  await seedWorld(db.prisma);
});
afterAll(async () => {
  await producer?.close();
  await worker?.stop('SIGKILL');
  await redis?.cleanup();
  await db?.drop();
});

describe('fault 3: Redis killed with SIGKILL and restarted', () => {
  it('keeps every acknowledged report and commits each once', async () => {
    const prefix = 'f3';
    const partitions = 2;
    worker = spawnWorker({
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      TALLY_KEY_PREFIX: prefix,
      TALLY_PARTITIONS: String(partitions),
      TALLY_FLUSH_INTERVAL_MS: '1000',
      TALLY_SEAL_GRACE_MS: '100',
      TALLY_BATCH_BACKOFF_MS: '250',
      TALLY_BATCH_ATTEMPTS: '100',
      TALLY_BATCH_LOCK_MS: '2000',
      TALLY_ENTITY_CACHE_MS: '0',
    });
    producer = new UsageProducer({
      redis: redis.url,
      keyPrefix: prefix,
      partitions,
      timeoutMs: 500,
    });
    const p = producer;

    const acknowledged: string[] = [];
    const unacknowledged: UsageReportInput[][] = [];
    let typedErrors = 0;
    let otherErrors = 0;
    let slowestFailureMs = 0;
    let n = 0;
    const batch = (): UsageReportInput[] =>
      Array.from({ length: 20 }, (_, i) => ({
        report_id: `f3-${n}-${i}`,
        model: 'qwen3-8b',
        model_id: 1,
        user_id: 1 + (i % 3),
        input_token: 3,
        completed: true,
      }));
    const send = async (reports: UsageReportInput[]) => {
      const started = performance.now();
      try {
        acknowledged.push(...(await p.reportMany(reports)));
        return true;
      } catch (error) {
        if (error instanceof RedisUnavailableError) typedErrors += 1;
        else otherErrors += 1;
        slowestFailureMs = Math.max(slowestFailureMs, performance.now() - started);
        unacknowledged.push(reports);
        return false;
      }
    };
    let sending = true;
    const gateway = (async () => {
      for (; sending && n < 3_000; n += 1) {
        await send(batch());
        await new Promise((resolve) => setTimeout(resolve, 25)); // pacing
      }
    })();

    await waitFor(
      'reports committed before the kill',
      async () => ((await db.prisma.modelUsageDetail.count()) >= 500 ? true : undefined),
      30_000,
      100,
    );
    const ackedAtKill = acknowledged.length;
    // The fault must hit something: acknowledged reports not yet committed, held by Redis alone.
    const inRedisAtKill = await streamLength(redis.admin(), prefix, partitions);
    expect(inRedisAtKill).toBeGreaterThan(0);
    await redis.kill('SIGKILL');
    await waitFor(
      'calls to fail while Redis is down',
      () => (typedErrors >= 5 ? true : undefined),
      20_000,
      50,
    );
    await redis.start();
    await waitFor(
      'the producer to recover by itself',
      () => (acknowledged.length >= ackedAtKill + 1_000 ? true : undefined),
      30_000,
      100,
    );
    sending = false;
    await gateway;
    // The gateway resends what was not acknowledged, with the same report_ids.
    const resend = unacknowledged.splice(0);
    for (const reports of resend) expect(await send(reports)).toBe(true);

    const tally = await waitSettled({
      prisma: db.prisma,
      redis: redis.admin(),
      prefix,
      partitions,
      ids: acknowledged,
      timeoutMs: 90_000,
      watch: [{ name: 'worker', exited: () => worker!.exited(), output: () => worker!.output() }],
    });
    await assertRollupsMatchAudit(db.prisma);
    printLine(
      'Redis SIGKILL + restart (AOF always)',
      tally,
      `${ackedAtKill} acknowledged before the kill (${inRedisAtKill} of them only in Redis), ${resend.length} calls refused while down (RedisUnavailableError, slowest ${Math.round(slowestFailureMs)} ms) and resent`,
    );
    expect(otherErrors).toBe(0);
    expect(slowestFailureMs).toBeLessThan(500 + 250);
    expect(tally).toEqual({
      sent: acknowledged.length,
      committed: acknowledged.length,
      duplicates: 0,
      rejected: 0,
      lost: 0,
    });
    expect(await streamLength(redis.admin(), prefix, partitions)).toBe(0);
    expect(worker.exited()).toBe(false);
  });
});
