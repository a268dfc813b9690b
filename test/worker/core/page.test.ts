// A page of stream entries → parsed reports and rejections, then audit rows: poison
// entries are rejected with a usable id and a storable raw text, order is kept.
import { describe, expect, it } from 'vitest';
import type { StreamEntry } from '../../../src/contract/keys.js';
import type { Entities } from '../../../src/worker/core/entities.js';
import { MAX_RAW_LENGTH, parseEntries, resolveEntries } from '../../../src/worker/core/page.js';

const T = Date.UTC(2026, 10, 26, 12, 0, 0);
const json = (v: unknown) => JSON.stringify(v);

function entry(payload: string | undefined, ms = T, seq = 0): StreamEntry {
  return { id: `${ms}-${seq}`, payload };
}

describe('parseEntries', () => {
  it('parses good entries with their stream time and keeps the raw text', () => {
    const raw = json({ report_id: 'a', model: 'qwen3-8b', model_id: 1, input_token: 5 });
    const { parsed, rejected } = parseEntries([entry(raw, T, 3)], 0);
    expect(rejected).toEqual([]);
    expect(parsed).toHaveLength(1);
    expect(parsed[0]).toMatchObject({ entryId: `${T}-3`, acceptedAt: T, raw });
    expect(parsed[0]?.report).toMatchObject({ report_id: 'a', model_id: 1, input_token: 5 });
  });

  it.each([
    { name: 'not JSON', payload: '{not json', message: 'entry is not JSON' },
    { name: 'empty', payload: '', message: 'entry is not JSON' },
    { name: 'without a report field', payload: undefined, message: 'entry is not JSON' },
  ])('rejects an entry that is $name, named after its stream position', ({ payload, message }) => {
    const { parsed, rejected } = parseEntries([entry(payload, T, 7)], 2);
    expect(parsed).toEqual([]);
    expect(rejected).toEqual([
      { reportId: `stream:2:${T}-7`, reason: 'invalid_report', message, raw: payload ?? '' },
    ]);
  });

  it('rejects a contract failure under its own report_id, listing every problem', () => {
    const raw = json({ report_id: 'bad-1', model: 42, input_token: -1 });
    const { rejected } = parseEntries([entry(raw)], 0);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ reportId: 'bad-1', reason: 'invalid_report', raw });
    expect(rejected[0]?.message).toMatch(/model: .*expected string/);
    expect(rejected[0]?.message).toContain('input_token: ');
  });

  it.each([
    { name: 'a number', id: 42 },
    { name: 'empty', id: '' },
    { name: 'too long', id: 'x'.repeat(129) },
    { name: 'holding NUL', id: 'a\u0000b' },
  ])('names a contract failure whose report_id is $name after its stream position', ({ id }) => {
    const raw = json({ report_id: id, model: 42 });
    const { rejected } = parseEntries([entry(raw, T, 1)], 3);
    expect(rejected[0]).toMatchObject({ reportId: `stream:3:${T}-1`, reason: 'invalid_report' });
  });

  it.each([
    { name: 'an array', payload: '[1,2]' },
    { name: 'null', payload: 'null' },
    { name: 'a string', payload: '"hello"' },
  ])('rejects JSON that is $name as a contract failure', ({ payload }) => {
    const { rejected } = parseEntries([entry(payload, T, 4)], 0);
    expect(rejected[0]).toMatchObject({
      reportId: `stream:0:${T}-4`,
      reason: 'invalid_report',
      raw: payload,
    });
    expect(rejected[0]?.message).toMatch(/^\(report\): /);
  });

  it('rejects a valid report without a report_id', () => {
    const raw = json({ model: 'qwen3-8b', model_id: 1 });
    const { parsed, rejected } = parseEntries([entry(raw, T, 9)], 1);
    expect(parsed).toEqual([]);
    expect(rejected).toEqual([
      {
        reportId: `stream:1:${T}-9`,
        reason: 'invalid_report',
        message: 'report_id: missing',
        raw,
      },
    ]);
  });

  it.each([
    { field: 'access_key', value: 'ak\u0000x' },
    { field: 'provider_name', value: 'p\u0000' },
    { field: 'provider_type', value: '\u0000' },
  ])('rejects a report with NUL in $field (PostgreSQL text cannot hold it)', ({ field, value }) => {
    const raw = json({ report_id: 'n1', model: 'm', model_id: 1, [field]: value });
    const { parsed, rejected } = parseEntries([entry(raw)], 0);
    expect(parsed).toEqual([]);
    expect(rejected).toEqual([
      {
        reportId: 'n1',
        reason: 'invalid_report',
        message: `${field}: must not contain NUL characters`,
        raw,
      },
    ]);
  });

  it.each(['model_id', 'provider_id', 'user_id', 'model_route_id', 'cluster_id'])(
    'rejects a report whose %s does not fit an integer column',
    (field) => {
      const raw = json({ report_id: 'big', model: 'm', model_id: 1, [field]: 2_147_483_648 });
      const { parsed, rejected } = parseEntries([entry(raw)], 0);
      expect(parsed).toEqual([]);
      expect(rejected).toHaveLength(1);
      expect(rejected[0]).toMatchObject({ reportId: 'big', reason: 'invalid_report', raw });
      expect(rejected[0]?.message).toMatch(new RegExp(`^${field}: `));
    },
  );

  it('accepts the largest id an integer column holds', () => {
    const raw = json({ report_id: 'max', model: 'm', model_id: 2_147_483_647, user_id: 0 });
    const { parsed, rejected } = parseEntries([entry(raw)], 0);
    expect(rejected).toEqual([]);
    expect(parsed[0]?.report).toMatchObject({ model_id: 2_147_483_647, user_id: 0 });
  });

  it('escapes NUL characters in the raw text (PostgreSQL text cannot hold them)', () => {
    const { rejected } = parseEntries([entry('{"model":"a\u0000b"')], 0);
    expect(rejected[0]?.raw).toBe('{"model":"a\\u0000b"');
    expect(rejected[0]?.raw).not.toContain('\u0000');
  });

  it('clips a huge raw entry and marks the cut', () => {
    const huge = `{${'x'.repeat(MAX_RAW_LENGTH * 2)}`;
    const { rejected } = parseEntries([entry(huge)], 0);
    expect(rejected[0]?.raw).toHaveLength(MAX_RAW_LENGTH + '…[cut]'.length);
    expect(rejected[0]?.raw.startsWith(huge.slice(0, MAX_RAW_LENGTH))).toBe(true);
    expect(rejected[0]?.raw.endsWith('…[cut]')).toBe(true);
  });

  it('keeps a raw entry of exactly the limit whole', () => {
    const atLimit = `{${'x'.repeat(MAX_RAW_LENGTH - 1)}`;
    const { rejected } = parseEntries([entry(atLimit)], 0);
    expect(rejected[0]?.raw).toBe(atLimit);
  });

  it('preserves stream order in both lists', () => {
    const entries = [
      entry(json({ report_id: 'g1', model: 'm', model_id: 1 }), T, 0),
      entry('nope', T, 1),
      entry(json({ report_id: 'g2', model: 'm', model_id: 1 }), T, 2),
      entry(json({ report_id: 'b1', model: 42 }), T, 3),
      entry(json({ report_id: 'g3', model: 'm', model_id: 1 }), T + 1, 0),
      entry(json({ model: 'm' }), T + 1, 1),
    ];
    const { parsed, rejected } = parseEntries(entries, 0);
    expect(parsed.map((p) => p.report.report_id)).toEqual(['g1', 'g2', 'g3']);
    expect(parsed.map((p) => p.acceptedAt)).toEqual([T, T, T + 1]);
    expect(rejected.map((r) => r.reportId)).toEqual([
      `stream:0:${T}-1`,
      'b1',
      `stream:0:${T + 1}-1`,
    ]);
  });
});

describe('resolveEntries', () => {
  const entities: Entities = {
    models: new Map([
      [
        1,
        {
          id: 1,
          name: 'm',
          clusterId: null,
          clusterName: null,
          categories: [],
          ownerPrincipalId: null,
        },
      ],
    ]),
    providers: new Map(),
    principals: new Map(),
    apiKeys: new Map(),
    routes: new Map(),
  };
  const options = { timeZone: 'UTC', bytesPerInputToken: 4, tokensPerOutputChunk: 1 };

  it('splits rows from rejections in order, dating untimed reports by their stream time', () => {
    const late = Date.UTC(2026, 10, 27, 0, 0, 1);
    const badRaw = json({ report_id: 'b1', model: 'm', model_id: 2 });
    const { parsed } = parseEntries(
      [
        entry(json({ report_id: 'g1', model: 'm', model_id: 1 }), T, 0),
        entry(badRaw, T, 1),
        entry(json({ report_id: 'g2', model: 'm', model_id: 1 }), late, 0),
      ],
      0,
    );
    const { rows, rejected } = resolveEntries(parsed, entities, options);
    expect(rows.map((r) => [r.reportId, r.instant, r.date])).toEqual([
      ['g1', T, '2026-11-26'],
      ['g2', late, '2026-11-27'],
    ]);
    expect(rejected).toEqual([
      { reportId: 'b1', reason: 'unknown_model', message: 'model_id 2 not found', raw: badRaw },
    ]);
  });

  it('clips the raw text of a report rejected by validation', () => {
    const raw = json({ report_id: 'b2', model: 'm', model_id: 2, pad: 'y'.repeat(MAX_RAW_LENGTH) });
    const { parsed } = parseEntries([entry(raw)], 0);
    const { rejected } = resolveEntries(parsed, entities, options);
    expect(rejected[0]?.raw).toHaveLength(MAX_RAW_LENGTH + '…[cut]'.length);
  });
});
