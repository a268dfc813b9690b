// The usage report contract: one zod schema that the producer validates with before
// enqueueing and the worker re-validates with after reading a stream entry.
// JSON keys are GPUStack's gateway keys exactly; unknown keys are dropped, never an error.
import { z } from 'zod';
import { compileObject } from './compile.js';

export const MAX_STRING_LENGTH = 255;
export const MAX_REPORT_ID_LENGTH = 128;
/** Latest instant a JavaScript Date can hold, in UnixMilli. */
const MAX_UNIX_MILLI = 8.64e15;

/** GPUStack's operation values. `audit_transcription` is GPUStack's own spelling. */
export const OPERATIONS = [
  'completion',
  'chat_completion',
  'embedding',
  'rerank',
  'image_generation',
  'audio_speech',
  'audit_transcription',
] as const;
export type Operation = (typeof OPERATIONS)[number];

// PostgreSQL text cannot hold NUL; a report carrying one could never be committed.
const noNul = (v: string) => !v.includes('\u0000');
const NO_NUL = 'must not contain NUL characters';

/**
 * Per-report ceilings: far above what one request can use, far below what a bigint rollup
 * holds. The longest context windows are about 10^7 tokens, so 10^9 tokens per field is
 * 100× that; 9.2 × 10^9 reports at the ceiling would still fit one rollup row (2^63 − 1).
 */
export const MAX_TOKEN_COUNT = 1_000_000_000;
/** A report is one request; a gateway that folds several into one gets generous room. */
export const MAX_REQUEST_COUNT = 1_000_000;
/** Stream chunks carry at least one token each, so the token ceiling bounds them too. */
export const MAX_OUTPUT_CHUNK_COUNT = MAX_TOKEN_COUNT;
/** 4 GB: at the default 4 bytes per token this estimates the token ceiling, no more. */
export const MAX_REQUEST_CONTENT_BYTES = 4_000_000_000;

const count = (fallback: number, max: number) => z.int().min(0).max(max).default(fallback);
/** Entity ids are PostgreSQL integers (GPUStack's schema). */
export const MAX_ENTITY_ID = 2_147_483_647;
const id = z
  .int()
  .min(0)
  .max(MAX_ENTITY_ID)
  .nullish()
  .transform((v) => v ?? null);
const text = z
  .string()
  .max(MAX_STRING_LENGTH)
  .refine(noNul, NO_NUL)
  .nullish()
  .transform((v) => v ?? null);
// Absent, null or <= 0 means "not reported"; GPUStack gateways send 0 for unknown.
const unixMilli = z
  .int()
  .max(MAX_UNIX_MILLI)
  .nullish()
  .transform((v) => (v === null || v === undefined || v <= 0 ? null : v));

const operation = z
  .enum([...OPERATIONS, 'audio_transcription'])
  .nullish()
  // Both spellings land under GPUStack's, so one operation never splits into two rollups.
  .transform((v): Operation | null =>
    v === 'audio_transcription' ? 'audit_transcription' : (v ?? null),
  );

export const reportSchema = z.object({
  report_id: z
    .string()
    .min(1)
    .max(MAX_REPORT_ID_LENGTH)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  // GPUStack's gateway sends "" when neither request nor response names a model, and never
  // retries: such a report is accepted and rejected by the worker as empty_model, so it is
  // kept (and replayable) instead of lost on a 400.
  model: z.string().trim().max(MAX_STRING_LENGTH).refine(noNul, NO_NUL),
  input_token: count(0, MAX_TOKEN_COUNT),
  output_token: count(0, MAX_TOKEN_COUNT),
  total_token: count(0, MAX_TOKEN_COUNT),
  input_cached_token: count(0, MAX_TOKEN_COUNT),
  request_count: count(1, MAX_REQUEST_COUNT),
  completed: z.boolean().default(false),
  output_chunk_count: count(0, MAX_OUTPUT_CHUNK_COUNT),
  request_content_bytes: count(0, MAX_REQUEST_CONTENT_BYTES),
  started_at: unixMilli,
  completed_at: unixMilli,
  user_id: id,
  model_id: id,
  model_route_id: id,
  cluster_id: id,
  provider_id: id,
  provider_name: text,
  provider_type: text,
  access_key: text,
  operation,
  // GPUStack's gateway sends the X-Organization-Id header here. Numeric text names the
  // consuming organization's principal; other text is accepted and ignored, as GPUStack
  // ignores it (src/worker/core/consumer.ts).
  organization_id: text,
});

/** A report as the gateway may send it (defaults not yet applied). */
export type UsageReportInput = z.input<typeof reportSchema>;
/** A validated report with every default applied. */
export type UsageReport = z.output<typeof reportSchema>;
/** A validated report that carries its id, as stored in a stream entry. */
export type StoredReport = UsageReport & { report_id: string };

export interface ReportProblem {
  /** Dotted path of the offending field, e.g. `input_token` or `3.model` in an array. */
  path: string;
  message: string;
}

export type ParseResult =
  { ok: true; report: UsageReport } | { ok: false; problems: ReportProblem[] };

// The schema compiled once (compile.ts): about 10× cheaper than zod on a valid report, and it
// only ever accepts what zod accepts, with the same output; zod judges everything else.
const compiledReport = compileObject(reportSchema);

/** Validates one report. Never throws; every problem is listed. */
export function parseReport(input: unknown): ParseResult {
  const report = compiledReport.tryParse(input);
  if (report !== undefined) return { ok: true, report };
  const result = reportSchema.safeParse(input);
  if (result.success) return { ok: true, report: result.data };
  return { ok: false, problems: toProblems(result.error) };
}

/** Problems as one line: `path: message; path: message`. */
export function problemsText(problems: readonly ReportProblem[]): string {
  return problems.map((p) => `${p.path}: ${p.message}`).join('; ');
}

export type RawReportResult =
  | { ok: true; report: UsageReport }
  | { ok: false; problem: 'not_json' }
  | {
      ok: false;
      problem: 'invalid';
      message: string;
      /** The `report_id` the raw JSON carries, when it is one a row can be stored under. */
      reportId: string | undefined;
    };

/** Parses and validates a report as stored (a stream entry, a rejection's raw text). Never throws. */
export function parseRawReport(raw: string): RawReportResult {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, problem: 'not_json' };
  }
  const result = parseReport(json);
  if (result.ok) return result;
  const id =
    typeof json === 'object' && json !== null && 'report_id' in json ? json.report_id : undefined;
  const reportId =
    typeof id === 'string' &&
    id.length > 0 &&
    id.length <= MAX_REPORT_ID_LENGTH &&
    !id.includes('\u0000')
      ? id
      : undefined;
  return { ok: false, problem: 'invalid', message: problemsText(result.problems), reportId };
}

export function toProblems(error: z.ZodError, prefix: (string | number)[] = []): ReportProblem[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path.map((p) => String(p))].join('.');
    return { path: path === '' ? '(report)' : path, message: issue.message };
  });
}
