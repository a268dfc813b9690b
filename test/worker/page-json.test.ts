// pageJson: the page's audit rows as one JSON document PostgreSQL's json type accepts.
import { describe, expect, it } from 'vitest';
import type { AuditRow } from '../../src/worker/core/resolve.js';
import { pageJson } from '../../src/worker/writer.js';

const row = (reportId: string) => ({ reportId }) as unknown as AuditRow;

describe('pageJson', () => {
  it('writes lone surrogates as U+FFFD and keeps pairs and escaped backslashes', () => {
    const json = pageJson([row('a\ud800b'), row('\udc00'), row('ok😀'), row('\\ud800')]);
    expect(JSON.parse(json)).toEqual([
      { reportId: 'a\ufffdb' },
      { reportId: '\ufffd' },
      { reportId: 'ok😀' },
      { reportId: '\\ud800' },
    ]);
  });

  it('is plain JSON.stringify otherwise', () => {
    expect(pageJson([row('r-1')])).toBe(JSON.stringify([row('r-1')]));
  });
});
