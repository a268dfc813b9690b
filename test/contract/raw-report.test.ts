// Raw reports (a stream entry, a rejection row's text) are parsed in one place: the
// worker's page parser and the replay tool both rely on these verdicts.
import { describe, expect, it } from 'vitest';
import { MAX_REPORT_ID_LENGTH, parseRawReport } from '../../src/contract/report.js';

const json = (v: unknown) => JSON.stringify(v);

describe('parseRawReport', () => {
  it('parses a valid report with the contract defaults applied', () => {
    const result = parseRawReport(json({ report_id: 'a-1', model: 'qwen3-8b', input_token: 5 }));
    expect(result).toMatchObject({
      ok: true,
      report: { report_id: 'a-1', model: 'qwen3-8b', input_token: 5, request_count: 1 },
    });
  });

  it.each(['', '{not json', 'undefined'])('says %j is not JSON', (raw) => {
    expect(parseRawReport(raw)).toEqual({ ok: false, problem: 'not_json' });
  });

  it('lists every problem of an invalid report, with the id it carries', () => {
    const result = parseRawReport(json({ report_id: 'bad-1', model: 42, input_token: -1 }));
    expect(result).toMatchObject({ ok: false, problem: 'invalid', reportId: 'bad-1' });
    if (result.ok || result.problem !== 'invalid') throw new Error('expected invalid');
    expect(result.message).toMatch(/model: .*expected string/);
    expect(result.message).toContain('; input_token: ');
  });

  it.each([
    ['a number', 42],
    ['empty', ''],
    ['too long', 'x'.repeat(MAX_REPORT_ID_LENGTH + 1)],
    ['holding NUL', 'a\u0000b'],
  ])('gives no id when the report_id is %s', (_name, id) => {
    expect(parseRawReport(json({ report_id: id, model: 42 }))).toMatchObject({
      ok: false,
      problem: 'invalid',
      reportId: undefined,
    });
  });

  it('keeps an id of exactly the longest length', () => {
    const id = 'x'.repeat(MAX_REPORT_ID_LENGTH);
    expect(parseRawReport(json({ report_id: id, model: 42 }))).toMatchObject({ reportId: id });
  });

  it('gives no id for JSON that is not an object', () => {
    expect(parseRawReport('[1,2]')).toMatchObject({
      ok: false,
      problem: 'invalid',
      reportId: undefined,
    });
  });
});
