// Every seed semantic kept from GPUStack, end to end through a real worker (BullMQ sealer
// and batch processor) on real Redis and PostgreSQL: rollup key, estimation, token
// resolution, dates, validation, snapshots, hostile strings and exactly-once counting.
import { describe, expect, it } from 'vitest';
import { batchJobId } from '../../src/contract/keys.js';
import type { UsageReportInput } from '../../src/contract/report.js';
import type { BatchResult } from '../../src/worker/queues.js';
import type { RunningWorker, WorkerConfig } from '../../src/worker/worker.js';
import { WORLD, enqueue, rid, xaddAt, xaddRaw } from '../support/fixtures.js';
import {
  streamLength,
  testWorkerConfig,
  waitForOutcome,
  useWorkerTestEnv,
} from '../support/pipeline.js';
import { waitFor } from '../support/services.js';

const { partitions: PARTITIONS, flushIntervalMs: WINDOW_MS } = testWorkerConfig('unused');

const env = useWorkerTestEnv();

async function start(overrides: Partial<WorkerConfig> = {}): Promise<RunningWorker> {
  return env.startWorker(overrides);
}

/** Enqueues, starts a worker and waits until every report is committed or rejected. */
async function run(
  reports: UsageReportInput[],
  overrides: Partial<WorkerConfig> = {},
): Promise<string[]> {
  const ids = await enqueue(env.r.redis, env.r.prefix, reports);
  await start(overrides);
  expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: ids.length, rejected: 0 });
  return ids;
}

async function audit(reportId: string | undefined) {
  if (reportId === undefined) throw new Error('no such report id');
  return env.db.prisma.modelUsageDetail.findUniqueOrThrow({ where: { reportId } });
}

async function drained(): Promise<void> {
  await waitFor('streams drained', async () =>
    (await streamLength(env.r.redis, env.r.prefix, PARTITIONS)) === 0 ? true : undefined,
  );
}

/** Waits for `count` completed batch jobs and returns their results by job id. */
async function completedBatches(
  running: RunningWorker,
  count: number,
): Promise<Map<string, BatchResult>> {
  const jobs = await waitFor(`${count} completed batches`, async () => {
    const done = await running.batches.getJobs(['completed']);
    return done.length >= count ? done : undefined;
  });
  expect(jobs).toHaveLength(count);
  return new Map(jobs.map((j) => [String(j.id), j.returnvalue]));
}

/** The UTC day (YYYY-MM-DD) of a Date; DATE columns come back as UTC midnight. */
const day = (d: Date) => d.toISOString().slice(0, 10);

/** A closed window well in the past, on the test worker's window grid. */
function pastWindow(): number {
  return Math.floor((Date.now() - 60_000) / WINDOW_MS) * WINDOW_MS;
}

const COMPLETED_AT = Date.UTC(2026, 10, 20, 12, 0, 0);

describe('rollup key', () => {
  it('splits rows by operation, access_key and provider, and treats NULL parts as equal', async () => {
    await env.db.prisma.modelProvider.create({
      data: { id: 2, name: 'azure-proxy', models: [{ name: 'gpt-4o' }], config: { type: 'azure' } },
    });
    const model = { model: 'qwen3-8b', model_id: 1, user_id: 1 };
    const provider = { model: 'gpt-4o', provider_id: 1, user_id: 1 };
    const at = { completed: true, completed_at: COMPLETED_AT };
    await run([
      { ...model, ...at, access_key: 'ak_alice', operation: 'chat_completion', input_token: 1 },
      { ...model, ...at, access_key: 'ak_alice', operation: 'chat_completion', input_token: 2 },
      { ...model, ...at, access_key: 'ak_alice', operation: 'completion', input_token: 4 },
      { ...model, ...at, access_key: 'ak_bob', operation: 'chat_completion', input_token: 8 },
      { ...model, ...at, access_key: null, operation: null, input_token: 16 },
      { ...model, ...at, input_token: 32 },
      // Both spellings of transcription land in one row under GPUStack's.
      {
        ...model,
        ...at,
        access_key: 'ak_alice',
        operation: 'audio_transcription',
        input_token: 64,
      },
      {
        ...model,
        ...at,
        access_key: 'ak_alice',
        operation: 'audit_transcription',
        input_token: 128,
      },
      {
        ...provider,
        ...at,
        access_key: 'ak_alice',
        operation: 'chat_completion',
        input_token: 256,
      },
      {
        ...provider,
        ...at,
        access_key: 'ak_alice',
        operation: 'chat_completion',
        input_token: 512,
      },
      {
        ...provider,
        ...at,
        provider_id: 2,
        access_key: 'ak_alice',
        operation: 'chat_completion',
        input_token: 1024,
      },
    ]);
    const rows = await env.db.prisma.modelUsage.findMany({ orderBy: { promptTokenCount: 'asc' } });
    expect(
      rows.map((u) => [
        u.modelName,
        u.providerName,
        u.accessKey,
        u.operation,
        Number(u.promptTokenCount),
        Number(u.requestCount),
      ]),
    ).toEqual([
      // GPUStack stores OperationEnum member names (notes §1), not the wire values.
      ['qwen3-8b', null, 'ak_alice', 'CHAT_COMPLETION', 3, 2],
      ['qwen3-8b', null, 'ak_alice', 'COMPLETION', 4, 1],
      ['qwen3-8b', null, 'ak_bob', 'CHAT_COMPLETION', 8, 1],
      ['qwen3-8b', null, null, null, 48, 2],
      ['qwen3-8b', null, 'ak_alice', 'AUDIT_TRANSCRIPTION', 192, 2],
      ['gpt-4o', 'openai-proxy', 'ak_alice', 'CHAT_COMPLETION', 768, 2],
      ['gpt-4o', 'azure-proxy', 'ak_alice', 'CHAT_COMPLETION', 1024, 1],
    ]);
    expect(rows.every((u) => day(u.date) === '2026-11-20')).toBe(true);
  });
});

// GPUStack v2.2.0's DB lookup key adds model_route_id (aff1b0d1) and consumer_principal_id
// (a7899be1); the seed's key had neither, and these reports became one row each time.
describe('rollup key with route and consumer', () => {
  const at = { completed: true, completed_at: COMPLETED_AT };
  const chat = { model: 'qwen3-8b', model_id: 1, user_id: 1, ...at };

  it('keeps a row per route: four reports on routes 1, 2 and none become three rows', async () => {
    await run([
      { ...chat, model_route_id: 1, input_token: 1 },
      { ...chat, model_route_id: 1, input_token: 2 },
      { ...chat, model_route_id: 2, input_token: 4 },
      { ...chat, input_token: 8 },
    ]);
    const rows = await env.db.prisma.modelUsage.findMany({ orderBy: { promptTokenCount: 'asc' } });
    expect(rows.map((u) => [u.modelRouteId, u.modelRouteName, Number(u.promptTokenCount)])).toEqual(
      [
        [1, 'chat-default', 3],
        [2, 'embeddings', 4],
        [null, null, 8],
      ],
    );
  });

  it('keeps a row per consuming organization, named on the rollup', async () => {
    await run([
      { ...chat, organization_id: '11', input_token: 1 },
      { ...chat, organization_id: '11', input_token: 2 },
      { ...chat, organization_id: '12', input_token: 4 },
    ]);
    const rows = await env.db.prisma.modelUsage.findMany({ orderBy: { promptTokenCount: 'asc' } });
    expect(
      rows.map((u) => [
        u.consumerPrincipalId,
        u.consumerName,
        u.consumerPrincipalKind,
        Number(u.promptTokenCount),
      ]),
    ).toEqual([
      [11, 'acme', 'org', 3],
      [12, 'globex', 'org', 4],
    ]);
    const audit = await env.db.prisma.modelUsageDetail.findMany({
      select: { consumerPrincipalId: true },
    });
    expect(audit.map((a) => a.consumerPrincipalId).sort()).toEqual([11, 11, 12]);
  });

  it('books a LoRA report under its base model with the LoRA route (GPUStack f6996fe8)', async () => {
    await run([
      { ...chat, model: 'qwen3-8b:sql-lora', model_route_id: 3, input_token: 5 },
      { ...chat, model_route_id: 1, input_token: 7 },
    ]);
    const rows = await env.db.prisma.modelUsage.findMany({ orderBy: { promptTokenCount: 'asc' } });
    expect(rows.map((u) => [u.modelName, u.modelRouteName, Number(u.promptTokenCount)])).toEqual([
      ['qwen3-8b', 'qwen3-8b:sql-lora', 5],
      ['qwen3-8b', 'chat-default', 7],
    ]);
  });

  it('refreshes model_route_name on update and keeps the other snapshot columns (as GPUStack)', async () => {
    // No entity cache: the second report sees the renamed entities.
    const noCache = { entityCacheMs: 0 };
    await run([{ ...chat, model_route_id: 1, access_key: 'ak_alice', input_token: 1 }], noCache);
    await env.db.prisma.modelRoute.update({ where: { id: 1 }, data: { name: 'chat-renamed' } });
    await env.db.prisma.principal.update({ where: { id: 1 }, data: { name: 'alice-renamed' } });
    await env.db.prisma.apiKey.update({ where: { id: 1 }, data: { name: 'laptop-renamed' } });
    const [second] = await enqueue(env.r.redis, env.r.prefix, [
      { ...chat, model_route_id: 1, access_key: 'ak_alice', input_token: 2 },
    ]);
    expect(await waitForOutcome(env.db.prisma, [second ?? ''])).toEqual({
      committed: 1,
      rejected: 0,
    });
    expect((await audit(second)).userName).toBe('alice-renamed');
    const rows = await env.db.prisma.modelUsage.findMany();
    expect(
      rows.map((u) => [u.modelRouteName, u.userName, u.apiKeyName, Number(u.promptTokenCount)]),
    ).toEqual([['chat-renamed', 'alice', 'alice-laptop', 3]]);
  });
});

describe('estimation', () => {
  it('fills empty slots of interrupted streams and never touches completed reports', async () => {
    const base = { model: 'qwen3-8b', model_id: 1, completed_at: COMPLETED_AT };
    const [estimated, partial, completed, completedCounts] = await run(
      [
        { ...base, request_content_bytes: 400, output_chunk_count: 10 },
        { ...base, input_token: 999, request_content_bytes: 400, output_chunk_count: 10 },
        { ...base, completed: true, request_content_bytes: 400, output_chunk_count: 10 },
        { ...base, completed: true, input_token: 7, output_token: 3, output_chunk_count: 10 },
      ],
      { tokensPerOutputChunk: 2 },
    );
    const tokens = async (id: string | undefined) => {
      const row = await audit(id);
      return [Number(row.promptTokenCount), Number(row.completionTokenCount)];
    };
    expect(await tokens(estimated)).toEqual([100, 20]);
    expect(await tokens(partial)).toEqual([999, 20]);
    expect(await tokens(completed)).toEqual([0, 0]);
    expect(await tokens(completedCounts)).toEqual([7, 3]);
    const [rollup] = await env.db.prisma.modelUsage.findMany();
    expect([rollup?.promptTokenCount, rollup?.completionTokenCount]).toEqual([1106n, 43n]);
  });

  it('estimates at least one input token with a configured bytes-per-token rate', async () => {
    const base = { model: 'qwen3-8b', model_id: 1, completed_at: COMPLETED_AT };
    const [tiny, floored] = await run(
      [
        { ...base, request_content_bytes: 10 },
        { ...base, request_content_bytes: 299 },
      ],
      { bytesPerInputToken: 100 },
    );
    expect((await audit(tiny)).promptTokenCount).toBe(1n);
    expect((await audit(floored)).promptTokenCount).toBe(2n);
  });
});

describe('token resolution', () => {
  it('counts the total as prompt for reranker and embedding models only', async () => {
    const at = { completed: true, completed_at: COMPLETED_AT };
    const [reranker, embedding, embeddingWithOutput, llm] = await run([
      { model: 'bge-reranker', model_id: 4, total_token: 77, operation: 'rerank', ...at },
      { model: 'bge-m3', model_id: 3, total_token: 77, operation: 'embedding', ...at },
      { model: 'bge-m3', model_id: 3, input_token: 30, output_token: 5, total_token: 77, ...at },
      { model: 'qwen3-8b', model_id: 1, total_token: 77, ...at },
    ]);
    const tokens = async (id: string | undefined) => {
      const row = await audit(id);
      return [Number(row.promptTokenCount), Number(row.completionTokenCount)];
    };
    expect(await tokens(reranker)).toEqual([77, 0]);
    expect(await tokens(embedding)).toEqual([77, 0]);
    expect(await tokens(embeddingWithOutput)).toEqual([72, 5]);
    expect(await tokens(llm)).toEqual([0, 0]);
    const rerankRollup = await env.db.prisma.modelUsage.findFirstOrThrow({ where: { modelId: 4 } });
    expect([rerankRollup.promptTokenCount, rerankRollup.completionTokenCount]).toEqual([77n, 0n]);
  });
});

describe('dates', () => {
  it('dates a report by completed_at, else started_at, else when Redis accepted it', async () => {
    const started = Date.UTC(2026, 10, 1, 10, 0, 0, 123);
    const completed = Date.UTC(2026, 10, 3, 10, 0, 0, 987);
    const before = Date.now();
    const both = rid('both');
    const startedOnly = rid('started');
    const neither = rid('neither');
    const [, , neitherEntry] = await xaddRaw(env.r.redis, env.r.prefix, 0, [
      JSON.stringify({
        report_id: both,
        model: 'qwen3-8b',
        model_id: 1,
        started_at: started,
        completed_at: completed,
      }),
      JSON.stringify({
        report_id: startedOnly,
        model: 'qwen3-8b',
        model_id: 1,
        started_at: started,
      }),
      JSON.stringify({ report_id: neither, model: 'qwen3-8b', model_id: 1 }),
    ]);
    await start();
    expect(await waitForOutcome(env.db.prisma, [both, startedOnly, neither])).toEqual({
      committed: 3,
      rejected: 0,
    });
    const after = Date.now();

    const b = await audit(both);
    expect([day(b.date), b.createdAt.getTime(), b.updatedAt.getTime()]).toEqual([
      '2026-11-03',
      completed,
      completed,
    ]);
    const s = await audit(startedOnly);
    expect([day(s.date), s.createdAt.getTime(), s.completedAt]).toEqual([
      '2026-11-01',
      started,
      null,
    ]);
    const n = await audit(neither);
    const accepted = Number(neitherEntry?.split('-')[0]);
    expect(n.createdAt.getTime()).toBe(accepted);
    expect(n.updatedAt.getTime()).toBe(accepted);
    expect(accepted).toBeGreaterThanOrEqual(before);
    expect(accepted).toBeLessThanOrEqual(after);
    expect(day(n.date)).toBe(new Date(accepted).toISOString().slice(0, 10));
    // Today (UTC), allowing for a run that straddles midnight.
    expect([day(new Date(before)), day(new Date(after))]).toContain(day(n.date));
    expect([n.startedAt, n.completedAt]).toEqual([null, null]);
  });

  it('puts a stream that crosses midnight on the day it ended', async () => {
    const [id] = await run([
      {
        model: 'qwen3-8b',
        model_id: 1,
        input_token: 5,
        completed: true,
        started_at: Date.UTC(2026, 10, 26, 23, 59, 50),
        completed_at: Date.UTC(2026, 10, 27, 0, 0, 10),
      },
    ]);
    expect(day((await audit(id)).date)).toBe('2026-11-27');
    const rollups = await env.db.prisma.modelUsage.findMany();
    expect(rollups.map((u) => [day(u.date), u.promptTokenCount])).toEqual([['2026-11-27', 5n]]);
  });

  it('dates rollups in the configured time zone, keeping instants as they are', async () => {
    const lateUtc = Date.UTC(2026, 10, 26, 23, 30);
    const earlyUtc = Date.UTC(2026, 10, 26, 15, 0);
    const [late, early] = await run(
      [
        { model: 'qwen3-8b', model_id: 1, input_token: 1, completed_at: lateUtc },
        { model: 'qwen3-8b', model_id: 1, input_token: 2, completed_at: earlyUtc },
      ],
      { rollupTimeZone: 'Asia/Shanghai' },
    );
    const l = await audit(late);
    expect([day(l.date), l.createdAt.getTime()]).toEqual(['2026-11-27', lateUtc]);
    const e = await audit(early);
    expect([day(e.date), e.createdAt.getTime()]).toEqual(['2026-11-26', earlyUtc]);
    const rollups = await env.db.prisma.modelUsage.findMany({ orderBy: { date: 'asc' } });
    expect(rollups.map((u) => [day(u.date), u.promptTokenCount])).toEqual([
      ['2026-11-26', 2n],
      ['2026-11-27', 1n],
    ]);
  });
});

describe('validation', () => {
  it('rejects each rule with its own reason and commits the valid reports of the window', async () => {
    const bad = [
      {
        reason: 'missing_model_and_provider',
        report: { model: 'qwen3-8b', user_id: 1 },
        message: 'report has neither model_id nor provider_id',
      },
      {
        reason: 'unknown_model',
        report: { model: 'qwen3-8b', model_id: 99 },
        message: 'model_id 99 not found',
      },
      {
        reason: 'model_name_mismatch',
        report: { model: 'llama-3-70b', model_id: 1 },
        message: 'model_id 1 is named "qwen3-8b", report says "llama-3-70b"',
      },
      {
        reason: 'unknown_provider',
        report: { model: 'gpt-4o', provider_id: 99 },
        message: 'provider_id 99 not found',
      },
      {
        reason: 'model_not_offered_by_provider',
        report: { model: 'qwen3-8b', provider_id: 1 },
        message: 'provider_id 1 does not offer model "qwen3-8b"',
      },
      {
        reason: 'unknown_user',
        report: { model: 'qwen3-8b', model_id: 1, user_id: 99 },
        message: 'user_id 99 not found',
      },
    ].map((c) => {
      const id = rid(c.reason);
      const raw = JSON.stringify({ report_id: id, ...c.report, input_token: 3 });
      return { ...c, id, raw };
    });
    const good = [rid('good'), rid('good')];
    const window = pastWindow();
    await xaddAt(env.r.redis, env.r.prefix, 1, [
      {
        id: `${window + 1}-0`,
        payload: JSON.stringify({
          report_id: good[0],
          model: 'qwen3-8b',
          model_id: 1,
          input_token: 10,
        }),
      },
      ...bad.map((b, i) => ({ id: `${window + 1}-${i + 1}`, payload: b.raw })),
      {
        id: `${window + 2}-0`,
        payload: JSON.stringify({
          report_id: good[1],
          model: 'gpt-4o',
          provider_id: 1,
          input_token: 20,
        }),
      },
    ]);
    const running = await start();
    expect(await waitForOutcome(env.db.prisma, [...good, ...bad.map((b) => b.id)])).toEqual({
      committed: 2,
      rejected: 6,
    });

    for (const b of bad) {
      const row = await env.db.prisma.rejectedUsageReport.findUniqueOrThrow({
        where: { reportId: b.id },
      });
      expect({
        reason: row.reason,
        message: row.message,
        raw: row.rawReport,
        p: row.partition,
      }).toEqual({
        reason: b.reason,
        message: b.message,
        raw: b.raw,
        p: 1,
      });
    }
    expect(await env.db.prisma.modelUsageDetail.count()).toBe(2);
    const results = await completedBatches(running, 1);
    expect(results.get(batchJobId(1, window))).toEqual({
      committed: 2,
      duplicates: 0,
      rejected: {
        missing_model_and_provider: 1,
        unknown_model: 1,
        model_name_mismatch: 1,
        unknown_provider: 1,
        model_not_offered_by_provider: 1,
        unknown_user: 1,
      },
      pages: 1,
    });
    await drained();
  });
});

describe('snapshots', () => {
  it('copies every snapshot field of a model report onto its audit and rollup rows', async () => {
    const started = Date.UTC(2026, 10, 20, 8, 0, 0, 123);
    const completed = Date.UTC(2026, 10, 20, 8, 0, 9, 987);
    const [id] = await run([
      {
        model: 'llama-3-70b',
        model_id: 2,
        user_id: 2,
        access_key: 'ak_bob',
        model_route_id: 1,
        operation: 'chat_completion',
        input_token: 11,
        output_token: 22,
        input_cached_token: 3,
        request_count: 2,
        completed: true,
        started_at: started,
        completed_at: completed,
      },
    ]);
    const snapshot = {
      modelId: 2,
      modelName: 'llama-3-70b',
      providerId: null,
      providerName: null,
      providerType: null,
      clusterName: 'gpu-west',
      userId: 2,
      userName: 'bob',
      apiKeyId: 2,
      apiKeyName: 'bob-ci',
      accessKey: 'ak_bob',
      apiKeyIsCustom: true,
      // GPUStack v2.2.x: operation as the enum member name; the owner is the model's
      // (6417ca1e); bob's key has no owner, so the consumer is bob himself (57516c72).
      operation: 'CHAT_COMPLETION',
      ownerPrincipalId: 11,
      consumerPrincipalId: 2,
      modelRouteId: 1,
      modelRouteName: 'chat-default',
      promptTokenCount: 11n,
      completionTokenCount: 22n,
      promptCachedTokenCount: 3n,
      requestCount: 2n,
    };
    const detail = await audit(id);
    expect({ ...detail, id: undefined }).toEqual({
      ...snapshot,
      id: undefined,
      reportId: id,
      date: new Date('2026-11-20T00:00:00Z'),
      clusterId: 2,
      // GPUStack ca7b768a: the report's completed flag, on audit rows only.
      completed: true,
      startedAt: new Date(started),
      completedAt: new Date(completed),
      createdAt: new Date(completed),
      updatedAt: new Date(completed),
      deletedAt: null,
    });
    const rollup = await env.db.prisma.modelUsage.findFirstOrThrow();
    expect({ ...rollup, id: undefined }).toEqual({
      ...snapshot,
      id: undefined,
      date: new Date('2026-11-20T00:00:00Z'),
      // GPUStack 41f7e4ee: the consumer's name and lowercase kind, on rollups only.
      consumerName: 'bob',
      consumerPrincipalKind: 'user',
    });
  });

  it('snapshots a provider model from the report, nulls unknown keys and routes, falls back on cluster', async () => {
    const started = Date.UTC(2026, 10, 21, 9, 30, 0, 5);
    const [providerReport, reportedCluster, modelCluster] = await run([
      {
        model: 'gpt-4o-mini',
        provider_id: 1,
        user_id: 1,
        access_key: 'ak_unknown',
        model_route_id: 99,
        cluster_id: 2,
        operation: 'completion',
        input_token: 5,
        started_at: started,
      },
      {
        model: 'qwen3-8b',
        model_id: 1,
        cluster_id: 2,
        model_route_id: 2,
        completed_at: COMPLETED_AT,
      },
      { model: 'qwen3-8b', model_id: 1, completed_at: COMPLETED_AT },
    ]);
    const p = await audit(providerReport);
    expect(p).toMatchObject({
      modelId: null,
      modelName: 'gpt-4o-mini',
      providerId: 1,
      providerName: 'openai-proxy',
      providerType: 'openai',
      clusterId: 2,
      clusterName: null,
      userId: 1,
      userName: 'alice',
      apiKeyId: null,
      apiKeyName: null,
      accessKey: 'ak_unknown',
      apiKeyIsCustom: null,
      modelRouteId: 99,
      modelRouteName: null,
      startedAt: new Date(started),
      completedAt: null,
      createdAt: new Date(started),
      updatedAt: new Date(started),
    });
    const providerRollup = await env.db.prisma.modelUsage.findFirstOrThrow({
      where: { providerId: 1 },
    });
    expect(providerRollup).toMatchObject({
      modelId: null,
      modelName: 'gpt-4o-mini',
      providerName: 'openai-proxy',
      providerType: 'openai',
      clusterName: null,
      userName: 'alice',
      apiKeyId: null,
      accessKey: 'ak_unknown',
      apiKeyIsCustom: null,
      promptTokenCount: 5n,
    });
    // The report's cluster_id wins; cluster_name is always the model's cluster.
    const rc = await audit(reportedCluster);
    expect([rc.clusterId, rc.clusterName, rc.modelRouteName]).toEqual([
      2,
      'gpu-east',
      'embeddings',
    ]);
    const mc = await audit(modelCluster);
    expect([mc.clusterId, mc.clusterName, mc.modelRouteId, mc.modelRouteName]).toEqual([
      1,
      'gpu-east',
      null,
      null,
    ]);
    expect([mc.startedAt, mc.completedAt?.getTime()]).toEqual([null, COMPLETED_AT]);
  });
});

describe('hostile strings', () => {
  const EVIL = `'); DROP TABLE model_usages; --`;
  const NAMES = {
    cluster: `clu\\ster "東京" ${EVIL}`,
    model: `q"w\\en'3 🚀 模型 $1 %s ? ${EVIL}`,
    provider: `prov'ider \\" עברית مرحبا ${EVIL}`,
    providerType: `ty'pe\\"; SELECT pg_sleep(1); --`,
    providerModel: `gpt-'4o' \\ 🤖 \u202Eevil\u202C ${EVIL}`,
    route: `route'); DELETE FROM principals; -- 🛣️`,
    user: `Robert'); DROP TABLE principals; -- 👩‍💻 مرحبا`,
    keyName: `key "name" \\\\ ${EVIL}`,
    accessKey: `ak_'"\\😀_${EVIL}`,
  };

  it('stores quotes, backslashes, unicode and SQL fragments unchanged', async () => {
    await env.db.prisma.cluster.create({ data: { id: 50, name: NAMES.cluster } });
    await env.db.prisma.model.create({
      data: { id: 50, name: NAMES.model, clusterId: 50, categories: ['llm'] },
    });
    await env.db.prisma.modelProvider.create({
      data: {
        id: 50,
        name: NAMES.provider,
        models: [{ name: NAMES.providerModel }],
        config: { type: NAMES.providerType },
      },
    });
    await env.db.prisma.principal.create({ data: { id: 50, kind: 'USER', name: NAMES.user } });
    await env.db.prisma.modelRoute.create({
      data: { id: 50, name: NAMES.route, ownerPrincipalId: 50 },
    });
    await env.db.prisma.apiKey.create({
      data: { id: 50, name: NAMES.keyName, accessKey: NAMES.accessKey, isCustom: true, userId: 50 },
    });
    const evilId = `q'"\\);DROP_TABLE_model_usages;--${Date.now()}`;
    const ids = await enqueue(env.r.redis, env.r.prefix, [
      {
        report_id: evilId,
        model: NAMES.model,
        model_id: 50,
        user_id: 50,
        access_key: NAMES.accessKey,
        model_route_id: 50,
        input_token: 3,
        completed_at: COMPLETED_AT,
      },
      {
        model: NAMES.providerModel,
        provider_id: 50,
        user_id: 50,
        access_key: NAMES.accessKey,
        input_token: 4,
        completed_at: COMPLETED_AT,
      },
    ]);
    const mismatchId = rid('evil-mismatch');
    const mismatchRaw = JSON.stringify({
      report_id: mismatchId,
      model: `${EVIL} "mismatch" 🚀`,
      model_id: 50,
    });
    await xaddRaw(env.r.redis, env.r.prefix, 0, [mismatchRaw]);
    await start();
    expect(await waitForOutcome(env.db.prisma, [...ids, mismatchId])).toEqual({
      committed: 2,
      rejected: 1,
    });

    const model = await audit(evilId);
    expect(model).toMatchObject({
      reportId: evilId,
      modelName: NAMES.model,
      clusterName: NAMES.cluster,
      modelRouteName: NAMES.route,
      userName: NAMES.user,
      apiKeyName: NAMES.keyName,
      accessKey: NAMES.accessKey,
    });
    const provider = await audit(ids[1]);
    expect(provider).toMatchObject({
      modelName: NAMES.providerModel,
      providerName: NAMES.provider,
      providerType: NAMES.providerType,
      userName: NAMES.user,
      accessKey: NAMES.accessKey,
    });
    const rollups = await env.db.prisma.modelUsage.findMany({
      orderBy: { promptTokenCount: 'asc' },
    });
    expect(
      rollups.map((u) => [
        u.modelName,
        u.providerName,
        u.providerType,
        u.clusterName,
        u.userName,
        u.apiKeyName,
        u.accessKey,
      ]),
    ).toEqual([
      [NAMES.model, null, null, NAMES.cluster, NAMES.user, NAMES.keyName, NAMES.accessKey],
      [
        NAMES.providerModel,
        NAMES.provider,
        NAMES.providerType,
        null,
        NAMES.user,
        NAMES.keyName,
        NAMES.accessKey,
      ],
    ]);
    const rejected = await env.db.prisma.rejectedUsageReport.findUniqueOrThrow({
      where: { reportId: mismatchId },
    });
    expect(rejected.rawReport).toBe(mismatchRaw);
    expect(rejected.message).toBe(
      `model_id 50 is named "${NAMES.model}", report says "${EVIL} "mismatch" 🚀"`,
    );
    // Every table is still there and holds what it should.
    const [counts] = await env.db.prisma.$queryRaw<{ usages: number; principals: number }[]>`
      SELECT (SELECT count(*) FROM model_usages)::int AS usages,
             (SELECT count(*) FROM principals)::int AS principals`;
    expect(counts).toEqual({ usages: 2, principals: WORLD.principals.length + 1 });
  });

  // Values PostgreSQL cannot store: one such report once failed its whole window on every
  // retry; now it alone is rejected (by the contract) and the window commits.
  it.each([
    {
      name: 'NUL in its access_key',
      extra: { access_key: 'ak\u0000x' },
      message: /^access_key: must not contain NUL characters$/,
    },
    {
      name: 'a user_id beyond int4',
      extra: { user_id: 2_147_483_648 },
      message: /^user_id: .*2147483647/,
    },
    {
      name: 'a model_route_id beyond int4',
      extra: { model_route_id: 2 ** 40 },
      message: /^model_route_id: .*2147483647/,
    },
  ])(
    'rejects a report with $name and commits the rest of its window',
    async ({ extra, message }) => {
      const good = await enqueue(env.r.redis, env.r.prefix, [
        { model: 'qwen3-8b', model_id: 1, input_token: 1, completed_at: COMPLETED_AT },
      ]);
      const bad = rid('unstorable');
      const raw = JSON.stringify({ report_id: bad, model: 'qwen3-8b', model_id: 1, ...extra });
      await xaddRaw(env.r.redis, env.r.prefix, 0, [raw]);
      await start();
      expect(await waitForOutcome(env.db.prisma, [...good, bad])).toEqual({
        committed: 1,
        rejected: 1,
      });
      const row = await env.db.prisma.rejectedUsageReport.findUniqueOrThrow({
        where: { reportId: bad },
      });
      expect([row.reason, row.message, row.rawReport]).toEqual([
        'invalid_report',
        expect.stringMatching(message),
        raw,
      ]);
    },
  );
});

describe('exactly once', () => {
  const report = (id: string, input: number) =>
    JSON.stringify({
      report_id: id,
      model: 'qwen3-8b',
      model_id: 1,
      user_id: 1,
      input_token: input,
      output_token: 1,
      completed: true,
      completed_at: COMPLETED_AT,
    });

  it('counts a report_id sent twice in one window once and reports the duplicate', async () => {
    const id = rid('twice');
    const other = rid('once');
    const window = pastWindow();
    await xaddAt(env.r.redis, env.r.prefix, 0, [
      { id: `${window + 5}-0`, payload: report(id, 10) },
      { id: `${window + 5}-1`, payload: report(other, 1) },
      { id: `${window + 150}-0`, payload: report(id, 10) },
    ]);
    const running = await start();
    const results = await completedBatches(running, 1);
    expect(results.get(batchJobId(0, window))).toEqual({
      committed: 2,
      duplicates: 1,
      rejected: {},
      pages: 1,
    });
    expect(await env.db.prisma.modelUsageDetail.count({ where: { reportId: id } })).toBe(1);
    const rollup = await env.db.prisma.modelUsage.findFirstOrThrow();
    expect([rollup.promptTokenCount, rollup.completionTokenCount, rollup.requestCount]).toEqual([
      11n,
      2n,
      2n,
    ]);
    await drained();
  });

  it('counts a report_id sent again in a later window and in another partition once', async () => {
    const id = rid('again');
    const window = pastWindow();
    await xaddAt(env.r.redis, env.r.prefix, 0, [
      { id: `${window + 5}-0`, payload: report(id, 10) },
      { id: `${window + WINDOW_MS + 5}-0`, payload: report(id, 10) },
    ]);
    await xaddAt(env.r.redis, env.r.prefix, 1, [
      { id: `${window + 7}-0`, payload: report(id, 10) },
    ]);
    const running = await start();
    const results = await completedBatches(running, 3);
    const jobIds = [
      batchJobId(0, window),
      batchJobId(0, window + WINDOW_MS),
      batchJobId(1, window),
    ];
    expect([...results.keys()].sort()).toEqual([...jobIds].sort());
    // Whichever batch ran first committed the report; the other two found it there.
    for (const jobId of jobIds) {
      const result = results.get(jobId);
      expect({
        pages: result?.pages,
        rejected: result?.rejected,
        seen: (result?.committed ?? 0) + (result?.duplicates ?? 0),
      }).toEqual({
        pages: 1,
        rejected: {},
        seen: 1,
      });
    }
    const all = [...results.values()];
    expect([
      all.reduce((n, x) => n + x.committed, 0),
      all.reduce((n, x) => n + x.duplicates, 0),
    ]).toEqual([1, 2]);
    const rollup = await env.db.prisma.modelUsage.findFirstOrThrow();
    expect([rollup.promptTokenCount, rollup.requestCount]).toEqual([10n, 1n]);
    expect(await env.db.prisma.modelUsageDetail.count()).toBe(1);
    await drained();
  });
});
