// The benchmark's world and its reports: a GPUStack-like set of entities and a realistic,
// deterministic mix of reports (a few hundred rollup keys, 10% interrupted streams, 1%
// rejections), written into partition streams exactly as the producer stores them.
import type { Redis } from 'ioredis';
import { REPORT_FIELD, streamKey } from '../src/contract/keys.js';
import { reportSchema, type StoredReport, type UsageReportInput } from '../src/contract/report.js';
import type { PrismaClient } from '../src/db/client.js';
import { createUuidV7, partitionOf } from '../src/producer/ids.js';
import {
  OPENAI_PROXY as PROVIDER,
  WORLD,
  seedWorld as seedWorldInto,
  type World,
} from '../devkit/world.js';

const PROVIDER_MODELS = PROVIDER.models.map((m) => m.name);

const LLMS = ['qwen3-8b', 'qwen3-32b', 'llama-3.3-70b', 'mistral-small', 'deepseek-v3', 'glm-4'];
const EMBEDDERS = ['bge-m3', 'bge-reranker'];
export const USERS = 40;

/** The platform Org and a tenant Org, after the users' ids. */
const PLATFORM_ORG = USERS + 1;
const TENANT_ORG = USERS + 2;

/**
 * The development kit's world, grown to bench size: its clusters, routes and provider,
 * six LLMs and two embedders, USERS users each with an API key (every other key owned by
 * a tenant Org, the rest "All"-mode keys), and the platform Org owning models and routes.
 */
export const BENCH_WORLD: World = {
  ...WORLD,
  principals: [
    ...Array.from({ length: USERS }, (_, i) => ({
      id: i + 1,
      kind: 'USER' as const,
      name: `user-${i + 1}`,
    })),
    { id: PLATFORM_ORG, kind: 'ORG', name: 'default' },
    { id: TENANT_ORG, kind: 'ORG', name: 'tenant' },
  ],
  models: [
    ...LLMS.map((name, i) => ({
      id: i + 1,
      name,
      clusterId: (i % 2) + 1,
      categories: ['llm'],
      ownerPrincipalId: PLATFORM_ORG,
    })),
    { id: 7, name: 'bge-m3', clusterId: 1, categories: ['embedding'], ownerPrincipalId: null },
    { id: 8, name: 'bge-reranker', clusterId: 2, categories: ['reranker'], ownerPrincipalId: null },
  ],
  routes: WORLD.routes.map((r) => ({ ...r, ownerPrincipalId: PLATFORM_ORG })),
  apiKeys: Array.from({ length: USERS }, (_, i) => ({
    id: i + 1,
    name: `key-${i + 1}`,
    accessKey: `gpustack_ak_${i + 1}`,
    isCustom: i % 3 === 0,
    userId: i + 1,
    ownerPrincipalId: i % 2 === 0 ? TENANT_ORG : null,
  })),
};

/** Seeds the bench world into an empty database. */
export async function seedWorld(prisma: PrismaClient): Promise<void> {
  await seedWorldInto(prisma, BENCH_WORLD);
}

/** A small deterministic PRNG (mulberry32), so every run sends the same mix. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The i-th report of the mix, as a gateway would send it (no report_id, no timestamps).
 * Keys: 40 users × (6 LLMs, or 2 embedders, or the provider's 2 models) ≈ 400 rollup keys.
 */
export function reportInput(random: () => number): UsageReportInput {
  const user = 1 + Math.floor(random() * USERS);
  const kind = random();
  const roll = random();
  const interrupted = random() < 0.1;
  let report: UsageReportInput;
  if (kind < 0.75) {
    const m = Math.floor(random() * LLMS.length);
    report = {
      model: LLMS[m] ?? 'qwen3-8b',
      model_id: m + 1,
      model_route_id: 1,
      operation: 'chat_completion',
      input_token: 200 + Math.floor(random() * 2000),
      output_token: 50 + Math.floor(random() * 800),
      input_cached_token: Math.floor(random() * 100),
    };
  } else if (kind < 0.9) {
    const m = Math.floor(random() * EMBEDDERS.length);
    const input = 100 + Math.floor(random() * 500);
    report = {
      model: EMBEDDERS[m] ?? 'bge-m3',
      model_id: 7 + m,
      model_route_id: 2,
      operation: m === 0 ? 'embedding' : 'rerank',
      input_token: input,
      total_token: input + Math.floor(random() * 50),
    };
  } else {
    report = {
      model: PROVIDER_MODELS[Math.floor(random() * 2)] ?? 'gpt-4o',
      provider_id: PROVIDER.id,
      provider_name: PROVIDER.name,
      provider_type: PROVIDER.config.type,
      operation: 'chat_completion',
      input_token: 300 + Math.floor(random() * 1500),
      output_token: 100 + Math.floor(random() * 500),
    };
  }
  report.user_id = user;
  report.access_key = `gpustack_ak_${user}`;
  report.completed = true;
  if (interrupted) {
    // An interrupted stream: no token counts, only the hints the worker estimates from.
    report.completed = false;
    report.input_token = 0;
    report.output_token = 0;
    report.request_content_bytes = 1_000 + Math.floor(random() * 8_000);
    report.output_chunk_count = Math.floor(random() * 300);
  }
  // 1% rejected: half an unknown model, half an unknown user.
  if (roll < 0.005) report.model_id = 9_999;
  else if (roll < 0.01) report.user_id = 99_999;
  return report;
}

/**
 * `count` validated reports (what the producer stores), their instants spread over time.
 * Drawn from 4,096 validated templates, so writing a 1M backlog costs no per-report parse.
 */
export function* storedReports(
  count: number,
  seed: number,
  firstMs: number,
  perSecond: number,
): Generator<{ ms: number; report: StoredReport }> {
  const random = rng(seed);
  const pool = Array.from({ length: 4_096 }, () => reportSchema.parse(reportInput(random)));
  let ms = firstMs;
  const nextId = createUuidV7(() => ms);
  for (let i = 0; i < count; i += 1) {
    ms = firstMs + Math.floor((i * 1000) / perSecond);
    const template = pool[Math.floor(random() * pool.length)] ?? pool[0];
    if (template === undefined) break;
    yield {
      ms,
      report: {
        ...template,
        report_id: nextId(),
        started_at: ms - 500 - Math.floor(random() * 5_000),
        completed_at: ms,
      },
    };
  }
}

export interface Backlog {
  sent: number;
  /** Sum of the JSON payload sizes, for the bytes-per-report figure. */
  payloadBytes: number;
  firstMs: number;
  lastMs: number;
}

/**
 * Writes a backlog into the partition streams as if it had arrived at `perSecond` reports/s
 * ending `endsAgoMs` before now (stream ids in the past, so every window is already closed).
 * The JSON is what UsageProducer stores; the entries carry explicit ids (`<ms>-*`).
 */
export async function fillBacklog(
  redis: Redis,
  prefix: string,
  partitions: number,
  count: number,
  options: { seed: number; perSecond: number; endsAgoMs: number },
): Promise<Backlog> {
  const spanMs = Math.ceil((count * 1000) / options.perSecond);
  const firstMs = Date.now() - options.endsAgoMs - spanMs;
  const chunk = 5_000;
  let pipeline = redis.pipeline();
  let queued = 0;
  let payloadBytes = 0;
  let lastMs = firstMs;
  const flush = async () => {
    const results = (await pipeline.exec()) ?? [];
    for (const [error] of results) if (error) throw error;
    pipeline = redis.pipeline();
    queued = 0;
  };
  for (const { ms, report } of storedReports(count, options.seed, firstMs, options.perSecond)) {
    const json = JSON.stringify(report);
    payloadBytes += json.length;
    lastMs = ms;
    const key = streamKey(prefix, partitionOf(report.report_id, partitions));
    pipeline.xadd(key, `${ms}-*`, REPORT_FIELD, json);
    queued += 1;
    if (queued >= chunk) await flush();
  }
  if (queued > 0) await flush();
  return { sent: count, payloadBytes, firstMs, lastMs };
}
