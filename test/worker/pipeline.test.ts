// The worker end to end on real Redis, PostgreSQL and BullMQ: sealed windows become audit
// rows and rollups, exactly once, with every seed semantic of GPUStack.
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { openSealerQueue } from '../../src/worker/queues.js';
import { enqueue, rid, xaddRaw } from '../support/fixtures.js';
import {
  startIngest,
  streamLength,
  waitForOutcome,
  useWorkerTestEnv,
} from '../support/pipeline.js';
import { REDIS_URL, waitFor } from '../support/services.js';
import { INGEST_PATH } from '../../src/producer/server.js';

const env = useWorkerTestEnv();

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
    const ids = await enqueue(env.r.redis, env.r.prefix, [
      { ...base, input_token: 10, output_token: 5, input_cached_token: 2 },
      { ...base, input_token: 20, output_token: 7, input_cached_token: 3 },
      { ...base, user_id: 2, input_token: 1, output_token: 1 },
    ]);
    await env.startWorker();
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 3, rejected: 0 });
    const rollups = await env.db.prisma.modelUsage.findMany({ orderBy: { userId: 'asc' } });
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
    await waitFor('stream drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(0);
  });

  it("keeps a report with an empty model, posted the way GPUStack's gateway posts it, as rejected empty_model", async () => {
    const base = await startIngest(env, 'gw');
    // One object per POST, no report_id, model "" (a speech-to-text request without one).
    const answer = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': 'gw' },
      body: JSON.stringify({
        model: '',
        input_token: 0,
        output_token: 0,
        request_count: 1,
        completed: true,
        started_at: Date.now() - 1000,
        completed_at: Date.now(),
        user_id: 1,
        organization_id: '1',
      }),
    });
    expect(answer.status).toBe(200);
    const { report_ids: ids } = (await answer.json()) as { report_ids: string[] };
    await env.startWorker();
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 0, rejected: 1 });
    const [row] = await env.db.prisma.rejectedUsageReport.findMany();
    expect(row).toMatchObject({ reportId: ids[0], reason: 'empty_model' });
  });

  it('seals again when no sealer tick is pending (a Redis failover can drop one)', async () => {
    await env.startWorker();
    const bull = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const sealer = openSealerQueue(bull, env.r.prefix);
    env.defer(async () => {
      await sealer.close();
      bull.disconnect();
    });
    // The schedule goes, and its pending tick with it: nothing would seal a window again.
    await sealer.removeJobScheduler('seal');
    await waitFor('no sealer tick pending', async () => {
      const counts = await sealer.getJobCounts('delayed', 'waiting', 'active', 'prioritized');
      return Object.values(counts).every((n) => n === 0) ? true : undefined;
    });
    const ids = await enqueue(env.r.redis, env.r.prefix, [
      { model: 'qwen3-8b', model_id: 1, user_id: 1, input_token: 3, completed: true },
    ]);
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 1, rejected: 0 });
    expect(await sealer.getJobScheduler('seal')).toBeDefined();
  });

  it('rejects poison entries with a reason and commits the rest of the window', async () => {
    const good = await enqueue(env.r.redis, env.r.prefix, [{ model: 'qwen3-8b', model_id: 1 }]);
    const [notJson] = await xaddRaw(env.r.redis, env.r.prefix, 0, ['{not json']);
    const bad = rid('bad');
    await xaddRaw(env.r.redis, env.r.prefix, 0, [JSON.stringify({ report_id: bad, model: 42 })]);
    await env.startWorker();
    const ids = [...good, `stream:0:${notJson}`, bad];
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 1, rejected: 2 });
    const rejected = await env.db.prisma.rejectedUsageReport.findMany({
      orderBy: { reportId: 'asc' },
    });
    expect(rejected.map((x) => x.reason)).toEqual(['invalid_report', 'invalid_report']);
  });
});
