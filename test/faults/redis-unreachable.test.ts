// Fault 4: Redis unreachable from the producer (a dedicated redis-server frozen with
// SIGSTOP, then killed outright). The SDK fails within its timeout with
// RedisUnavailableError; the ingest process with its spool turned off
// (TALLY_SPOOL_MAX_BYTES=0) answers 503 with the report_ids and recovers by itself when
// Redis is back; resent reports commit once. With the spool on, see fault 9.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisUnavailableError, UsageProducer } from '../../src/producer/index.js';
import { seedWorld } from '../support/fixtures.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { printLine, waitSettled } from './support/accounting.js';
import { post } from './support/load.js';
import { spawnIngest, spawnWorker, type Child } from './support/processes.js';
import { startDedicatedRedis, type DedicatedRedis } from '../../devkit/redis-server.js';

const TOKEN = 'f4-token';
const TIMEOUT_MS = 500;

let db: TestDatabase;
let redis: DedicatedRedis;
const children: Child[] = [];
let producer: UsageProducer | undefined;

beforeAll(async () => {
  [db, redis] = await Promise.all([createTestDatabase(), startDedicatedRedis('always')]);
  await seedWorld(db.prisma);
});
afterAll(async () => {
  redis?.thaw();
  await producer?.close();
  for (const c of children) await c.stop('SIGKILL');
  await redis?.cleanup();
  await db?.drop();
});

const reports = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    report_id: `f4-${tag}-${i}`,
    model: 'qwen3-8b',
    model_id: 1,
    user_id: 1 + (i % 3),
    input_token: 2,
    completed: true,
  }));

describe('fault 4: Redis unreachable from the producer', () => {
  it('fails fast with a typed error, answers 503, and recovers by itself', async () => {
    const env = {
      REDIS_URL: redis.url,
      TALLY_KEY_PREFIX: 'f4',
      TALLY_PARTITIONS: '2',
      TALLY_PRODUCER_TIMEOUT_MS: String(TIMEOUT_MS),
    };
    const { child: ingest, base } = await spawnIngest({
      ...env,
      TALLY_GATEWAY_TOKEN: TOKEN,
      TALLY_SPOOL_MAX_BYTES: '0',
    });
    children.push(ingest);
    const worker = spawnWorker({
      ...env,
      DATABASE_URL: db.url,
      TALLY_FLUSH_INTERVAL_MS: '1000',
      TALLY_SEAL_GRACE_MS: '100',
      TALLY_BATCH_BACKOFF_MS: '250',
      TALLY_BATCH_ATTEMPTS: '100',
      TALLY_ENTITY_CACHE_MS: '0',
    });
    children.push(worker);
    producer = new UsageProducer({
      redis: redis.url,
      keyPrefix: 'f4',
      partitions: 2,
      timeoutMs: TIMEOUT_MS,
    });
    const acknowledged: string[] = [];
    acknowledged.push(...(await producer.reportMany(reports('sdk-before', 100))));
    const first = await post(base, TOKEN, reports('http-before', 100));
    expect(first.status).toBe(200);
    acknowledged.push(...(first.json['report_ids'] as string[]));
    // The worker checks Redis when it starts: let it be running before Redis goes away.
    await waitFor(
      'the worker to commit the reports sent before the outage',
      async () => ((await db.prisma.modelUsageDetail.count()) >= 200 ? true : undefined),
      60_000,
      100,
    );

    const outages: string[] = [];
    for (const how of ['SIGSTOP', 'SIGKILL'] as const) {
      if (how === 'SIGSTOP') redis.freeze();
      else await redis.kill('SIGKILL');

      const started = performance.now();
      const refused = await producer.reportMany(reports(`sdk-${how}`, 50)).then(
        () => undefined,
        (error: unknown) => error,
      );
      const sdkMs = performance.now() - started;
      expect(refused).toBeInstanceOf(RedisUnavailableError);
      expect((refused as RedisUnavailableError).reportIds).toHaveLength(50);
      // Bounded by the timeout; the margin absorbs event-loop delay on a loaded 2-core machine.
      expect(sdkMs).toBeLessThan(TIMEOUT_MS + 1_000);

      const httpStarted = performance.now();
      const down = await post(base, TOKEN, reports(`http-${how}`, 50));
      const httpMs = performance.now() - httpStarted;
      expect(down.status).toBe(503);
      expect(down.json['error']).toBe('redis_unavailable');
      expect(down.json['report_ids']).toEqual(reports(`http-${how}`, 50).map((x) => x.report_id));
      expect(httpMs).toBeLessThan(TIMEOUT_MS + 1_000);
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      outages.push(
        `${how}: SDK refused in ${Math.round(sdkMs)} ms, HTTP 503 in ${Math.round(httpMs)} ms`,
      );

      if (how === 'SIGSTOP') redis.thaw();
      else await redis.start();
      // No restart of the ingest process: it answers 200 again by itself. The gateway
      // resends exactly what it was refused, with the same report_ids.
      const recovered = await waitFor(
        'the ingest process to accept again',
        async () => {
          const again = await post(base, TOKEN, reports(`http-${how}`, 50));
          return again.status === 200 ? again : undefined;
        },
        30_000,
        200,
      );
      acknowledged.push(...(recovered.json['report_ids'] as string[]));
      acknowledged.push(...(await producer.reportMany(reports(`sdk-${how}`, 50))));
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    }
    expect(ingest.exited()).toBe(false);

    const tally = await waitSettled({
      prisma: db.prisma,
      redis: redis.admin(),
      prefix: 'f4',
      partitions: 2,
      ids: acknowledged,
      timeoutMs: 60_000,
      watch: [{ name: 'worker', exited: () => worker.exited(), output: () => worker.output() }],
    });
    await assertRollupsMatchAudit(db.prisma);
    printLine('Redis unreachable from the producer', tally, outages.join('; '));
    expect(tally).toEqual({ sent: 400, committed: 400, duplicates: 0, rejected: 0, lost: 0 });
  });
});
