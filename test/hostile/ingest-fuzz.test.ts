// Hostile input at the HTTP ingest, property-based (fast-check): random and mutated JSON,
// wrong types, unsafe numbers, long strings, deep nesting, odd content types, invalid
// UTF-8, oversized bodies. The server never answers 5xx to bad input, never enqueues
// anything from a rejected request (the streams are checked after every request), and
// stays up; an array is all or nothing, with the failing indexes in the 400 body.
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamKey } from '../../src/contract/keys.js';
import { MAX_TOKEN_COUNT } from '../../src/contract/report.js';
import { UsageProducer } from '../../src/producer/index.js';
import {
  buildIngestServer,
  INGEST_PATH,
  TOKEN_HEADER,
  type IngestServer,
} from '../../src/producer/server.js';
import { createTestRedis, type TestRedis } from '../support/services.js';

const TOKEN = 'fuzz-token-2b7e';
const PARTITIONS = 4;
const BODY_LIMIT = 64 * 1024;
const NUM_RUNS = 120;

let r: TestRedis;
let producer: UsageProducer;
let server: IngestServer;
let base: string;
const logLines: string[] = [];

beforeAll(async () => {
  r = await createTestRedis();
  producer = new UsageProducer({ redis: r.redis, keyPrefix: r.prefix, partitions: PARTITIONS });
  const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
  server = buildIngestServer({ producer, gatewayToken: TOKEN, logger, bodyLimitBytes: BODY_LIMIT });
  base = await server.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await server?.close();
  await producer?.close();
  await r?.cleanup();
});

async function enqueued(): Promise<number> {
  let total = 0;
  for (let p = 0; p < PARTITIONS; p += 1) total += await r.redis.xlen(streamKey(r.prefix, p));
  return total;
}

/** Sends through the full fastify pipeline (parsers, hooks) without a socket per run. */
async function inject(payload: string | Buffer, contentType = 'application/json') {
  const response = await server.inject({
    method: 'POST',
    url: INGEST_PATH,
    headers: { 'content-type': contentType, [TOKEN_HEADER]: TOKEN },
    payload,
  });
  return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
}

/** Sends `payload`; checks no 5xx and that a refused request enqueued nothing. */
async function expectHandled(payload: string | Buffer, contentType?: string) {
  const before = await enqueued();
  const { status, body } = await inject(payload, contentType);
  expect(status, JSON.stringify(body)).toBeLessThan(500);
  const after = await enqueued();
  if (status === 200) expect(after - before).toBe(body['accepted']);
  else {
    expect(after).toBe(before);
    expect(typeof body['error']).toBe('string');
  }
  return { status, body };
}

const valid = fc.record({
  model: fc.constantFrom('qwen3-8b', 'gpt-4o', 'bge-m3'),
  model_id: fc.integer({ min: 0, max: 2_147_483_647 }),
  user_id: fc.option(fc.integer({ min: 0, max: 1_000 }), { nil: null }),
  input_token: fc.nat({ max: MAX_TOKEN_COUNT }),
  output_token: fc.nat({ max: MAX_TOKEN_COUNT }),
  completed: fc.boolean(),
});

const hostileValue = fc.oneof(
  fc.constantFrom(
    -1,
    1.5,
    -0.5,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 53) - 2,
    1e308,
    Number.MAX_VALUE,
    'NaN',
    'Infinity',
    '-Infinity',
    '1e400',
    '12',
    true,
    [],
    {},
    [1],
    { $gt: '' },
    '\u0000',
    'a\u0000b',
  ),
  fc.string({ minLength: 256, maxLength: 2_000 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 4 }),
);

const field = fc.constantFrom(
  'model',
  'input_token',
  'output_token',
  'total_token',
  'input_cached_token',
  'request_count',
  'completed',
  'started_at',
  'completed_at',
  'user_id',
  'model_id',
  'provider_id',
  'provider_name',
  'access_key',
  'operation',
  'report_id',
);

describe('ingest under hostile input', () => {
  it('answers random JSON values without 5xx and enqueues nothing it refuses', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 6 }), async (value) => {
        await expectHandled(JSON.stringify(value));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('refuses a valid report with one field made hostile, or accepts it only if the contract does', async () => {
    await fc.assert(
      fc.asyncProperty(valid, field, hostileValue, async (report, key, value) => {
        const { status } = await expectHandled(JSON.stringify({ ...report, [key]: value }));
        expect([200, 400]).toContain(status);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('keeps unsafe integers written as JSON numbers out (beyond 2^53, huge, negative)', async () => {
    for (const literal of [
      '9007199254740993',
      '1e400',
      '-1',
      '123456789012345678901234567890',
      '-0.0000001',
    ]) {
      const { status, body } = await expectHandled(`{"model":"m","input_token":${literal}}`);
      expect(status, literal).toBe(400);
      expect(body['error']).toBe('invalid_report');
    }
  });

  it('is all or nothing for arrays and names every invalid index', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(valid, { minLength: 1, maxLength: 30 }),
        fc.uniqueArray(fc.nat({ max: 29 }), { minLength: 1, maxLength: 5 }),
        hostileValue,
        async (reports, spots, bad) => {
          const items: unknown[] = [...reports];
          const invalid = [...new Set(spots.map((s) => s % (items.length + 1)))].sort(
            (a, b) => a - b,
          );
          // An item that cannot be a report: a hostile value, or a report with no model.
          for (const at of invalid)
            items.splice(
              at,
              0,
              typeof bad === 'object' && bad !== null && !Array.isArray(bad)
                ? { ...bad, model: 7 }
                : bad,
            );
          const expected = items.flatMap((item, i) => (reports.includes(item as never) ? [] : [i]));
          const { status, body } = await expectHandled(JSON.stringify(items));
          expect(status).toBe(400);
          expect(body['invalid_indexes']).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('answers malformed bytes and invalid UTF-8 with 400 or a 200 the contract allows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const { status } = await expectHandled(Buffer.from(bytes));
        expect([200, 400]).toContain(status);
      }),
      { numRuns: NUM_RUNS },
    );
    // Invalid UTF-8 inside a string: decoded with replacement characters, never a crash.
    const bytes = Buffer.concat([
      Buffer.from('{"model":"q'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('","report_id":"utf8-1"}'),
    ]);
    const { status } = await expectHandled(bytes);
    expect([200, 400]).toContain(status);
  });

  it('answers any content type other than JSON with 415 (or 400), never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(
            'text/plain',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'application/xml',
            'application/json-patch+json',
            '',
          ),
          fc.string({
            unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
            maxLength: 40,
          }),
        ),
        async (contentType) => {
          const { status } = await expectHandled('{"model":"m"}', contentType);
          if (!contentType.toLowerCase().startsWith('application/json'))
            expect([400, 415]).toContain(status);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses deep nesting, very long strings and bodies over the limit', async () => {
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect((await expectHandled(deep(20_000))).status).toBe(400);
    const deepObject = `{"model":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`;
    expect((await expectHandled(deepObject)).status).toBe(400);
    const longModel = JSON.stringify({ model: 'm'.repeat(60_000) });
    expect((await expectHandled(longModel)).status).toBe(400);
    const over = JSON.stringify({ model: 'm', pad: 'x'.repeat(BODY_LIMIT) });
    expect((await expectHandled(over)).status).toBe(413);
  });

  it('stays up and answers a valid report over a real socket afterwards', async () => {
    const response = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
      body: JSON.stringify({ model: 'qwen3-8b', report_id: 'after-fuzz' }),
    });
    expect(response.status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // Hundreds of refused requests left a handful of warn lines, never a token or payload.
    const warnings = logLines.filter((l) => (JSON.parse(l) as { level: number }).level >= 40);
    expect(warnings.length).toBeLessThanOrEqual(6);
    expect(logLines.join('\n')).not.toContain(TOKEN);
  });
});
