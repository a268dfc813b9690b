// Graceful shutdown: a worker closing mid-batch releases the rest of the window between
// pages (without spending an attempt); another worker finishes it, counting each report once.
import { describe, expect, it } from 'vitest';
import { openBatchQueue } from '../../src/worker/queues.js';
import { fillWindow } from '../support/fixtures.js';
import { streamLength, useWorkerTestEnv } from '../support/pipeline.js';
import { waitFor } from '../support/services.js';

const env = useWorkerTestEnv();

describe('graceful shutdown', () => {
  it('releases a batch between pages and another worker finishes it exactly once', async () => {
    const total = 6_000;
    const windowMs = 1_000;
    const windowStart = Math.floor((Date.now() - 60_000) / windowMs) * windowMs;
    await fillWindow(env.r.redis, env.r.prefix, windowStart, total, () => ({
      model: 'qwen3-8b',
      model_id: 1,
      input_token: 2,
      completed: true,
    }));

    const first = await env.startWorker({
      flushIntervalMs: windowMs,
      pageSize: 50,
    });
    await waitFor('the first pages committed', async () =>
      (await env.db.prisma.modelUsageDetail.count()) >= 100 ? true : undefined,
    );
    await first.close();

    const committedByFirst = await env.db.prisma.modelUsageDetail.count();
    expect(committedByFirst).toBeLessThan(total);
    const queue = openBatchQueue(env.r.redis, env.r.prefix);
    const [released] = await queue.getJobs(['delayed', 'waiting']);
    await queue.close();
    expect(released?.id).toBe(`p0-w${windowStart}`);
    expect(released?.attemptsMade).toBe(0);
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(total - committedByFirst);

    const second = await env.startWorker({
      flushIntervalMs: windowMs,
      pageSize: 500,
    });
    const done = await waitFor('the released batch to complete', async () => {
      const [job] = await second.batches.getJobs(['completed']);
      return job;
    });
    expect(done.returnvalue.committed).toBe(total - committedByFirst);
    expect(done.returnvalue.duplicates).toBe(0);
    expect(await env.db.prisma.modelUsageDetail.count()).toBe(total);
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(0);
  });
});
