// Hostile input at the HTTP ingest, property-based (fast-check), with an oracle. Reports
// are generated valid field by field from the contract's shape, then single fields are
// mutated into values that are invalid by construction (negative, fractional, huge, over
// the ceiling, wrong type, empty, too long, NUL…), so both the 200 and the 400 path get
// volume. Every answer is checked three ways: against the construction (a valid report is
// accepted, an invalid one refused naming its field), against the contract's own parse of
// the same bytes (accepted ⇔ parseReport succeeds), and against Redis (an accepted report
// is enqueued exactly as parsed, a refused request enqueues nothing). Random JSON, random
// bytes, odd content types and deep nesting ride along; the server never answers 5xx.
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { streamKey } from '../../src/contract/keys.js';
import {
  MAX_ENTITY_ID,
  MAX_REPORT_ID_LENGTH,
  MAX_STRING_LENGTH,
  parseReport,
  reportSchema,
  type UsageReport,
} from '../../src/contract/report.js';
import { UsageProducer } from '../../src/producer/index.js';
import { DEFAULT_INGEST_LIMITS } from '../../src/producer/ingest-limits.js';
import {
  buildIngestServer,
  INGEST_PATH,
  MAX_REPORTS_PER_REQUEST,
  TOKEN_HEADER,
  type IngestServer,
} from '../../src/producer/server.js';
import {
  FIELD_KINDS,
  MAX_UNIX_MILLI,
  blankModel,
  validField,
  validReport,
  type FieldKind,
} from '../support/reports.js';
import { createTestRedis, deleteKeys, type TestRedis } from '../support/services.js';

const TOKEN = 'fuzz-token-2b7e';
const PARTITIONS = 4;
const BODY_LIMIT = 64 * 1024;
const NUM_RUNS = 120;

let r: TestRedis;
let producer: UsageProducer;
let server: IngestServer;
let base: string;
const logLines: string[] = [];
/** How many cases ended in each status, so the test can prove both paths got volume. */
const statuses = new Map<number, number>();
let startedAt = 0;

beforeAll(async () => {
  startedAt = performance.now();
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
beforeEach(() => statuses.clear());

// ---- the construction: valid values per field (test/support/reports.ts), and here the
// values each field must refuse

type Gen = fc.Arbitrary<unknown>;
interface FieldSpec {
  /** Values the contract must refuse in this field. */
  invalid: Gen;
  /** Values whose fate only the contract's parse decides (oracle-only). */
  either?: Gen;
}

/** Values a field of kind `spec` must refuse (and for model, the blank ones left to the contract). */
function invalidSpec(spec: FieldKind): FieldSpec {
  switch (spec.kind) {
    case 'report_id':
      return {
        invalid: fc.constantFrom(
          '',
          'has space',
          'x'.repeat(MAX_REPORT_ID_LENGTH + 1),
          'é',
          5,
          null,
        ),
      };
    case 'model':
      return {
        invalid: fc.constantFrom(
          42,
          null,
          true,
          [],
          {},
          'x'.repeat(MAX_STRING_LENGTH + 1),
          'a\u0000b',
        ),
        // Blank models are the contract's call (it may let them through to a worker rejection).
        either: blankModel,
      };
    case 'count':
      return {
        invalid: fc.oneof(
          fc.constantFrom(-1, 1.5, 0.1, spec.max + 1, 2 ** 53 - 1, 2 ** 53, 1e308, -1e308, 1e21),
          fc.constantFrom('12', 'NaN', true, null, [], {}, [1]),
          fc.integer({ min: -(2 ** 31), max: -1 }),
          fc.integer({ min: spec.max + 1, max: Number.MAX_SAFE_INTEGER }),
          fc.double({ min: 0, max: spec.max, noInteger: true, noNaN: true }),
        ),
      };
    case 'boolean':
      return { invalid: fc.constantFrom('yes', 'true', 1, 0, null, []) };
    case 'instant':
      return {
        invalid: fc.oneof(
          fc.constantFrom(MAX_UNIX_MILLI + 1, 1.5, 'yesterday', true, 1e308, '1764150000000'),
          fc.integer({ min: MAX_UNIX_MILLI + 1, max: Number.MAX_SAFE_INTEGER }),
        ),
      };
    case 'entity_id':
      return {
        invalid: fc.oneof(
          fc.constantFrom(-1, MAX_ENTITY_ID + 1, 0.5, '3', true, {}, []),
          fc.integer({ min: MAX_ENTITY_ID + 1, max: Number.MAX_SAFE_INTEGER }),
        ),
      };
    case 'text':
      return {
        invalid: fc.oneof(
          fc.constantFrom('\u0000', 'a\u0000b', 7, true, [], {}),
          fc.string({ minLength: MAX_STRING_LENGTH + 1, maxLength: 600 }),
        ),
      };
    case 'operation':
      return { invalid: fc.constantFrom('chat', 'CHAT_COMPLETION', '', 3, true, ['embedding']) };
  }
}

const FIELDS: Record<string, FieldSpec> = Object.fromEntries(
  Object.entries(FIELD_KINDS).map(([field, spec]) => [field, invalidSpec(spec)]),
);
const REQUIRED = new Set(['model']);

type Case =
  | { kind: 'valid'; report: Record<string, unknown> }
  | { kind: 'invalid'; report: Record<string, unknown>; field: string }
  | { kind: 'either'; report: Record<string, unknown>; field: string };

const fieldName = fc.constantFrom(...Object.keys(FIELDS));
/** A valid report with one field made invalid by construction (or, for model, dropped). */
const invalidReport: fc.Arbitrary<Case> = fc
  .tuple(validReport, fieldName, fc.boolean())
  .chain(([report, field, drop]) => {
    const spec = FIELDS[field] as FieldSpec;
    if (drop && REQUIRED.has(field)) {
      const rest = Object.fromEntries(Object.entries(report).filter(([key]) => key !== field));
      return fc.constant<Case>({ kind: 'invalid', report: rest, field });
    }
    return spec.invalid.map<Case>((value) => ({
      kind: 'invalid',
      report: { ...report, [field]: value },
      field,
    }));
  });
const eitherReport: fc.Arbitrary<Case> = fc
  .tuple(validReport, fc.constantFrom(...Object.keys(FIELDS).filter((f) => FIELDS[f]?.either)))
  .chain(([report, field]) =>
    (FIELDS[field]?.either as Gen).map<Case>((value) => ({
      kind: 'either',
      report: { ...report, [field]: value },
      field,
    })),
  );
const anyCase: fc.Arbitrary<Case> = fc.oneof(
  validReport.map<Case>((report) => ({ kind: 'valid', report })),
  invalidReport,
  eitherReport,
);

// ---- the oracle: what the server must answer for the bytes it was sent

/** True when arrays/objects nest more than `max` deep; stops descending past `max`. */
function deeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (max === 0) return true;
  return Object.values(value).some((child) => deeperThan(child, max - 1));
}

type Expected = { status: 200; reports: UsageReport[] } | { status: 400 | 413 };

/** The answer the contract and the documented limits call for, from the raw body alone. */
function expectedFor(body: string): Expected {
  if (Buffer.byteLength(body) > BODY_LIMIT) return { status: 413 };
  let wire: unknown;
  try {
    wire = JSON.parse(body);
  } catch {
    return { status: 400 };
  }
  if (deeperThan(wire, DEFAULT_INGEST_LIMITS.maxJsonDepth)) return { status: 400 };
  const items = Array.isArray(wire) ? wire : [wire];
  if (Array.isArray(wire) && (wire.length === 0 || wire.length > MAX_REPORTS_PER_REQUEST))
    return { status: 400 };
  const reports: UsageReport[] = [];
  for (const item of items) {
    const parsed = parseReport(item);
    if (!parsed.ok) return { status: 400 };
    reports.push(parsed.report);
  }
  return { status: 200, reports };
}

async function streamEntries(): Promise<Record<string, unknown>[]> {
  const entries: Record<string, unknown>[] = [];
  for (let p = 0; p < PARTITIONS; p += 1) {
    for (const [, fields] of await r.redis.xrange(streamKey(r.prefix, p), '-', '+')) {
      entries.push(JSON.parse(fields[1] ?? 'null') as Record<string, unknown>);
    }
  }
  return entries;
}

/** Sends through the full fastify pipeline (parsers, hooks) without a socket per run. */
async function inject(payload: string | Buffer, contentType = 'application/json') {
  const response = await server.inject({
    method: 'POST',
    url: INGEST_PATH,
    headers: { 'content-type': contentType, [TOKEN_HEADER]: TOKEN },
    payload,
  });
  statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
  return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
}

/**
 * Sends `payload` and checks the answer against the oracle: the status it calls for, and
 * Redis holding exactly the parsed reports (with their ids) on a 200, nothing otherwise.
 */
async function expectOracle(payload: string | Buffer, contentType?: string) {
  await deleteKeys(r.redis, `${r.prefix}:*`);
  const { status, body } = await inject(payload, contentType);
  expect(status, JSON.stringify(body)).toBeLessThan(500);
  const entries = await streamEntries();
  if (status !== 200) {
    expect(entries).toEqual([]);
    expect(typeof body['error']).toBe('string');
  }
  if (contentType === undefined || contentType === 'application/json') {
    const expected = expectedFor(Buffer.isBuffer(payload) ? payload.toString('utf8') : payload);
    expect(status, JSON.stringify(body)).toBe(expected.status);
    if (expected.status === 200) {
      const ids = body['report_ids'] as string[];
      const enqueued = expected.reports.map(
        (report, i) =>
          JSON.parse(JSON.stringify({ ...report, report_id: ids[i] })) as Record<string, unknown>,
      );
      const byId = (a: Record<string, unknown>, b: Record<string, unknown>) =>
        String(a['report_id']).localeCompare(String(b['report_id']));
      expect([...entries].sort(byId)).toEqual([...enqueued].sort(byId));
      expected.reports.forEach((report, i) => {
        if (report.report_id !== undefined) expect(ids[i]).toBe(report.report_id);
      });
    }
  }
  return { status, body };
}

/** Bodies the server refuses as prototype poisoning; the contract alone would not. */
const unpoisoned = (value: unknown) => !/"(__proto__|constructor)"/.test(JSON.stringify(value));

describe('ingest under hostile input', () => {
  it('has a generator for every field of the contract', () => {
    expect(Object.keys(FIELDS).sort()).toEqual(Object.keys(reportSchema.shape).sort());
    expect(Object.keys(validField).sort()).toEqual(Object.keys(reportSchema.shape).sort());
  });

  it('accepts every valid report, refuses every invalid one naming its field, and enqueues exactly what the contract parsed', async () => {
    await fc.assert(
      fc.asyncProperty(anyCase, async (c) => {
        const { status, body } = await expectOracle(JSON.stringify(c.report));
        if (c.kind === 'valid') expect(status, JSON.stringify(body)).toBe(200);
        if (c.kind === 'invalid') {
          expect(status, `${c.field}: ${JSON.stringify(c.report[c.field])}`).toBe(400);
          expect(body['error']).toBe('invalid_report');
          const paths = (body['problems'] as { path: string }[]).map((p) => p.path);
          expect(paths).toContain(c.field);
        }
      }),
      { numRuns: 1_000 },
    );
    // Both paths got volume, not a trickle of lucky 200s among random JSON.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(150);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(150);
  });

  it('is all or nothing for arrays: names every invalid index, or enqueues every report as parsed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(validReport, { minLength: 1, maxLength: 20 }),
        fc.array(fc.tuple(fc.nat({ max: 40 }), invalidReport), { maxLength: 3 }),
        async (reports, bad) => {
          const items: unknown[] = [...reports];
          for (const [at, c] of bad) items.splice(at % (items.length + 1), 0, c.report);
          const invalid = items.flatMap((item, i) =>
            reports.includes(item as Record<string, unknown>) ? [] : [i],
          );
          const { status, body } = await expectOracle(JSON.stringify(items));
          if (invalid.length === 0) {
            expect(status).toBe(200);
            expect(body['accepted']).toBe(items.length);
          } else {
            expect(status).toBe(400);
            expect(body['invalid_indexes']).toEqual(invalid);
          }
        },
      ),
      { numRuns: 150 },
    );
    expect(statuses.get(200) ?? 0).toBeGreaterThan(20);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(20);
  });

  it('answers random JSON values as the contract does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 6 }).filter(unpoisoned), async (value) => {
        await expectOracle(JSON.stringify(value));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('keeps unsafe integers written as JSON numbers out (beyond 2^53, huge, negative)', async () => {
    for (const literal of [
      '9007199254740993',
      '9007199254740991',
      '1000000001',
      '1e400',
      '-1',
      '123456789012345678901234567890',
      '-0.0000001',
    ]) {
      const { status, body } = await expectOracle(`{"model":"m","input_token":${literal}}`);
      expect(status, literal).toBe(400);
      expect(body['error']).toBe('invalid_report');
    }
  });

  it('answers malformed bytes and invalid UTF-8 as the contract does, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const { status } = await expectOracle(Buffer.from(bytes));
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
    expect((await expectOracle(bytes)).status).toBe(200);
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
          const { status } = await expectOracle('{"model":"m"}', contentType);
          if (!contentType.toLowerCase().startsWith('application/json'))
            expect([400, 415]).toContain(status);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses deep nesting, very long strings and bodies over the limit', async () => {
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect((await expectOracle(deep(20_000))).body['error']).toBe('json_too_deep');
    const deepObject = `{"model":"m","x":${'{"a":'.repeat(50)}1${'}'.repeat(50)}}`;
    expect((await expectOracle(deepObject)).body['error']).toBe('json_too_deep');
    const longModel = JSON.stringify({ model: 'm'.repeat(60_000) });
    expect((await expectOracle(longModel)).status).toBe(400);
    const over = JSON.stringify({ model: 'm', pad: 'x'.repeat(BODY_LIMIT) });
    expect((await expectOracle(over)).status).toBe(413);
  });

  it('stays up and answers a valid report over a real socket afterwards', async () => {
    const response = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
      body: JSON.stringify({ model: 'qwen3-8b', report_id: 'after-fuzz' }),
    });
    expect(response.status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // Hundreds of refused requests left at most one warn line per status per 10 s (the
    // throttle's interval) over the run, never a token or payload.
    const entries = logLines.map((l) => JSON.parse(l) as { level: number; statusCode?: number });
    const warnings = entries.filter((e) => e.level >= 40);
    const refusedStatuses = new Set(warnings.map((e) => e.statusCode)).size;
    const intervals = Math.ceil((performance.now() - startedAt) / 10_000);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.length).toBeLessThanOrEqual(refusedStatuses * intervals);
    expect(logLines.join('\n')).not.toContain(TOKEN);
  });
});
