// The compiled report check (src/contract/compile.ts) against zod, the contract itself:
// over generated valid reports and reports with one field mutated, whatever the compiled
// check accepts zod accepts with the same output, and parseReport answers exactly as zod.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compileObject } from '../../src/contract/compile.js';
import {
  MAX_ENTITY_ID,
  MAX_REPORT_ID_LENGTH,
  MAX_REQUEST_CONTENT_BYTES,
  MAX_REQUEST_COUNT,
  MAX_STRING_LENGTH,
  MAX_TOKEN_COUNT,
  parseReport,
  reportSchema,
  toProblems,
} from '../../src/contract/report.js';
import { MAX_UNIX_MILLI, blankModel, validReport } from '../support/reports.js';

const compiled = compileObject(reportSchema);

const TEXTS = ['provider_name', 'provider_type', 'access_key'] as const;

/** Valid reports (test/support/reports.ts), blank models among them. */
const anyValidReport = fc.oneof(
  { weight: 19, arbitrary: validReport },
  {
    weight: 1,
    arbitrary: fc
      .tuple(validReport, blankModel)
      .map(([report, model]): Record<string, unknown> => ({ ...report, model })),
  },
);

/** Values a single field may be mutated to: other types, off-by-one ceilings, bad text. */
const mutant = fc.oneof(
  fc.constantFrom(
    undefined,
    null,
    true,
    '',
    ' ',
    '1',
    -1,
    -0,
    0.5,
    1.5,
    NaN,
    Infinity,
    -Infinity,
    2 ** 31,
    2 ** 53,
    MAX_TOKEN_COUNT + 1,
    MAX_REQUEST_COUNT + 1,
    MAX_REQUEST_CONTENT_BYTES + 1,
    MAX_ENTITY_ID + 1,
    MAX_UNIX_MILLI + 1,
    'a\u0000b',
    '\u0000',
    ' padded ',
    'with space',
    '😀'.repeat(MAX_STRING_LENGTH),
    '😀'.repeat(MAX_STRING_LENGTH + 1),
    '\ud800'.repeat(MAX_STRING_LENGTH + 1),
    'x'.repeat(MAX_STRING_LENGTH),
    'x'.repeat(MAX_STRING_LENGTH + 1),
    ` ${'x'.repeat(MAX_STRING_LENGTH)} `,
    'y'.repeat(MAX_REPORT_ID_LENGTH + 1),
    'audio_transcription',
    'AUDIO_SPEECH',
    [],
    {},
  ),
  fc.string({ maxLength: 20, unit: 'binary' }),
  fc.integer(),
  fc.double(),
);

const FIELDS = Object.keys(reportSchema.shape);
const mutatedReport = fc
  .tuple(anyValidReport, fc.constantFrom(...FIELDS, 'unknown_key'), mutant)
  .map(([report, field, value]): Record<string, unknown> => ({ ...report, [field]: value }));

/** The compiled check vouches only for what zod accepts, with zod's exact output. */
function agrees(input: unknown): boolean {
  const zod = reportSchema.safeParse(input);
  const fast = compiled.tryParse(input);
  if (fast !== undefined) {
    expect(zod.success).toBe(true);
    expect(fast).toStrictEqual(zod.data);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(zod.data));
  }
  const viaContract = parseReport(input);
  if (zod.success) expect(viaContract).toStrictEqual({ ok: true, report: zod.data });
  else expect(viaContract).toStrictEqual({ ok: false, problems: toProblems(zod.error) });
  return fast !== undefined;
}

describe('compiled report check', () => {
  it('accepts generated valid reports exactly as zod does, taking the fast path', () => {
    let fast = 0;
    let total = 0;
    fc.assert(
      fc.property(anyValidReport, (report) => {
        total += 1;
        if (agrees(report)) fast += 1;
      }),
      { numRuns: 3_000 },
    );
    // Only padded models (trimmed by zod before its length check) may need zod.
    expect(fast / total).toBeGreaterThan(0.9);
  });

  it('agrees with zod on reports with one field mutated', () => {
    fc.assert(
      fc.property(mutatedReport, (report) => void agrees(report)),
      { numRuns: 10_000 },
    );
  });

  it('agrees with zod on values that are not reports', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => void agrees(value)),
      { numRuns: 2_000 },
    );
  });

  it('leaves the NUL refinement, which JSON Schema cannot express, to zod', () => {
    for (const field of ['model', ...TEXTS]) {
      const input = { model: 'm', [field]: 'a\u0000b' };
      expect(compiled.tryParse(input)).toBeUndefined();
      expect(parseReport(input)).toEqual({
        ok: false,
        problems: [{ path: field, message: 'must not contain NUL characters' }],
      });
    }
  });

  it('measures lengths in code points, as zod does', () => {
    const fits = '😀'.repeat(MAX_STRING_LENGTH); // 255 code points, 510 UTF-16 units
    expect(compiled.tryParse({ model: fits })).toStrictEqual(reportSchema.parse({ model: fits }));
    const tooLong = '😀'.repeat(MAX_STRING_LENGTH + 1);
    expect(compiled.tryParse({ model: tooLong })).toBeUndefined();
    expect(parseReport({ model: tooLong }).ok).toBe(false);
  });

  it('trims the model and applies defaults and transforms like zod', () => {
    const input = {
      model: ' m ',
      started_at: 0,
      completed_at: -3,
      operation: 'audio_transcription',
    };
    expect(compiled.tryParse(input)).toStrictEqual(reportSchema.parse(input));
  });

  it('refuses at compile time what it cannot compile', () => {
    expect(() => compileObject(z.object({ tags: z.array(z.string()) }))).toThrow(/array/);
    expect(() =>
      compileObject(
        z.object({
          n: z
            .int()
            .transform((v) => v + 1)
            .default(0),
        }),
      ),
    ).toThrow();
  });

  it('runs a refinement on a non-string field and defers to zod when it fails', () => {
    const even = compileObject(z.object({ n: z.int().refine((v) => v % 2 === 0, 'odd') }));
    expect(even.tryParse({ n: 2 })).toEqual({ n: 2 });
    expect(even.tryParse({ n: 3 })).toBeUndefined();
  });
});
