// Hostile counts in the pipeline, through a real worker (BullMQ sealer and batch processor)
// on real Redis and PostgreSQL: a report the database can never store is rejected with its
// reason, the rest of its window commits and the batch completes; it never holds the
// window hostage. Also: which database errors count as permanent, from real errors.
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createPrisma } from '../../src/db/client.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import type { AuditRow } from '../../src/worker/core/resolve.js';
import { commitIsolating, permanentReason } from '../../src/worker/isolation.js';
import { pageRows } from '../../src/worker/writer.js';
import { rid, xaddRaw } from '../support/fixtures.js';
import {
  cuttableDatabase,
  processBatchesOn,
  useWorkerTestEnv,
  waitForOutcome,
} from '../support/pipeline.js';
import { REDIS_URL, waitFor } from '../support/services.js';

const env = useWorkerTestEnv();

const COMPLETED_AT = Date.UTC(2026, 10, 20, 12, 0, 0);
const DAY = new Date('2026-11-20T00:00:00Z');
/** One rollup key: qwen3-8b (model 1) for alice (user 1), chat, no provider, no API key. */
const KEY = {
  model: 'qwen3-8b',
  model_id: 1,
  user_id: 1,
  operation: 'chat_completion',
  completed: true,
  completed_at: COMPLETED_AT,
};
const BIGINT_MAX = 2n ** 63n - 1n;

/** Waits until the worker has completed at least one batch and failed none. */
async function batchesCompleted(worker: RunningWorker): Promise<void> {
  await waitFor('a completed batch', async () => {
    const failed = await worker.batches.getJobs(['failed']);
    if (failed.length > 0) throw new Error(`batch failed: ${failed[0]?.failedReason}`);
    const done = await worker.batches.getJobs(['completed']);
    return done.length > 0 ? true : undefined;
  });
  // A failure that is only being retried shows up as attempts made, not in the failed set.
  for (const job of await worker.batches.getJobs(['completed'])) {
    expect(job.attemptsMade, `job ${job.id} needed a retry`).toBeLessThanOrEqual(1);
  }
}

async function reasons(reportIds: string[]): Promise<Map<string, string>> {
  const rows = await env.db.prisma.rejectedUsageReport.findMany({
    where: { reportId: { in: reportIds } },
  });
  return new Map(rows.map((r) => [r.reportId, r.reason]));
}

async function rollupPromptTokens(userId: number): Promise<bigint | undefined> {
  const row = await env.db.prisma.modelUsage.findFirst({ where: { userId, date: DAY } });
  return row?.promptTokenCount;
}

/** History that leaves alice's rollup key `room` tokens: one audit row and its rollup. */
async function leaveRollupRoom(room: bigint): Promise<bigint> {
  const prior = BIGINT_MAX - room;
  const stamp = new Date(COMPLETED_AT);
  const key = {
    date: DAY,
    modelId: 1,
    modelName: 'qwen3-8b',
    userId: 1,
    userName: 'alice',
    // The worker's key for alice without a key: GPUStack's consumer is the USER caller.
    consumerPrincipalId: 1,
    operation: 'CHAT_COMPLETION' as const,
    clusterName: 'gpu-east',
  };
  await env.db.prisma.modelUsageDetail.create({
    data: {
      ...key,
      reportId: rid('history'),
      promptTokenCount: prior,
      completionTokenCount: 0n,
      requestCount: 1n,
      createdAt: stamp,
      updatedAt: stamp,
    },
  });
  await env.db.prisma.modelUsage.create({
    data: { ...key, promptTokenCount: prior, completionTokenCount: 0n, requestCount: 1n },
  });
  return prior;
}

describe('a report the database can never store', () => {
  it('rejects 1,030 reports of 2^53 − 1 tokens written straight into the stream; the legitimate one in the window commits', async () => {
    const hostile = Array.from({ length: 1_030 }, () => ({
      ...KEY,
      report_id: rid('huge'),
      input_token: 2 ** 53 - 1,
    }));
    const legit = { ...KEY, report_id: rid('legit'), input_token: 120, output_token: 48 };
    // As a non-SDK writer would: raw JSON, one partition, one window, one rollup key.
    await xaddRaw(env.r.redis, env.r.prefix, 0, [
      ...hostile.slice(0, 500).map((r) => JSON.stringify(r)),
      JSON.stringify(legit),
      ...hostile.slice(500).map((r) => JSON.stringify(r)),
    ]);
    const worker = await env.startWorker();

    const ids = [legit.report_id, ...hostile.map((r) => r.report_id)];
    expect(await waitForOutcome(env.db.prisma, ids, 20_000)).toEqual({
      committed: 1,
      rejected: 1_030,
    });
    await batchesCompleted(worker);
    const byReason = await reasons(hostile.map((r) => r.report_id));
    expect(new Set(byReason.values())).toEqual(new Set(['invalid_report']));
    expect(await rollupPromptTokens(1)).toBe(120n);
  });

  it('rejects reports that would push a rollup past bigint as rollup_overflow; the rest of the window commits', async () => {
    const prior = await leaveRollupRoom(10n);

    const overflowing = Array.from({ length: 3 }, () => ({
      ...KEY,
      report_id: rid('over'),
      input_token: 100,
    }));
    const fits = { ...KEY, report_id: rid('fits'), input_token: 4 };
    const others = Array.from({ length: 5 }, () => ({
      ...KEY,
      user_id: 2,
      report_id: rid('bob'),
      input_token: 7,
    }));
    await xaddRaw(
      env.r.redis,
      env.r.prefix,
      0,
      [
        ...others.slice(0, 2),
        overflowing[0],
        fits,
        ...overflowing.slice(1),
        ...others.slice(2),
      ].map((r) => JSON.stringify(r)),
    );
    const worker = await env.startWorker();

    const overIds = overflowing.map((r) => r.report_id);
    const okIds = [fits.report_id, ...others.map((r) => r.report_id)];
    expect(await waitForOutcome(env.db.prisma, [...overIds, ...okIds], 20_000)).toEqual({
      committed: okIds.length,
      rejected: overIds.length,
    });
    await batchesCompleted(worker);
    const byReason = await reasons(overIds);
    expect([...byReason.values()]).toEqual([
      'rollup_overflow',
      'rollup_overflow',
      'rollup_overflow',
    ]);
    // Each rejection keeps the entry's text as it was in the stream (read again for it).
    const raws = await env.db.prisma.rejectedUsageReport.findMany({
      where: { reportId: { in: overIds } },
      select: { reportId: true, rawReport: true },
    });
    expect(new Map(raws.map((r) => [r.reportId, r.rawReport]))).toEqual(
      new Map(overflowing.map((r) => [r.report_id, JSON.stringify(r)])),
    );
    // A rejected report has no audit row; the committed ones all do.
    const audited = await env.db.prisma.modelUsageDetail.findMany({
      where: { reportId: { in: [...overIds, ...okIds] } },
      select: { reportId: true },
    });
    expect(audited.map((a) => a.reportId).sort()).toEqual([...okIds].sort());
    expect(await rollupPromptTokens(1)).toBe(prior + 4n);
    expect(await rollupPromptTokens(2)).toBe(35n);
  });
  it('retries the batch, recording nothing, when a refused report left the stream meanwhile', async () => {
    await leaveRollupRoom(10n);
    const over = { ...KEY, report_id: rid('over'), input_token: 100 };
    await xaddRaw(env.r.redis, env.r.prefix, 0, [JSON.stringify(over)]);
    // The worker reads the page, then again for the refused report's raw text. Before that
    // second read, another delivery of the window takes the page (and records its outcome).
    const streams = new Redis(REDIS_URL);
    const realRead = streams.xrangeBuffer.bind(streams);
    let reads = 0;
    streams.xrangeBuffer = (async (...args: Parameters<typeof realRead>) => {
      reads += 1;
      if (reads === 2) await env.r.redis.del(String(args[0]));
      return realRead(...args);
    }) as typeof streams.xrangeBuffer;
    const sealer = await processBatchesOn(env, streams);

    const job = await waitFor('the batch to complete on its retry', async () => {
      const [done] = await sealer.batches.getJobs(['completed']);
      return done;
    });
    expect(job.attemptsMade).toBe(2);
    expect((job.stacktrace ?? []).join('\n')).toContain(
      `the stream entry of report ${over.report_id} is gone`,
    );
    // No rejection with an empty raw text: the delivery that took the page records it.
    expect(await env.db.prisma.rejectedUsageReport.count()).toBe(0);
  });
});

describe('permanent or transient', () => {
  /** The error PostgreSQL raises with this SQLSTATE, through Prisma and its pg adapter. */
  async function raised(state: string): Promise<unknown> {
    try {
      await env.db.prisma.$executeRawUnsafe(
        `DO $$ BEGIN RAISE EXCEPTION 'raised for a test' USING ERRCODE = '${state}'; END $$`,
      );
    } catch (error) {
      return error;
    }
    throw new Error(`SQLSTATE ${state} was not raised`);
  }

  it('calls data exceptions permanent, each with its reason', async () => {
    await expect(env.db.prisma.$queryRaw`SELECT ${BIGINT_MAX}::bigint + 1`).rejects.toSatisfy(
      (e) => permanentReason(e) === 'rollup_overflow',
    );
    for (const state of ['22P02', '22001', '22021', '23502', '23514']) {
      expect(permanentReason(await raised(state)), state).toBe('unstorable_report');
    }
  });

  it('calls conflicts, shutdowns, resource limits and unreachable databases transient', async () => {
    for (const state of ['40001', '40P01', '57P01', '53300', '53200', '08006', '55P03', '23505']) {
      expect(permanentReason(await raised(state)), state).toBeUndefined();
    }
    const unreachable = createPrisma('postgresql://postgres@127.0.0.1:1/none', { max: 1 });
    env.defer(() => unreachable.$disconnect());
    await expect(unreachable.$queryRaw`SELECT 1`).rejects.toSatisfy(
      (e) => permanentReason(e) === undefined,
    );
    expect(permanentReason(new TypeError('not a database error'))).toBeUndefined();
  });
});

describe('commitIsolating', () => {
  /** An audit row for alice's qwen3-8b chat rollup on DAY. */
  function row(reportId: string, promptTokens: number): AuditRow {
    return {
      reportId,
      date: '2026-11-20',
      modelId: 1,
      modelName: 'qwen3-8b',
      modelRouteId: null,
      modelRouteName: null,
      providerId: null,
      providerName: null,
      providerType: null,
      clusterId: 1,
      clusterName: 'gpu-east',
      userId: 1,
      userName: 'alice',
      ownerPrincipalId: null,
      consumerPrincipalId: 1,
      consumerName: 'alice',
      consumerPrincipalKind: 'user',
      apiKeyId: null,
      apiKeyName: null,
      accessKey: null,
      apiKeyIsCustom: null,
      operation: 'CHAT_COMPLETION',
      completed: true,
      promptTokens,
      completionTokens: 0,
      cachedTokens: 0,
      requestCount: 1,
      startedAt: null,
      completedAt: COMPLETED_AT,
      instant: COMPLETED_AT,
    };
  }
  const rawOf = (id: string) => Promise.resolve(`{"report_id":"${id}"}`);

  it('throws a transient error (database unreachable) and records nothing', async () => {
    const { prisma, proxy } = await cuttableDatabase(env);
    proxy.cut();
    const ids = [rid('t'), rid('t')];
    await expect(
      commitIsolating(
        { prisma, partition: 0, rawOf },
        pageRows([row(ids[0] ?? '', 5), row(ids[1] ?? '', 7)]),
        [],
      ),
    ).rejects.toSatisfy((e) => permanentReason(e) === undefined);
    expect(await env.db.prisma.rejectedUsageReport.count()).toBe(0);
    expect(await env.db.prisma.modelUsageDetail.count()).toBe(0);
  });

  it('never rejects a report whose report_id already has an audit row', async () => {
    const ctx = { prisma: env.db.prisma, partition: 0, rawOf };
    const id = rid('dup');
    expect(await commitIsolating(ctx, pageRows([row(id, 10)]), [])).toMatchObject({ committed: 1 });
    // The same id again with a count no bigint holds: the data error is about a report
    // that is already committed, so it counts as a duplicate, not a rejection.
    const other = rid('ok');
    const again = await commitIsolating(ctx, pageRows([row(id, 1e20), row(other, 3)]), []);
    expect(again).toMatchObject({ committed: 1, duplicates: 1, isolated: [] });
    expect(again.commits).toBeGreaterThan(1);
    expect(await env.db.prisma.rejectedUsageReport.count()).toBe(0);
    expect(await rollupPromptTokens(1)).toBe(13n);
  });
});
