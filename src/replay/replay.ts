// Replays recorded rejections (`npm run replay-rejected`): for each page of matching
// rows of rejected_usage_reports, re-validates the raw report with the contract, puts it
// back on its partition stream through the producer SDK (same report_id), and only then
// deletes those rows. A crash in between leaves a row whose report is queued again: a
// later replay turns it into a duplicate that the worker's dedup adds nothing for.
// Must never delete a row before its report is acknowledged by Redis, nor a row that a
// newer rejection rewrote meanwhile, nor touch a row whose raw report is not a report.
import { parseArgs } from 'node:util';
import { REJECT_REASONS } from '../worker/core/resolve.js';
import { parseRawReport, type StoredReport, type UsageReportInput } from '../contract/report.js';
import type { PrismaClient } from '../db/client.js';

export interface ReplayFilter {
  /** Only rows with this reason (e.g. unknown_user); all reasons when undefined. */
  reason: string | undefined;
  /** Only rows rejected at or after this instant. */
  since: Date | undefined;
  /** Only rows rejected before this instant. */
  until: Date | undefined;
}

/** A bad command line; the message says what to write instead. */
export class ReplayUsageError extends Error {
  override readonly name = 'ReplayUsageError';
}

export const REPLAY_USAGE = [
  'usage: npm run replay-rejected -- [--reason <reason>] [--since <ISO time>] [--until <ISO time>]',
  '',
  'Puts recorded rejections (rejected_usage_reports) back on their partition streams, keeping',
  'each report_id, once their cause is fixed; with no option, every reason. Needs DATABASE_URL,',
  'REDIS_URL, TALLY_KEY_PREFIX and TALLY_PARTITIONS as the workers have them.',
  '',
  `reasons: ${REJECT_REASONS.join(', ')}`,
].join('\n');

/** Whether the arguments ask for the usage text (`--help` or `-h`). Pure. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

function instant(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  // Only full ISO dates/times; Date would otherwise accept "1" or "May 3".
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime())) {
    throw new ReplayUsageError(
      `${flag} must be an ISO time such as 2026-05-03T12:00:00Z, got "${value}"`,
    );
  }
  return at;
}

/** Parses the CLI arguments (after `--`). Pure. */
export function parseReplayArgs(argv: string[]): ReplayFilter {
  let values: {
    reason?: string | undefined;
    since?: string | undefined;
    until?: string | undefined;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        reason: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ReplayUsageError(`${(error as Error).message}\n${REPLAY_USAGE}`);
  }
  const reason = values.reason?.trim();
  if (reason === '') throw new ReplayUsageError(`--reason must not be empty\n${REPLAY_USAGE}`);
  if (reason !== undefined && !(REJECT_REASONS as readonly string[]).includes(reason)) {
    throw new ReplayUsageError(
      `--reason ${reason} is not a rejection reason; known reasons: ${REJECT_REASONS.join(', ')}`,
    );
  }
  const filter = {
    reason,
    since: instant('--since', values.since),
    until: instant('--until', values.until),
  };
  if (filter.since && filter.until && filter.since >= filter.until) {
    throw new ReplayUsageError('--since must be earlier than --until');
  }
  return filter;
}

export type Replayable = { ok: true; report: StoredReport } | { ok: false; why: string };

/** Whether a rejection's raw report can be replayed: JSON, valid by the contract, with an id. Pure. */
export function replayable(raw: string, reportId: string): Replayable {
  const parsed = parseRawReport(raw);
  if (!parsed.ok) {
    return {
      ok: false,
      why: parsed.problem === 'not_json' ? 'raw report is not JSON' : parsed.message,
    };
  }
  // The id is what makes a replay idempotent; the row's and the report's must agree.
  if (parsed.report.report_id !== reportId) {
    return { ok: false, why: 'raw report does not carry the rejection row’s report_id' };
  }
  return { ok: true, report: { ...parsed.report, report_id: reportId } };
}

export interface RejectionRow {
  id: bigint;
  report_id: string;
  reason: string;
  raw_report: string;
  rejected_at: Date;
}

export interface ReplayPage {
  page: number;
  replayed: number;
  unreplayable: number;
}

export interface ReplaySummary {
  /** Rows that matched the filter. */
  matched: number;
  /** Reports put back on their stream (their rows deleted). */
  replayed: number;
  /** Rows left in place because their raw report cannot be replayed. */
  unreplayable: number;
  /** Why, by message, for the rows left in place. */
  unreplayableWhy: Record<string, number>;
}

export interface ReplayDeps {
  prisma: PrismaClient;
  /** Enqueues validated reports, all or nothing (the producer SDK's reportMany). */
  enqueue: (reports: UsageReportInput[]) => Promise<string[]>;
  pageSize?: number;
  onPage?: (page: ReplayPage) => void;
}

/** Replays every matching rejection, a page at a time, in id order. */
export async function replayRejected(
  deps: ReplayDeps,
  filter: ReplayFilter,
): Promise<ReplaySummary> {
  const pageSize = deps.pageSize ?? 500;
  const summary: ReplaySummary = { matched: 0, replayed: 0, unreplayable: 0, unreplayableWhy: {} };
  const reason = filter.reason ?? null;
  const since = filter.since ?? null;
  const until = filter.until ?? null;
  let after = 0n;
  for (let page = 1; ; page += 1) {
    const rows = await deps.prisma.$queryRaw<RejectionRow[]>`
      SELECT id, report_id, reason, raw_report, rejected_at
      FROM rejected_usage_reports
      WHERE id > ${after}
        AND (${reason}::text IS NULL OR reason = ${reason}::text)
        AND (${since}::timestamptz IS NULL OR rejected_at >= ${since}::timestamptz)
        AND (${until}::timestamptz IS NULL OR rejected_at < ${until}::timestamptz)
      ORDER BY id
      LIMIT ${pageSize}`;
    if (rows.length === 0) break;
    after = rows[rows.length - 1]?.id ?? after;
    summary.matched += rows.length;

    const reports: StoredReport[] = [];
    const taken: RejectionRow[] = [];
    for (const row of rows) {
      const verdict = replayable(row.raw_report, row.report_id);
      if (verdict.ok) {
        reports.push(verdict.report);
        taken.push(row);
      } else {
        summary.unreplayable += 1;
        summary.unreplayableWhy[verdict.why] = (summary.unreplayableWhy[verdict.why] ?? 0) + 1;
      }
    }
    if (reports.length > 0) {
      await deps.enqueue(reports);
      // Only the rows as read: a row a worker rewrote meanwhile (the replayed report
      // rejected again) has a newer rejected_at and stays.
      await deps.prisma.$executeRaw`
        DELETE FROM rejected_usage_reports r
        USING unnest(${taken.map((t) => t.id)}::bigint[], ${taken.map((t) => t.rejected_at)}::timestamptz[]) AS t(id, at)
        WHERE r.id = t.id AND r.rejected_at = t.at`;
      summary.replayed += reports.length;
    }
    deps.onPage?.({ page, replayed: reports.length, unreplayable: rows.length - reports.length });
  }
  return summary;
}
