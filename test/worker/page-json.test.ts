// pageJson: the page's audit rows as one JSON document PostgreSQL's jsonb type accepts, each
// row the array of its values (report_id first).
import { describe, expect, it } from 'vitest';
import type { AuditRow } from '../../src/worker/core/resolve.js';
import {
  PAGE_KEYS,
  pageJson,
  pageRow,
  pageRowValues,
  pageRows,
  pageRowsOf,
  rowReportId,
} from '../../src/worker/writer.js';

const row = (reportId: string) => ({ reportId }) as unknown as AuditRow;

describe('pageJson', () => {
  it('writes lone surrogates as U+FFFD and keeps pairs and escaped backslashes', () => {
    const json = pageJson([row('a\ud800b'), row('\udc00'), row('ok😀'), row('\\ud800')]);
    expect((JSON.parse(json) as unknown[][]).map((values) => values[0])).toEqual([
      'a\ufffdb',
      '\ufffd',
      'ok😀',
      '\\ud800',
    ]);
  });

  it('writes each row as the array of its 30 values, report_id first', () => {
    const [values] = JSON.parse(pageJson([row('r-1')])) as unknown[][];
    expect(values).toHaveLength(30);
    expect(values?.[0]).toBe('r-1');
    expect(values?.slice(1).every((v) => v === null)).toBe(true);
  });

  it('writes every field, in the order the commit reads the columns', () => {
    const named = Object.fromEntries(PAGE_KEYS.map((key) => [key, key])) as unknown as AuditRow;
    expect(pageRow(named)).toEqual(PAGE_KEYS);
  });
});

describe('pageRows', () => {
  it('sorts the rows by report_id, so concurrent commits lock in one order', () => {
    const page = pageRows([row('r-3'), row('r-1'), row('r-2')]);
    expect(page.count).toBe(3);
    expect(pageRowValues(page).map(rowReportId)).toEqual(['r-1', 'r-2', 'r-3']);
  });

  it('reads back rows that make a page of the same rows again, as isolation splits them', () => {
    const page = pageRows([row('r-2'), row('a\ud800'), row('r-1')]);
    const values = pageRowValues(page);
    expect(values.map(rowReportId)).toEqual(['a\ufffd', 'r-1', 'r-2']);
    const again = pageRowsOf(values.slice(1));
    expect(again.count).toBe(2);
    expect(pageRowValues(again)).toEqual(pageRowValues(pageRows([row('r-1'), row('r-2')])));
  });
});
