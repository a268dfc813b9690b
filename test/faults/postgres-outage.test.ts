// Fault 2: PostgreSQL (a dedicated cluster) stopped with `pg_ctl stop -m immediate` for at
// least 30 s while reports keep arriving. Batches fail and back off; the producer is not
// affected; once the server is back every report commits once.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_QUEUE } from '../../src/contract/keys.js';
import { createPrisma, type PrismaClient } from '../../src/db/client.js';
import { UsageProducer } from '../../src/producer/index.js';
import { seedWorld } from '../support/fixtures.js';
import { REDIS_URL, createTestRedis, waitFor, type TestRedis } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { printLine, waitSettled } from './support/accounting.js';
import { startDedicatedPostgres, type DedicatedPostgres } from './support/postgres-cluster.js';
import { spawnWorker, type Child } from './support/processes.js';

const OUTAGE_MS = 32_000;

let pg: DedicatedPostgres;
let r: TestRedis;
let worker: Child | undefined;
let prisma: PrismaClient | undefined;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [pg, r] = await Promise.all([startDedicatedPostgres(), createTestRedis()]);
});
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await worker?.stop('SIGKILL');
  await prisma?.$disconnect();
  await r?.cleanup();
  await pg?.cleanup();
});

describe('fault 2: PostgreSQL down for 30 s', () => {
  it('keeps every report in Redis while it is down and commits each once after', async () => {
    prisma = createPrisma(pg.url, { max: 2 });
    await seedWorld(prisma);
    const partitions = 2;
    worker = spawnWorker({
      DATABASE_URL: pg.url,
      REDIS_URL,
      TALLY_KEY_PREFIX: r.prefix,
      TALLY_PARTITIONS: String(partitions),
      TALLY_FLUSH_INTERVAL_MS: '1000',
      TALLY_SEAL_GRACE_MS: '100',
      TALLY_BATCH_BACKOFF_MS: '250',
      TALLY_BATCH_ATTEMPTS: '100',
      TALLY_ENTITY_CACHE_MS: '0',
    });
    const producer = new UsageProducer({ redis: REDIS_URL, keyPrefix: r.prefix, partitions });
    closers.push(() => producer.close());
    const bull = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const batches = new Queue(BATCH_QUEUE, { connection: bull, prefix: r.prefix });
    closers.push(async () => {
      await batches.close();
      bull.disconnect();
    });

    // The gateway: 50 reports every 100 ms, through the SDK, for the whole test.
    const ids: string[] = [];
    let producerErrors = 0;
    let slowest = 0;
    let sending = true;
    const gateway = (async () => {
      for (let n = 0; sending && n < 2_000; n += 1) {
        const started = performance.now();
        try {
          ids.push(
            ...(await producer.reportMany(
              Array.from({ length: 50 }, (_, i) => ({
                model: 'qwen3-8b',
                model_id: 1,
                user_id: 1 + (i % 3),
                input_token: 1 + (n % 7),
                completed: true,
              })),
            )),
          );
        } catch {
          producerErrors += 1;
        }
        slowest = Math.max(slowest, performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 100)); // pacing
      }
    })();

    await waitFor(
      'the first reports committed',
      async () => ((await prisma!.modelUsageDetail.count()) > 0 ? true : undefined),
      30_000,
      100,
    );
    await prisma.$disconnect();
    await pg.stopImmediately();
    const downAt = Date.now();
    const sentBeforeOutage = ids.length;

    // While it is down, batches fail and are retried with backoff; nothing is deleted.
    let seen = '';
    const failing = await waitFor(
      'a batch to fail at least twice',
      async () => {
        const jobs = await batches.getJobs(['delayed', 'waiting', 'active', 'failed']);
        seen = (
          await Promise.all(
            jobs.map(async (j) => `${j.id} ${await j.getState()} attempts ${j.attemptsMade}`),
          )
        ).join('; ');
        return jobs.find((j) => j.attemptsMade >= 2);
      },
      OUTAGE_MS - 2_000,
      250,
    ).catch((error: unknown) => {
      throw new Error(
        `${(error as Error).message}\nbatches: ${seen || 'none'}\nworker said:\n${worker!.output()}`,
      );
    });
    const failedReason = failing.failedReason;
    await waitFor(
      'the outage to last its time',
      () => (Date.now() - downAt >= OUTAGE_MS ? true : undefined),
      OUTAGE_MS + 1_000,
      250,
    );
    const sentDuringOutage = ids.length - sentBeforeOutage;
    await pg.start();
    const outageMs = Date.now() - downAt;
    await waitFor(
      'a few reports after the outage',
      () => (ids.length >= sentBeforeOutage + sentDuringOutage + 500 ? true : undefined),
      30_000,
      100,
    );
    sending = false;
    await gateway;

    prisma = createPrisma(pg.url, { max: 2 });
    const tally = await waitSettled({
      prisma,
      redis: r.redis,
      prefix: r.prefix,
      partitions,
      ids,
      timeoutMs: 90_000,
      watch: [{ name: 'worker', exited: () => worker!.exited(), output: () => worker!.output() }],
    });
    await assertRollupsMatchAudit(prisma);
    printLine(
      'PostgreSQL down',
      tally,
      `down ${(outageMs / 1000).toFixed(1)} s, ${sentDuringOutage} sent meanwhile, producer errors ${producerErrors}, slowest producer call ${Math.round(slowest)} ms`,
    );
    expect(failedReason).toMatch(/\S/);
    expect(outageMs).toBeGreaterThanOrEqual(30_000);
    expect(sentDuringOutage).toBeGreaterThan(10_000);
    expect(producerErrors).toBe(0);
    expect(tally).toEqual({
      sent: ids.length,
      committed: ids.length,
      duplicates: 0,
      rejected: 0,
      lost: 0,
    });
    // The worker rode it out without restarting.
    expect(worker.exited()).toBe(false);
  });
});
