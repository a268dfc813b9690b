// The worker end to end on real Redis, PostgreSQL and BullMQ: sealed windows become audit
// rows and rollups, exactly once, with every seed semantic of GPUStack.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningWorker } from '../../src/worker/worker.js';
import { enqueue, rid, seedWorld, xaddRaw } from '../support/fixtures.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { startTestWorker, streamLength, waitForOutcome } from '../support/pipeline.js';
import {
  createTestDatabase,
  createTestRedis,
  waitFor,
  type TestDatabase,
  type TestRedis,
} from '../support/services.js';

let db: TestDatabase;
let r: TestRedis;
let worker: RunningWorker | undefined;

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
  await worker?.close();
  worker = undefined;
  await assertRollupsMatchAudit(db.prisma);
  await r.cleanup();
});

describe('worker pipeline', () => {
  it('sums two reports of one rollup key into one row and splits a different user', async () => {
    const base = {
      model: 'qwen3-8b',
      model_id: 1,
      user_id: 1,
      access_key: 'ak_alice',
      operation: 'chat_completion' as const,
      completed: true,
      completed_at: Date.UTC(2026, 10, 20, 12),
    };
    const ids = await enqueue(r.redis, r.prefix, [
      { ...base, input_token: 10, output_token: 5, input_cached_token: 2 },
      { ...base, input_token: 20, output_token: 7, input_cached_token: 3 },
      { ...base, user_id: 2, input_token: 1, output_token: 1 },
    ]);
    worker = await startTestWorker(db.prisma, r.prefix);
    expect(await waitForOutcome(db.prisma, ids)).toEqual({ committed: 3, rejected: 0 });
    const rollups = await db.prisma.modelUsage.findMany({ orderBy: { userId: 'asc' } });
    expect(rollups).toHaveLength(2);
    expect(rollups[0]).toMatchObject({
      userId: 1,
      userName: 'alice',
      modelName: 'qwen3-8b',
      clusterName: 'gpu-east',
      apiKeyName: 'alice-laptop',
      promptTokenCount: 30n,
      completionTokenCount: 12n,
      promptCachedTokenCount: 5n,
      requestCount: 2n,
    });
    expect(rollups[1]).toMatchObject({ userId: 2, promptTokenCount: 1n, requestCount: 1n });
    expect(
      await waitFor('stream drained', async () =>
        (await streamLength(r.redis, r.prefix, 2)) === 0 ? true : undefined,
      ),
    ).toBe(true);
  });

  it('rejects poison entries with a reason and commits the rest of the window', async () => {
    const good = await enqueue(r.redis, r.prefix, [{ model: 'qwen3-8b', model_id: 1 }]);
    const [notJson] = await xaddRaw(r.redis, r.prefix, 0, ['{not json']);
    const bad = rid('bad');
    await xaddRaw(r.redis, r.prefix, 0, [JSON.stringify({ report_id: bad, model: '' })]);
    worker = await startTestWorker(db.prisma, r.prefix);
    const ids = [...good, `stream:0:${notJson}`, bad];
    expect(await waitForOutcome(db.prisma, ids)).toEqual({ committed: 1, rejected: 2 });
    const rejected = await db.prisma.rejectedUsageReport.findMany({ orderBy: { reportId: 'asc' } });
    expect(rejected.map((x) => x.reason)).toEqual(['invalid_report', 'invalid_report']);
  });
});
