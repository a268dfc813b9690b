// Generated usage reports that the contract (src/contract/report.ts) accepts, one
// generator per field and a report made of them, for property-based tests: the ingest
// fuzz test and the compiled-check test draw from the same values. Values lean towards
// edges (0, ceilings and their neighbours, astral and lone-surrogate text, padded models).
// Must generate only valid values: invalid ones belong to the test that mutates a field.
import fc from 'fast-check';
import {
  MAX_ENTITY_ID,
  MAX_OUTPUT_CHUNK_COUNT,
  MAX_REPORT_ID_LENGTH,
  MAX_REQUEST_CONTENT_BYTES,
  MAX_REQUEST_COUNT,
  MAX_STRING_LENGTH,
  MAX_TOKEN_COUNT,
  OPERATIONS,
  type reportSchema,
} from '../../src/contract/report.js';

/** The largest instant the contract accepts (milliseconds since 1970). */
export const MAX_UNIX_MILLI = 8.64e15;

type Field = keyof typeof reportSchema.shape;

/** Integers from 0 to `max`, weighted towards 0, the ceiling and their neighbours. */
const countUpTo = (max: number) =>
  fc.oneof(fc.constantFrom(0, 1, max - 1, max), fc.integer({ min: 0, max }));

/** Text of every kind the checks might measure differently (astral, binary, whitespace), without NUL. */
const text = (max: number) =>
  fc
    .oneof(
      fc.string({ maxLength: 40 }),
      fc.string({ maxLength: 40, unit: 'grapheme' }),
      fc.string({ maxLength: 40, unit: 'binary' }),
      fc.string({ minLength: max - 2, maxLength: max, unit: 'grapheme-ascii' }),
    )
    .filter((s) => !s.includes('\u0000') && s.length <= max);

const entityId = fc.oneof(fc.constant(null), countUpTo(MAX_ENTITY_ID));
const optionalText = fc.oneof(fc.constant(null), text(MAX_STRING_LENGTH));
/** Null, 0 and negatives mean "not reported"; up to the ceiling otherwise. */
const unixMilli = fc.oneof(
  fc.constantFrom(null, 0, -1, -5, MAX_UNIX_MILLI),
  fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
  fc.integer({ min: 1, max: 2 ** 45 }),
  fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: MAX_UNIX_MILLI }),
);

/** Models with a non-blank name; `blankModel` has the blank ones. */
const model = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'qwen3-8b',
      'gpt-4o',
      'm'.repeat(MAX_STRING_LENGTH),
      '  padded  ',
      'lone\ud800',
    ),
  },
  { weight: 4, arbitrary: text(MAX_STRING_LENGTH).filter((s) => s.trim().length > 0) },
);

/** Blank model names: accepted by the contract (the worker rejects them as empty_model). */
export const blankModel = fc.constantFrom('', ' ', '   ', '\t');

/** What a field holds; a test builds its own invalid values per kind from this table too. */
export type FieldKind =
  | { kind: 'report_id' }
  | { kind: 'model' }
  | { kind: 'count'; max: number }
  | { kind: 'boolean' }
  | { kind: 'instant' }
  | { kind: 'entity_id' }
  | { kind: 'text' }
  | { kind: 'operation' };

const tokens = { kind: 'count', max: MAX_TOKEN_COUNT } as const;
const entity = { kind: 'entity_id' } as const;
const instant = { kind: 'instant' } as const;
const optional = { kind: 'text' } as const;

/** Every field of the contract and what it holds. */
export const FIELD_KINDS: Record<Field, FieldKind> = {
  report_id: { kind: 'report_id' },
  model: { kind: 'model' },
  input_token: tokens,
  output_token: tokens,
  total_token: tokens,
  input_cached_token: tokens,
  request_count: { kind: 'count', max: MAX_REQUEST_COUNT },
  completed: { kind: 'boolean' },
  output_chunk_count: { kind: 'count', max: MAX_OUTPUT_CHUNK_COUNT },
  request_content_bytes: { kind: 'count', max: MAX_REQUEST_CONTENT_BYTES },
  started_at: instant,
  completed_at: instant,
  user_id: entity,
  model_id: entity,
  model_route_id: entity,
  cluster_id: entity,
  provider_id: entity,
  provider_name: optional,
  provider_type: optional,
  access_key: optional,
  operation: { kind: 'operation' },
  organization_id: optional,
};

const reportId = fc.oneof(
  fc.uuid(),
  fc.string({
    unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength: 1,
    maxLength: MAX_REPORT_ID_LENGTH,
  }),
);

/** Valid values of a field of kind `spec`. */
export function validValue(spec: FieldKind): fc.Arbitrary<unknown> {
  switch (spec.kind) {
    case 'report_id':
      return reportId;
    case 'model':
      return model;
    case 'count':
      return countUpTo(spec.max);
    case 'boolean':
      return fc.boolean();
    case 'instant':
      return unixMilli;
    case 'entity_id':
      return entityId;
    case 'text':
      return optionalText;
    case 'operation':
      return fc.constantFrom(null, ...OPERATIONS, 'audio_transcription');
  }
}

/** One generator of valid values per field of the contract. */
export const validField = Object.fromEntries(
  Object.entries(FIELD_KINDS).map(([field, spec]) => [field, validValue(spec)]),
) as Record<Field, fc.Arbitrary<unknown>>;

/** A valid report with a non-blank model: model always, every other field present or absent. */
export const validReport: fc.Arbitrary<Record<string, unknown>> = fc.record(validField, {
  requiredKeys: ['model'],
});
