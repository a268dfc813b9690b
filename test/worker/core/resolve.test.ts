// One report → an audit row or a rejection with its reason: GPUStack's validation rules,
// estimation, the embedding/reranker token rule, the date and every snapshot field.
import { describe, expect, it } from 'vitest';
import type { UsageReportInput } from '../../../src/contract/report.js';
import type {
  ApiKeyEntity,
  Entities,
  ModelEntity,
  PrincipalEntity,
  ProviderEntity,
  RouteEntity,
} from '../../../src/worker/core/entities.js';
import {
  resolveReport,
  type AuditRow,
  type ResolveContext,
} from '../../../src/worker/core/resolve.js';
import { storedReport } from '../../support/fixtures.js';

function byId<K, V>(values: V[], key: (v: V) => K): Map<K, V> {
  return new Map(values.map((v) => [key(v), v]));
}

const PLATFORM = 100;
const MODELS: ModelEntity[] = [
  {
    id: 1,
    name: 'qwen3-8b',
    clusterId: 10,
    clusterName: 'gpu-east',
    categories: ['llm'],
    ownerPrincipalId: PLATFORM,
  },
  {
    id: 3,
    name: 'bge-m3',
    clusterId: 10,
    clusterName: 'gpu-east',
    categories: ['embedding'],
    ownerPrincipalId: null,
  },
  {
    id: 4,
    name: 'bge-reranker',
    clusterId: 20,
    clusterName: 'gpu-west',
    categories: ['reranker'],
    ownerPrincipalId: 101,
  },
  {
    id: 5,
    name: 'orphan',
    clusterId: null,
    clusterName: null,
    categories: [],
    ownerPrincipalId: null,
  },
];
const PROVIDERS: ProviderEntity[] = [
  {
    id: 7,
    name: 'openai-proxy',
    type: 'openai',
    modelNames: ['gpt-4o', 'qwen3-8b'],
    ownerPrincipalId: 101,
  },
  { id: 8, name: 'untyped', type: null, modelNames: ['claude'], ownerPrincipalId: null },
];
const PRINCIPALS: PrincipalEntity[] = [
  { id: 2, kind: 'USER', name: 'bob' },
  { id: 9, kind: 'SYSTEM', name: 'system' },
  { id: PLATFORM, kind: 'ORG', name: 'default' },
  { id: 101, kind: 'ORG', name: 'acme' },
];
const API_KEYS: ApiKeyEntity[] = [
  { id: 11, name: 'bob-ci', accessKey: 'ak_bob', isCustom: true, ownerPrincipalId: 101 },
  { id: 12, name: 'bob-all', accessKey: 'ak_all', isCustom: false, ownerPrincipalId: null },
];
const ROUTES: RouteEntity[] = [
  { id: 31, name: 'chat-default', createdModelId: null, ownerPrincipalId: PLATFORM },
  { id: 32, name: 'qwen3-8b:sql-lora', createdModelId: 1, ownerPrincipalId: PLATFORM },
  { id: 33, name: 'claude-route', createdModelId: null, ownerPrincipalId: 101 },
];

const ENTITIES: Entities = {
  models: byId(MODELS, (m) => m.id),
  providers: byId(PROVIDERS, (p) => p.id),
  principals: byId(PRINCIPALS, (u) => u.id),
  apiKeys: byId(API_KEYS, (k) => k.accessKey),
  routes: byId(ROUTES, (r) => r.id),
};

const PROCESSED = Date.UTC(2026, 10, 27, 3, 0, 0);
const CTX: ResolveContext = {
  timeZone: 'UTC',
  processedAt: PROCESSED,
  bytesPerInputToken: 4,
  tokensPerOutputChunk: 1,
};

function resolve(input: UsageReportInput, ctx: Partial<ResolveContext> = {}) {
  return resolveReport(storedReport(input), ENTITIES, { ...CTX, ...ctx });
}

function row(input: UsageReportInput, ctx: Partial<ResolveContext> = {}): AuditRow {
  const result = resolve(input, ctx);
  if (!result.ok) throw new Error(`expected a row, got ${result.reason}: ${result.message}`);
  return result.row;
}

describe('resolveReport validation', () => {
  it.each([
    // GPUStack's gateway sends model "" when nothing names one: kept as a rejection.
    { reason: 'empty_model', report: { model: '', model_id: 1 }, message: 'names no model' },
    {
      reason: 'missing_model_and_provider',
      report: { model: 'qwen3-8b', user_id: 2 },
      message: 'report has neither model_id nor provider_id',
    },
    { reason: 'unknown_model', report: { model: 'qwen3-8b', model_id: 99 }, message: '99' },
    {
      reason: 'model_name_mismatch',
      report: { model: 'bge-m3', model_id: 1 },
      message: 'model_id 1 is named "qwen3-8b", report says "bge-m3"',
    },
    // GPUStack's LoRA rule (f6996fe8) accepts a different name only through a route named
    // exactly that name whose created_model_id is the model: each condition unmet rejects.
    {
      reason: 'model_name_mismatch',
      report: { model: 'qwen3-8b:sql-lora', model_id: 1 },
      message: 'model_id 1 is named "qwen3-8b", report says "qwen3-8b:sql-lora"',
    },
    {
      reason: 'model_name_mismatch',
      report: { model: 'qwen3-8b:sql-lora', model_id: 1, model_route_id: 31 },
      message: 'model_route_id 31 is no LoRA route of it',
    },
    {
      reason: 'model_name_mismatch',
      report: { model: 'qwen3-8b:sql-lora', model_id: 3, model_route_id: 32 },
      message: 'model_id 3 is named "bge-m3"',
    },
    {
      reason: 'model_name_mismatch',
      report: { model: 'qwen3-8b:sql-lora', model_id: 1, model_route_id: 404 },
      message: 'model_route_id 404',
    },
    { reason: 'unknown_provider', report: { model: 'gpt-4o', provider_id: 99 }, message: '99' },
    {
      reason: 'model_not_offered_by_provider',
      report: { model: 'claude', provider_id: 7 },
      message: 'provider_id 7 does not offer model "claude"',
    },
    {
      reason: 'unknown_user',
      report: { model: 'qwen3-8b', model_id: 1, user_id: 99 },
      message: 'user_id 99 not found',
    },
    // The rules apply to both ids when both are given.
    {
      reason: 'unknown_provider',
      report: { model: 'qwen3-8b', model_id: 1, provider_id: 99 },
      message: 'provider_id 99',
    },
    {
      reason: 'model_not_offered_by_provider',
      report: { model: 'bge-m3', model_id: 3, provider_id: 7 },
      message: 'provider_id 7',
    },
    {
      reason: 'unknown_user',
      report: { model: 'gpt-4o', provider_id: 7, user_id: 99 },
      message: 'user_id 99',
    },
  ])('rejects $report with $reason', ({ reason, report, message }) => {
    const result = resolve(report);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe(reason);
    expect(result.message).toContain(message);
  });

  it('treats model_id 0 as a given (and unknown) id, not as missing', () => {
    expect(resolve({ model: 'qwen3-8b', model_id: 0 })).toMatchObject({
      ok: false,
      reason: 'unknown_model',
    });
  });

  it('does not reject an unknown access_key or route: their snapshot fields are null', () => {
    const r = row({ model: 'qwen3-8b', model_id: 1, access_key: 'ak_nobody', model_route_id: 404 });
    expect(r).toMatchObject({
      accessKey: 'ak_nobody',
      apiKeyId: null,
      apiKeyName: null,
      apiKeyIsCustom: null,
      modelRouteId: 404,
      modelRouteName: null,
    });
  });
});

describe('resolveReport tokens', () => {
  it.each([
    {
      name: 'reranker: total alone is the prompt',
      model: 'bge-reranker',
      id: 4,
      prompt: 77,
      completion: 0,
    },
    {
      name: 'embedding: total alone is the prompt',
      model: 'bge-m3',
      id: 3,
      prompt: 77,
      completion: 0,
    },
    {
      name: 'llm: total is not a prompt count',
      model: 'qwen3-8b',
      id: 1,
      prompt: 0,
      completion: 0,
    },
    {
      name: 'uncategorised model: total ignored',
      model: 'orphan',
      id: 5,
      prompt: 0,
      completion: 0,
    },
  ])('$name', ({ model, id, prompt, completion }) => {
    const r = row({ model, model_id: id, total_token: 77, completed: true });
    expect([r.promptTokens, r.completionTokens]).toEqual([prompt, completion]);
  });

  it('embedding: prompt = total − output when total exceeds input + output', () => {
    const r = row({
      model: 'bge-m3',
      model_id: 3,
      input_token: 30,
      output_token: 5,
      total_token: 77,
      completed: true,
    });
    expect([r.promptTokens, r.completionTokens]).toEqual([72, 5]);
  });

  it('embedding: prompt = input when total does not exceed input + output', () => {
    const r = row({
      model: 'bge-m3',
      model_id: 3,
      input_token: 30,
      output_token: 5,
      total_token: 35,
      completed: true,
    });
    expect([r.promptTokens, r.completionTokens]).toEqual([30, 5]);
  });

  it('a provider model has no categories: prompt = input', () => {
    const r = row({ model: 'gpt-4o', provider_id: 7, input_token: 3, total_token: 77 });
    expect([r.promptTokens, r.completionTokens]).toEqual([3, 0]);
  });

  it('estimates an interrupted stream with the context’s rates', () => {
    const r = row(
      { model: 'qwen3-8b', model_id: 1, request_content_bytes: 400, output_chunk_count: 10 },
      { tokensPerOutputChunk: 2 },
    );
    expect([r.promptTokens, r.completionTokens]).toEqual([100, 20]);
  });

  it('estimates before the embedding rule: an estimated total never inflates the prompt', () => {
    const r = row({ model: 'bge-m3', model_id: 3, request_content_bytes: 400 });
    expect([r.promptTokens, r.completionTokens]).toEqual([100, 0]);
  });

  it('copies cached tokens and request count as reported', () => {
    const r = row({
      model: 'qwen3-8b',
      model_id: 1,
      input_token: 50,
      input_cached_token: 40,
      request_count: 3,
    });
    expect([r.promptTokens, r.cachedTokens, r.requestCount]).toEqual([50, 40, 3]);
  });
});

describe('resolveReport snapshot', () => {
  const started = Date.UTC(2026, 10, 26, 23, 59, 50);
  const completed = Date.UTC(2026, 10, 27, 0, 0, 10);

  it('fills every field of a model report from the right entity', () => {
    const r = row({
      report_id: 'rep-1',
      model: 'bge-reranker',
      model_id: 4,
      user_id: 2,
      access_key: 'ak_bob',
      model_route_id: 31,
      operation: 'rerank',
      input_token: 9,
      started_at: started,
      completed_at: completed,
      completed: true,
    });
    expect(r).toEqual({
      reportId: 'rep-1',
      date: '2026-11-27',
      modelId: 4,
      modelName: 'bge-reranker',
      modelRouteId: 31,
      modelRouteName: 'chat-default',
      providerId: null,
      providerName: null,
      providerType: null,
      clusterId: 20,
      clusterName: 'gpu-west',
      userId: 2,
      userName: 'bob',
      ownerPrincipalId: 101,
      consumerPrincipalId: 101,
      consumerName: 'acme',
      consumerPrincipalKind: 'org',
      apiKeyId: 11,
      apiKeyName: 'bob-ci',
      accessKey: 'ak_bob',
      apiKeyIsCustom: true,
      // GPUStack stores OperationEnum member names (notes §1).
      operation: 'RERANK',
      completed: true,
      promptTokens: 9,
      completionTokens: 0,
      cachedTokens: 0,
      requestCount: 1,
      startedAt: started,
      completedAt: completed,
      instant: completed,
    } satisfies AuditRow);
  });

  it('takes model id/name from the report for a provider model without a models row', () => {
    const r = row({ model: 'gpt-4o', provider_id: 7, user_id: 2, operation: 'chat_completion' });
    expect(r).toMatchObject({
      modelId: null,
      modelName: 'gpt-4o',
      providerId: 7,
      providerName: 'openai-proxy',
      providerType: 'openai',
      clusterId: null,
      clusterName: null,
      userName: 'bob',
      operation: 'CHAT_COMPLETION',
    });
  });

  it('uses the models row when a provider model also has one', () => {
    const r = row({ model: 'qwen3-8b', model_id: 1, provider_id: 7 });
    expect(r).toMatchObject({
      modelId: 1,
      modelName: 'qwen3-8b',
      providerId: 7,
      providerName: 'openai-proxy',
      clusterName: 'gpu-east',
    });
  });

  it('snapshots the provider from its entity, not from the report’s provider_name/type', () => {
    const r = row({
      model: 'claude',
      provider_id: 8,
      provider_name: 'spoofed',
      provider_type: 'spoofed',
    });
    expect([r.providerId, r.providerName, r.providerType]).toEqual([8, 'untyped', null]);
  });

  it('cluster_id: the report’s beats the model’s; cluster_name stays the model’s cluster', () => {
    const reported = row({ model: 'qwen3-8b', model_id: 1, cluster_id: 20 });
    expect([reported.clusterId, reported.clusterName]).toEqual([20, 'gpu-east']);
    const fallback = row({ model: 'qwen3-8b', model_id: 1 });
    expect([fallback.clusterId, fallback.clusterName]).toEqual([10, 'gpu-east']);
    const none = row({ model: 'orphan', model_id: 5 });
    expect([none.clusterId, none.clusterName]).toEqual([null, null]);
  });

  it('leaves user, key and route snapshots null when the report names none', () => {
    const r = row({ model: 'qwen3-8b', model_id: 1 });
    expect(r).toMatchObject({
      userId: null,
      userName: null,
      apiKeyId: null,
      apiKeyName: null,
      accessKey: null,
      apiKeyIsCustom: null,
      modelRouteId: null,
      modelRouteName: null,
      operation: null,
      consumerPrincipalId: null,
      consumerName: null,
      consumerPrincipalKind: null,
      completed: false,
    });
  });

  it.each([
    {
      name: 'completed_at',
      report: { started_at: started, completed_at: completed },
      instant: completed,
    },
    { name: 'started_at', report: { started_at: started }, instant: started },
    { name: 'processing time', report: {}, instant: PROCESSED },
  ])('instant and date come from $name', ({ report, instant }) => {
    const r = row({ model: 'qwen3-8b', model_id: 1, ...report });
    expect(r.instant).toBe(instant);
    expect(r.startedAt).toBe(report.started_at ?? null);
    expect(r.completedAt).toBe(report.completed_at ?? null);
    expect(r.date).toBe(new Date(instant).toISOString().slice(0, 10));
  });

  it('dates the report in the context’s time zone', () => {
    const at = Date.UTC(2026, 10, 26, 23, 30);
    const report = { model: 'qwen3-8b', model_id: 1, completed_at: at };
    expect(row(report, { timeZone: 'UTC' }).date).toBe('2026-11-26');
    expect(row(report, { timeZone: 'Asia/Shanghai' }).date).toBe('2026-11-27');
    expect(row(report, { timeZone: 'Asia/Shanghai' }).instant).toBe(at);
  });
});

// GPUStack v2.2.3's newer rules (notes §3-§4): LoRA routes, owners, consumers.
describe('resolveReport LoRA, owner and consumer', () => {
  it('books a LoRA report under the base model, with the LoRA route (f6996fe8)', () => {
    const r = row({ model: 'qwen3-8b:sql-lora', model_id: 1, model_route_id: 32 });
    expect(r).toMatchObject({
      modelId: 1,
      modelName: 'qwen3-8b',
      modelRouteId: 32,
      modelRouteName: 'qwen3-8b:sql-lora',
      clusterName: 'gpu-east',
    });
  });

  it('owner: the model’s owner when the report names a model, even a null one', () => {
    expect(row({ model: 'qwen3-8b', model_id: 1, model_route_id: 33 }).ownerPrincipalId).toBe(
      PLATFORM,
    );
    expect(row({ model: 'bge-m3', model_id: 3, model_route_id: 31 }).ownerPrincipalId).toBeNull();
  });

  it('owner on the provider path: the provider’s, else the route’s (a6c3aeb1)', () => {
    expect(row({ model: 'gpt-4o', provider_id: 7, model_route_id: 31 }).ownerPrincipalId).toBe(101);
    expect(row({ model: 'claude', provider_id: 8, model_route_id: 31 }).ownerPrincipalId).toBe(
      PLATFORM,
    );
    expect(row({ model: 'claude', provider_id: 8 }).ownerPrincipalId).toBeNull();
  });

  const consumerOf = (report: Partial<UsageReportInput>) => {
    const r = row({ model: 'qwen3-8b', model_id: 1, ...report });
    return [r.consumerPrincipalId, r.consumerName, r.consumerPrincipalKind];
  };

  it('consumer 1: the API key’s owner, over organization_id and the caller', () => {
    expect(consumerOf({ access_key: 'ak_bob', organization_id: '100', user_id: 2 })).toEqual([
      101,
      'acme',
      'org',
    ]);
  });

  it('consumer 2: organization_id only when no API key row is found (57516c72)', () => {
    expect(consumerOf({ organization_id: '100', user_id: 2 })).toEqual([100, 'default', 'org']);
    expect(consumerOf({ access_key: 'ak_nobody', organization_id: '101' })).toEqual([
      101,
      'acme',
      'org',
    ]);
    // A key without an owner ("All" mode) is a key row found: the org header is not used.
    expect(consumerOf({ access_key: 'ak_all', organization_id: '101', user_id: 2 })).toEqual([
      2,
      'bob',
      'user',
    ]);
    // Existence is not checked: the id is kept, its name and kind are unknown.
    expect(consumerOf({ organization_id: '555' })).toEqual([555, null, null]);
  });

  it('consumer 3: the caller when a USER principal; 4: otherwise none', () => {
    expect(consumerOf({ user_id: 2 })).toEqual([2, 'bob', 'user']);
    expect(consumerOf({ user_id: 9 })).toEqual([null, null, null]);
    expect(consumerOf({ access_key: 'ak_all', user_id: 9 })).toEqual([null, null, null]);
    expect(consumerOf({})).toEqual([null, null, null]);
  });

  it('a non-numeric organization_id is ignored, as GPUStack’s int() fails on it', () => {
    expect(consumerOf({ organization_id: 'acme', user_id: 2 })).toEqual([2, 'bob', 'user']);
    expect(consumerOf({ organization_id: '', user_id: 2 })).toEqual([2, 'bob', 'user']);
  });
});
