// Scale and memory: two worker processes share one Redis and one database, and a window
// larger than a page is processed page by page.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { REPORT_FIELD, streamKey } from '../../src/contract/keys.js';
import { fillWindow, rid } from '../support/fixtures.js';
import { streamLength, useWorkerTestEnv } from '../support/pipeline.js';
import { REDIS_URL, waitFor } from '../support/services.js';

const env = useWorkerTestEnv();

async function committedCount(): Promise<number> {
  return env.db.prisma.modelUsageDetail.count();
}

function spawnWorker(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.setEncoding('utf8');
  return child;
}

describe('scale', () => {
  it('two worker processes commit 20,000 reports over 8 partitions exactly once', async () => {
    const partitions = 8;
    const total = 20_000;
    const processEnv = {
      DATABASE_URL: env.db.url,
      REDIS_URL,
      TALLY_KEY_PREFIX: env.r.prefix,
      TALLY_PARTITIONS: String(partitions),
      TALLY_FLUSH_INTERVAL_MS: '500',
      TALLY_SEAL_GRACE_MS: '50',
      LOG_LEVEL: 'warn',
    };
    const workers = [spawnWorker(processEnv), spawnWorker(processEnv)];
    env.defer(() => {
      for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    });

    let tokens = 0;
    for (let start = 0; start < total; start += 2_000) {
      const pipeline = env.r.redis.pipeline();
      for (let i = start; i < start + 2_000; i += 1) {
        const report = {
          report_id: rid('s'),
          model: 'qwen3-8b',
          model_id: 1,
          user_id: 1 + (i % 3),
          input_token: i % 97,
          output_token: 3,
          completed: true,
        };
        tokens += report.input_token;
        pipeline.xadd(
          streamKey(env.r.prefix, i % partitions),
          '*',
          REPORT_FIELD,
          JSON.stringify(report),
        );
      }
      await pipeline.exec();
    }

    await waitFor(
      '20,000 audit rows',
      async () => ((await committedCount()) === total ? true : undefined),
      120_000,
      250,
    );
    await waitFor('streams drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, partitions)) === 0 ? true : undefined,
    );
    const sums = await env.db.prisma.modelUsage.aggregate({
      _sum: { promptTokenCount: true, requestCount: true },
    });
    expect(sums._sum).toEqual({ promptTokenCount: BigInt(tokens), requestCount: BigInt(total) });

    // Both processes shut down cleanly on SIGTERM.
    for (const w of workers) w.kill('SIGTERM');
    const codes = await Promise.all(
      workers.map(async (w) => (w.exitCode ?? (await once(w, 'exit'))[0]) as number),
    );
    expect(codes).toEqual([0, 0]);
  });

  it('processes a window larger than a page in several pages', async () => {
    const windowMs = 1_000;
    // Explicit ids in one past window: 1,050 reports, pages of 100.
    const windowStart = Math.floor((Date.now() - 60_000) / windowMs) * windowMs;
    await fillWindow(env.r.redis, env.r.prefix, windowStart, 1_050, () => ({
      model: 'qwen3-8b',
      model_id: 1,
      input_token: 1,
      completed: true,
    }));
    const worker = await env.startWorker({
      flushIntervalMs: windowMs,
      pageSize: 100,
    });
    const [job] = await waitFor('the batch to complete', async () => {
      const done = await worker.batches.getJobs(['completed']);
      return done.length > 0 ? done : undefined;
    });
    expect(job?.data).toEqual({
      partition: 0,
      windowStart,
      windowEnd: windowStart + windowMs,
      windowStartAt: new Date(windowStart).toISOString(),
      windowEndAt: new Date(windowStart + windowMs).toISOString(),
    });
    expect(job?.returnvalue).toEqual({ committed: 1_050, duplicates: 0, rejected: {}, pages: 11 });
    expect(job?.progress).toEqual({
      pages: 11,
      read: 1_050,
      committed: 1_050,
      duplicates: 0,
      rejected: 0,
    });
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(0);
  });
});
