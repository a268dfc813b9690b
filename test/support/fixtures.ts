// Entities and reports for worker tests: a small, realistic GPUStack world, and a way to
// put reports (or anything at all) into a partition stream exactly as the producer does.
import type { Redis } from 'ioredis';
import { REPORT_FIELD, streamKey } from '../../src/contract/keys.js';
import {
  reportSchema,
  type StoredReport,
  type UsageReportInput,
} from '../../src/contract/report.js';
import type { PrismaClient } from '../../src/db/client.js';

export const WORLD = {
  clusters: [
    { id: 1, name: 'gpu-east' },
    { id: 2, name: 'gpu-west' },
  ],
  models: [
    { id: 1, name: 'qwen3-8b', clusterId: 1, categories: ['llm'] },
    { id: 2, name: 'llama-3-70b', clusterId: 2, categories: ['llm'] },
    { id: 3, name: 'bge-m3', clusterId: 1, categories: ['embedding'] },
    { id: 4, name: 'bge-reranker', clusterId: 2, categories: ['reranker'] },
  ],
  providers: [
    {
      id: 1,
      name: 'openai-proxy',
      models: [{ name: 'gpt-4o' }, { name: 'gpt-4o-mini' }],
      config: { type: 'openai' },
    },
  ],
  routes: [
    { id: 1, name: 'chat-default' },
    { id: 2, name: 'embeddings' },
  ],
  users: [
    { id: 1, username: 'alice' },
    { id: 2, username: 'bob' },
    { id: 3, username: 'carol' },
  ],
  apiKeys: [
    { id: 1, name: 'alice-laptop', accessKey: 'ak_alice', isCustom: false },
    { id: 2, name: 'bob-ci', accessKey: 'ak_bob', isCustom: true },
  ],
};

export async function seedWorld(prisma: PrismaClient): Promise<void> {
  await prisma.cluster.createMany({ data: WORLD.clusters });
  await prisma.model.createMany({ data: WORLD.models });
  await prisma.modelProvider.createMany({ data: WORLD.providers });
  await prisma.modelRoute.createMany({ data: WORLD.routes });
  await prisma.user.createMany({ data: WORLD.users });
  await prisma.apiKey.createMany({ data: WORLD.apiKeys });
}

/** Adds raw entries to a partition stream; returns the stream entry ids. */
export async function xaddRaw(
  redis: Redis,
  prefix: string,
  partition: number,
  payloads: string[],
): Promise<string[]> {
  const pipeline = redis.pipeline();
  for (const p of payloads) pipeline.xadd(streamKey(prefix, partition), '*', REPORT_FIELD, p);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, id]) => {
    if (error) throw error;
    return String(id);
  });
}

let counter = 0;
/** A unique report id for a test. */
export function rid(label = 'r'): string {
  counter += 1;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/** Adds reports (given an id if they have none) to a partition stream, as the producer does. */
export async function enqueue(
  redis: Redis,
  prefix: string,
  reports: UsageReportInput[],
  partition = 0,
): Promise<string[]> {
  const withIds = reports.map((r) => ({ ...r, report_id: r.report_id ?? rid() }));
  await xaddRaw(
    redis,
    prefix,
    partition,
    withIds.map((r) => JSON.stringify(r)),
  );
  return withIds.map((r) => r.report_id);
}

/** A report as the worker holds it after parsing: contract defaults applied, id given. */
export function storedReport(input: UsageReportInput): StoredReport {
  const report = reportSchema.parse(input);
  return { ...report, report_id: report.report_id ?? rid() };
}

/**
 * Adds entries with explicit stream ids (e.g. `${ms}-${seq}`), to place reports in a chosen
 * window. Ids must increase within a stream; returns them.
 */
export async function xaddAt(
  redis: Redis,
  prefix: string,
  partition: number,
  entries: { id: string; payload: string }[],
): Promise<string[]> {
  const pipeline = redis.pipeline();
  for (const e of entries)
    pipeline.xadd(streamKey(prefix, partition), e.id, REPORT_FIELD, e.payload);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, id]) => {
    if (error) throw error;
    return String(id);
  });
}

/** Fills one past window of a partition with `count` reports, ids `<windowStart>-1…count`. */
export async function fillWindow(
  redis: Redis,
  prefix: string,
  windowStart: number,
  count: number,
  report: (i: number) => UsageReportInput,
  partition = 0,
): Promise<void> {
  const entries = Array.from({ length: count }, (_, i) => ({
    id: `${windowStart}-${i + 1}`,
    payload: JSON.stringify({ report_id: rid('w'), ...report(i) }),
  }));
  await xaddAt(redis, prefix, partition, entries);
}
