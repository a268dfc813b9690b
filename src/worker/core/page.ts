// One page of stream entries → parsed reports → audit rows and rejections. Pure: the
// entities come in as data, and a report's fallback instant is its stream entry time.
import { parseReport, type StoredReport } from '../../contract/report.js';
import type { Entities } from './entities.js';
import type { EstimationRates } from './estimate.js';
import { resolveReport, type AuditRow, type RejectReason } from './resolve.js';

/** The longest raw entry kept on a rejection row; the rest of a poison entry is cut. */
export const MAX_RAW_LENGTH = 64 * 1024;

export interface PageEntry {
  id: string;
  payload: string | undefined;
}

export interface ParsedEntry {
  entryId: string;
  /** Milliseconds of the stream entry id: when Redis accepted the report. */
  acceptedAt: number;
  report: StoredReport;
  raw: string;
}

export interface PageRejection {
  reportId: string;
  reason: RejectReason;
  message: string;
  raw: string;
}

/** The raw entry as a rejection row keeps it: NUL escaped, cut at MAX_RAW_LENGTH. */
export function clip(raw: string): string {
  // PostgreSQL text cannot hold NUL; a poison entry may carry anything.
  const text = raw.includes('\u0000') ? raw.replaceAll('\u0000', '\\u0000') : raw;
  return text.length > MAX_RAW_LENGTH ? `${text.slice(0, MAX_RAW_LENGTH)}…[cut]` : text;
}

function entryTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash === -1 ? id : id.slice(0, dash));
}

/** Parses each entry with the contract; an entry that does not parse is rejected. */
export function parseEntries(
  entries: readonly PageEntry[],
  partition: number,
): { parsed: ParsedEntry[]; rejected: PageRejection[] } {
  const parsed: ParsedEntry[] = [];
  const rejected: PageRejection[] = [];
  for (const entry of entries) {
    const raw = entry.payload ?? '';
    // Entries without a usable report_id are named after their place in the stream.
    const fallbackId = `stream:${partition}:${entry.id}`;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      rejected.push({
        reportId: fallbackId,
        reason: 'invalid_report',
        message: 'entry is not JSON',
        raw: clip(raw),
      });
      continue;
    }
    const result = parseReport(json);
    if (!result.ok) {
      const message = result.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      const id =
        typeof json === 'object' && json !== null && 'report_id' in json
          ? json.report_id
          : undefined;
      const reportId =
        typeof id === 'string' && id.length > 0 && id.length <= 128 && !id.includes('\u0000')
          ? id
          : fallbackId;
      rejected.push({ reportId, reason: 'invalid_report', message, raw: clip(raw) });
      continue;
    }
    const report = result.report;
    if (report.report_id === undefined) {
      rejected.push({
        reportId: fallbackId,
        reason: 'invalid_report',
        message: 'report_id: missing',
        raw: clip(raw),
      });
      continue;
    }
    parsed.push({
      entryId: entry.id,
      acceptedAt: entryTime(entry.id),
      report: { ...report, report_id: report.report_id },
      raw,
    });
  }
  return { parsed, rejected };
}

export interface ResolveOptions extends EstimationRates {
  timeZone: string;
}

/** Validates and resolves parsed reports against the page's entities. */
export function resolveEntries(
  parsed: readonly ParsedEntry[],
  entities: Entities,
  options: ResolveOptions,
): { rows: AuditRow[]; rejected: PageRejection[] } {
  const rows: AuditRow[] = [];
  const rejected: PageRejection[] = [];
  for (const entry of parsed) {
    const result = resolveReport(entry.report, entities, {
      ...options,
      processedAt: entry.acceptedAt,
    });
    if (result.ok) rows.push(result.row);
    else
      rejected.push({
        reportId: entry.report.report_id,
        reason: result.reason,
        message: result.message,
        raw: clip(entry.raw),
      });
  }
  return { rows, rejected };
}
