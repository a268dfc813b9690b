// One page of stream entries → parsed reports → audit rows and rejections. Pure: the
// entities come in as data, and a report's fallback instant is its stream entry time.
// Must never do I/O, read a clock, or build a rejection anywhere but `rejection()`.
import { streamEntryTime, type StreamEntry } from '../../contract/keys.js';
import { parseRawReport, type StoredReport } from '../../contract/report.js';
import type { Entities } from './entities.js';
import {
  resolveReport,
  type AuditRow,
  type RejectReason,
  type ResolveContext,
  type ResolveSettings,
} from './resolve.js';

/** The longest raw entry kept on a rejection row; the rest of a poison entry is cut. */
export const MAX_RAW_LENGTH = 64 * 1024;

export interface ParsedEntry {
  entryId: string;
  /** Milliseconds of the stream entry id: when Redis accepted the report. */
  acceptedAt: number;
  report: StoredReport;
  raw: string;
}

/** A report that can never be committed, as recorded in rejected_usage_reports. */
export interface Rejection {
  reportId: string;
  reason: RejectReason;
  message: string;
  /** The entry's text, clipped to MAX_RAW_LENGTH and storable as PostgreSQL text. */
  raw: string;
}

/** The one place a rejection is built: its raw text made storable. */
export function rejection(
  reportId: string,
  reason: RejectReason,
  message: string,
  raw: string,
): Rejection {
  // PostgreSQL text cannot hold NUL; a poison entry may carry anything.
  const text = raw.includes('\u0000') ? raw.replaceAll('\u0000', '\\u0000') : raw;
  const clipped = text.length > MAX_RAW_LENGTH ? `${text.slice(0, MAX_RAW_LENGTH)}…[cut]` : text;
  return { reportId, reason, message, raw: clipped };
}

/** Parses each entry with the contract; an entry that does not parse is rejected. */
export function parseEntries(
  entries: readonly StreamEntry[],
  partition: number,
): { parsed: ParsedEntry[]; rejected: Rejection[] } {
  const parsed: ParsedEntry[] = [];
  const rejected: Rejection[] = [];
  for (const entry of entries) {
    const raw = entry.payload ?? '';
    // Entries without a usable report_id are named after their place in the stream.
    const fallbackId = `stream:${partition}:${entry.id}`;
    const result = parseRawReport(raw);
    if (!result.ok) {
      rejected.push(
        result.problem === 'not_json'
          ? rejection(fallbackId, 'invalid_report', 'entry is not JSON', raw)
          : rejection(result.reportId ?? fallbackId, 'invalid_report', result.message, raw),
      );
      continue;
    }
    const report = result.report;
    if (report.report_id === undefined) {
      rejected.push(rejection(fallbackId, 'invalid_report', 'report_id: missing', raw));
      continue;
    }
    parsed.push({
      entryId: entry.id,
      acceptedAt: streamEntryTime(entry.id),
      // Checked just above; the parsed report is ours, so it is kept rather than copied.
      report: report as StoredReport,
      raw,
    });
  }
  return { parsed, rejected };
}

/** Validates and resolves parsed reports against the page's entities. */
export function resolveEntries(
  parsed: readonly ParsedEntry[],
  entities: Entities,
  settings: ResolveSettings,
): { rows: AuditRow[]; rejected: Rejection[] } {
  const rows: AuditRow[] = [];
  const rejected: Rejection[] = [];
  // One context for the page, its processing time set per report (resolveReport keeps none).
  const ctx: ResolveContext = { ...settings, processedAt: 0 };
  for (const entry of parsed) {
    ctx.processedAt = entry.acceptedAt;
    const result = resolveReport(entry.report, entities, ctx);
    if (result.ok) rows.push(result.row);
    else rejected.push(rejection(entry.report.report_id, result.reason, result.message, entry.raw));
  }
  return { rows, rejected };
}
