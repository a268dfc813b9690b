// Graceful shutdown: a worker closing mid-batch releases the rest of the window between
// pages (without spending an attempt); another worker finishes it, counting each report once.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REPORT_FIELD, streamKey } from '../../src/contract/keys.js';
import { openBatchQueue } from '../../src/worker/queues.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import { rid, seedWorld } from '../support/fixtures.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { startTestWorker, streamLength } from '../support/pipeline.js';
import {
  createTestDatabase,
  createTestRedis,
  waitFor,
  type TestDatabase,
  type TestRedis,
} from '../support/services.js';

let db: TestDatabase;
let r: TestRedis;
const workers: RunningWorker[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.reset();
  await seedWorld(db.prisma);
  r = await createTestRedis();
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
  await assertRollupsMatchAudit(db.prisma);
  await r.cleanup();
});

describe('graceful shutdown', () => {
  it('releases a batch between pages and another worker finishes it exactly once', async () => {
    const total = 6_000;
    const windowMs = 1_000;
    const windowStart = Math.floor((Date.now() - 60_000) / windowMs) * windowMs;
    const pipeline = r.redis.pipeline();
    for (let i = 0; i < total; i += 1) {
      const report = {
        report_id: rid('sd'),
        model: 'qwen3-8b',
        model_id: 1,
        input_token: 2,
        completed: true,
      };
      pipeline.xadd(
        streamKey(r.prefix, 0),
        `${windowStart}-${i + 1}`,
        REPORT_FIELD,
        JSON.stringify(report),
      );
    }
    await pipeline.exec();

    const first = await startTestWorker(db.prisma, r.prefix, {
      flushIntervalMs: windowMs,
      pageSize: 50,
    });
    await waitFor('the first pages committed', async () =>
      (await db.prisma.modelUsageDetail.count()) >= 100 ? true : undefined,
    );
    await first.close();

    const committedByFirst = await db.prisma.modelUsageDetail.count();
    expect(committedByFirst).toBeLessThan(total);
    const queue = openBatchQueue(r.redis, r.prefix);
    const [released] = await queue.getJobs(['delayed', 'waiting']);
    await queue.close();
    expect(released?.id).toBe(`p0-w${windowStart}`);
    expect(released?.attemptsMade).toBe(0);
    expect(await streamLength(r.redis, r.prefix, 2)).toBe(total - committedByFirst);

    const second = await startTestWorker(db.prisma, r.prefix, {
      flushIntervalMs: windowMs,
      pageSize: 500,
    });
    workers.push(second);
    const done = await waitFor('the released batch to complete', async () => {
      const [job] = await second.batches.getJobs(['completed']);
      return job;
    });
    expect(done.returnvalue.committed).toBe(total - committedByFirst);
    expect(done.returnvalue.duplicates).toBe(0);
    expect(await db.prisma.modelUsageDetail.count()).toBe(total);
    expect(await streamLength(r.redis, r.prefix, 2)).toBe(0);
  });
});
