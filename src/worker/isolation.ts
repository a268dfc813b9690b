// Commits a page so that one report the database can never store cannot hold its window
// hostage. A database error is permanent when it is about the data (SQLSTATE class 22,
// e.g. a rollup driven past bigint; a not-null or check violation): then the page is
// split in halves committed separately until the offending report stands alone, and it
// is rejected with the error's reason. Every other error (connection refused, deadlock,
// serialization failure, anything unrecognised) is transient and thrown, so BullMQ retries.
// Splitting is safe because each commit is idempotent: audit rows ON CONFLICT DO NOTHING,
// rollups add only the rows inserted. Must never swallow a transient error, nor record a
// rejection for a report that has an audit row.
import type { PrismaClient } from '../db/client.js';
import { rejection, type Rejection } from './core/page.js';
import type { RejectReason } from './core/resolve.js';
import {
  commitPage,
  pageRowValues,
  pageRowsOf,
  rejectUnlessCommitted,
  rowReportId,
  type PageRows,
} from './writer.js';

/** SQLSTATEs outside class 22 that one report's values alone can cause. */
const PERMANENT_STATES = new Set([
  '23502', // not_null_violation
  '23514', // check_violation
]);

/** The PostgreSQL SQLSTATE behind an error from Prisma's pg adapter (or pg), if any. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const meta = (error as { meta?: { driverAdapterError?: { cause?: unknown } } }).meta;
  const cause = meta?.driverAdapterError?.cause;
  if (typeof cause === 'object' && cause !== null) {
    const { originalCode, code } = cause as { originalCode?: unknown; code?: unknown };
    if (typeof originalCode === 'string') return originalCode;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  const code = (error as { code?: unknown }).code;
  // A bare pg DatabaseError carries the SQLSTATE itself (Prisma's own codes start with P).
  return typeof code === 'string' && /^[0-9][0-9A-Z]{4}$/.test(code) ? code : undefined;
}

/** The rejection reason for an error no retry can fix, or undefined for a transient one. */
export function permanentReason(error: unknown): RejectReason | undefined {
  const state = sqlState(error);
  if (state === undefined) return undefined;
  if (state === '22003') return 'rollup_overflow';
  if (state.startsWith('22') || PERMANENT_STATES.has(state)) return 'unstorable_report';
  return undefined;
}

export interface IsolatedCommitResult {
  committed: number;
  duplicates: number;
  /** Reports the database refused for good, each now recorded as rejected. */
  isolated: Rejection[];
  /** How many commits the page took (1 when nothing had to be isolated). */
  commits: number;
}

export interface IsolationContext {
  prisma: PrismaClient;
  partition: number;
  /** The raw entry of a report, by report_id (clipped when the rejection is built). */
  rawOf: (reportId: string) => Promise<string>;
}

function messageFor(error: unknown, state: string | undefined): string {
  const meta = (
    error as { meta?: { driverAdapterError?: { cause?: { originalMessage?: unknown } } } }
  ).meta;
  // Through Prisma the server's message is in the adapter's cause; from pg, it is the message.
  const text =
    meta?.driverAdapterError?.cause?.originalMessage ??
    (error instanceof Error && sqlState(error) !== undefined ? error.message : undefined);
  const detail = typeof text === 'string' ? text : 'the database refused the report';
  return `${detail} (SQLSTATE ${state ?? 'unknown'}); the report can never be committed as it is`;
}

/**
 * Commits `rows` and the page's `rejected` like commitPage; on a permanent error, bisects
 * until each offending report is alone and records it as rejected. Throws transient errors.
 */
export async function commitIsolating(
  ctx: IsolationContext,
  rows: PageRows,
  rejected: readonly Rejection[],
): Promise<IsolatedCommitResult> {
  const total: IsolatedCommitResult = { committed: 0, duplicates: 0, isolated: [], commits: 0 };
  // Depth-first over halves; the page's own rejections travel with the first piece.
  const pending: { rows: PageRows; rejected: readonly Rejection[] }[] = [{ rows, rejected }];
  for (let piece = pending.pop(); piece !== undefined; piece = pending.pop()) {
    total.commits += 1;
    try {
      const result = await commitPage(ctx.prisma, ctx.partition, piece.rows, piece.rejected);
      total.committed += result.committed;
      total.duplicates += result.duplicates;
      continue;
    } catch (error) {
      const reason = permanentReason(error);
      if (reason === undefined || piece.rows.count === 0) throw error;
      // Only here are the rows read back from the page's text: one at a time, or halves.
      const values = pageRowValues(piece.rows);
      const [only] = values;
      if (values.length === 1 && only !== undefined) {
        if (piece.rejected.length > 0)
          await commitPage(ctx.prisma, ctx.partition, pageRowsOf([]), piece.rejected);
        const reportId = rowReportId(only);
        const refused = rejection(
          reportId,
          reason,
          messageFor(error, sqlState(error)),
          await ctx.rawOf(reportId),
        );
        if (await rejectUnlessCommitted(ctx.prisma, ctx.partition, refused)) {
          total.isolated.push(refused);
        } else {
          total.duplicates += 1;
        }
        continue;
      }
      const half = Math.ceil(values.length / 2);
      pending.push({ rows: pageRowsOf(values.slice(half)), rejected: [] });
      pending.push({ rows: pageRowsOf(values.slice(0, half)), rejected: piece.rejected });
    }
  }
  return total;
}
