import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { UsageProducer } from '../../src/producer/index.js';
import {
  buildIngestServer,
  DEFAULT_BODY_LIMIT_BYTES,
  INGEST_PATH,
  type IngestServerOptions,
} from '../../src/producer/server.js';
import { createTestRedis, type TestRedis } from '../support/services.js';
import { closedPort, keysUnder, readStreams, sampleReport } from './support.js';

const TOKEN = 'gw-secret-token-7f3a9c';

let t: TestRedis;
let logLines: string[];
const toClose: { close(): Promise<unknown> }[] = [];

beforeEach(async () => {
  t = await createTestRedis();
  logLines = [];
});

afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
  await t.cleanup();
});

/** A real ingest server on a free port, logging everything (trace) into `logLines`. */
async function startServer(options: Partial<IngestServerOptions> & { redisUrl?: string } = {}) {
  const producer = new UsageProducer({
    redis: options.redisUrl ?? t.redis,
    keyPrefix: t.prefix,
    timeoutMs: 500,
  });
  toClose.push(producer);
  const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
  const server = buildIngestServer({ producer, gatewayToken: TOKEN, logger, ...options });
  toClose.push(server);
  const base = await server.listen({ host: '127.0.0.1', port: 0 });
  return {
    base,
    post: (body: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${INGEST_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': TOKEN, ...headers },
        body,
      }),
  };
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

describe('POST /v2/usage/gateway-metrics', () => {
  it('accepts one report', async () => {
    const { post } = await startServer();
    const response = await post(JSON.stringify(sampleReport({ report_id: 'one' })));
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ accepted: 1, report_ids: ['one'] });
    const entries = await readStreams(t.redis, t.prefix, 4);
    expect(entries.map((e) => e.report['report_id'])).toEqual(['one']);
  });

  it('accepts an array and answers with the ids in order', async () => {
    const { post } = await startServer();
    const reports = Array.from({ length: 50 }, (_, i) => sampleReport({ input_token: i }));
    const response = await post(JSON.stringify(reports));
    expect(response.status).toBe(200);
    const body = (await json(response)) as { accepted: number; report_ids: string[] };
    expect(body.accepted).toBe(50);
    const entries = await readStreams(t.redis, t.prefix, 4);
    const tokens = new Map(entries.map((e) => [e.report['report_id'], e.report['input_token']]));
    body.report_ids.forEach((id, i) => expect(tokens.get(id)).toBe(i));
  });

  it('accepts the same report_id twice (dedup is the worker’s job)', async () => {
    const { post } = await startServer();
    const body = JSON.stringify(sampleReport({ report_id: 'dup' }));
    expect((await post(body)).status).toBe(200);
    expect((await post(body)).status).toBe(200);
    const entries = await readStreams(t.redis, t.prefix, 4);
    expect(entries.map((e) => e.report['report_id'])).toEqual(['dup', 'dup']);
  });

  it('rejects the whole array with every problem and its indexes, enqueueing nothing', async () => {
    const { post } = await startServer();
    const reports = [
      sampleReport(),
      sampleReport(),
      sampleReport(),
      sampleReport({ input_token: -5 }),
      sampleReport({ model: 7, completed: 'yes' }),
    ];
    const response = await post(JSON.stringify(reports));
    expect(response.status).toBe(400);
    const body = await json(response);
    expect(body['error']).toBe('invalid_report');
    expect(body['invalid_indexes']).toEqual([3, 4]);
    const problems = body['problems'] as { path: string; message: string }[];
    expect(problems.map((p) => p.path).sort()).toEqual(['3.input_token', '4.completed', '4.model']);
    for (const p of problems) expect(p.message).not.toBe('');
    expect(await keysUnder(t.redis, t.prefix)).toEqual([]);
  });

  it.each([
    ['a number', '42'],
    ['null', 'null'],
    ['a report without a model', '{"input_token": 1}'],
  ])('answers 400 invalid_report to %s', async (_label, body) => {
    const { post } = await startServer();
    const response = await post(body);
    expect(response.status).toBe(400);
    expect((await json(response))['error']).toBe('invalid_report');
  });

  it('answers 400 to an empty array and to an array over 1000 reports', async () => {
    const { post } = await startServer({ bodyLimitBytes: 16 * 1024 * 1024 });
    const empty = await post('[]');
    expect(empty.status).toBe(400);
    expect((await json(empty))['error']).toBe('empty_batch');
    const tooMany = await post(JSON.stringify(Array.from({ length: 1001 }, () => sampleReport())));
    expect(tooMany.status).toBe(400);
    const body = await json(tooMany);
    expect(body['error']).toBe('too_many_reports');
    expect(body['message']).toContain('1000');
    expect(await keysUnder(t.redis, t.prefix)).toEqual([]);
  });

  it.each([
    ['truncated JSON', '{"model": "qwen3-8b",'],
    ['an empty body', ''],
    ['a prototype-poisoning key', '{"model": "m", "__proto__": {"admin": true}}'],
  ])('answers 400 (not 500) to %s', async (_label, body) => {
    const { post } = await startServer();
    const response = await post(body);
    expect(response.status).toBe(400);
    expect((await json(response))['message']).toEqual(expect.any(String));
  });

  it('answers 415 to a body that is not JSON', async () => {
    const { post } = await startServer();
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const response = await post(JSON.stringify(sampleReport()), { 'content-type': type });
      expect(response.status).toBe(415);
      expect((await json(response))['error']).toBe('unsupported_media_type');
    }
  });

  it('limits bodies to 4 MiB unless TALLY_INGEST_BODY_LIMIT_BYTES says otherwise', () => {
    expect(DEFAULT_BODY_LIMIT_BYTES).toBe(4 * 1024 * 1024);
    const config = loadConfig({ TALLY_INGEST_BODY_LIMIT_BYTES: '1048576' });
    expect(config.ingestBodyLimitBytes).toBe(1_048_576);
  });

  it('answers 413 to a body over the limit', async () => {
    const { post } = await startServer({ bodyLimitBytes: 2_048 });
    const reports = Array.from({ length: 40 }, () => sampleReport());
    const response = await post(JSON.stringify(reports));
    expect(response.status).toBe(413);
    const body = await json(response);
    expect(body['error']).toBe('payload_too_large');
    expect(body['message']).toContain('2048');
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['wrong', 'gw-secret-token-7f3a9d'],
    ['shorter', 'gw'],
    ['longer', `${TOKEN}x`],
  ])('answers 401 to a %s token and enqueues nothing', async (_label, token) => {
    const { base } = await startServer();
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token !== undefined) headers['x-gpustack-auth-token'] = token;
    const response = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(sampleReport()),
    });
    expect(response.status).toBe(401);
    const body = await json(response);
    expect(body['error']).toBe('unauthorized');
    expect(body['message']).toContain('x-gpustack-auth-token');
    expect(await keysUnder(t.redis, t.prefix)).toEqual([]);
  });

  it('answers 503 when Redis is unreachable', async () => {
    const { post } = await startServer({ redisUrl: `redis://127.0.0.1:${await closedPort()}` });
    const response = await post(
      JSON.stringify([sampleReport(), { ...sampleReport(), report_id: 'given-1' }]),
    );
    expect(response.status).toBe(503);
    const body = await json(response);
    expect(body['error']).toBe('redis_unavailable');
    // The ids a retry should reuse, the given one kept, the missing one assigned.
    const ids = body['report_ids'] as string[];
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe('given-1');
    expect(ids[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
  });
});

describe('health endpoints', () => {
  it('answers /healthz and /readyz with 200 when Redis answers', async () => {
    const { base } = await startServer();
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({ status: 'ok', redis: { status: 'ok' } });
  });

  it('answers /readyz with 503 (and /healthz with 200) when Redis is unreachable', async () => {
    const { base } = await startServer({ redisUrl: `redis://127.0.0.1:${await closedPort()}` });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    const body = await json(ready);
    expect(body).toMatchObject({ status: 'unavailable', redis: { status: 'unavailable' } });
    expect(JSON.stringify(body['redis'])).toMatch(/Redis does not answer/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe('logging', () => {
  it('never logs the token or a payload, even at trace level', async () => {
    const { base, post } = await startServer();
    const marker = 'payload-marker-model-91c2';
    await post(JSON.stringify(sampleReport({ model: marker })));
    await post(JSON.stringify([sampleReport({ model: marker, input_token: -1 })]));
    await post('{"model": "payload-marker-model-91c2",');
    await post(JSON.stringify(sampleReport()), { 'x-gpustack-auth-token': `${TOKEN}-wrong` });
    await fetch(`${base}/readyz`, { headers: { 'x-gpustack-auth-token': TOKEN } });
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) {
      expect(line).not.toContain(TOKEN);
      expect(line).not.toContain(marker);
    }
  });

  it('turns a flood of rejected requests into one warn line per status', async () => {
    const { post } = await startServer();
    for (let i = 0; i < 30; i++) {
      await post('{}', { 'x-gpustack-auth-token': 'nope' });
      await post('{"model": 42}');
    }
    const warnings = logLines
      .map((line) => JSON.parse(line) as { level: number; statusCode?: number })
      .filter((entry) => entry.level === 40);
    expect(warnings.map((w) => w.statusCode).sort()).toEqual([400, 401]);
  });
});
