// The figures every fault scenario prints and asserts, computed by SQL from what the
// database holds (never from counters of the code under test): of the reports the
// producer acknowledged, how many are committed, counted twice, rejected, or lost.
import { appendFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { PrismaClient } from '../../../src/db/client.js';
import { streamLength } from '../../support/pipeline.js';

export interface Tally {
  sent: number;
  committed: number;
  duplicates: number;
  rejected: number;
  lost: number;
}

/**
 * `duplicates` counts both ways a report could be counted twice: a second audit row for
 * one report_id, and rollup requests beyond the audit rows' (each report has request_count 1).
 */
export async function tallyOf(prisma: PrismaClient, sentIds: readonly string[]): Promise<Tally> {
  const ids = [...new Set(sentIds)];
  const [row] = await prisma.$queryRaw<
    {
      committed: number;
      audit_rows: number;
      rejected: number;
      audit_requests: bigint;
      rollup_requests: bigint;
    }[]
  >`
    SELECT
      (SELECT count(DISTINCT report_id) FROM model_usage_details WHERE report_id = ANY(${ids}::text[]))::int AS committed,
      (SELECT count(*) FROM model_usage_details WHERE report_id = ANY(${ids}::text[]))::int AS audit_rows,
      (SELECT count(*) FROM rejected_usage_reports r WHERE r.report_id = ANY(${ids}::text[])
         AND NOT EXISTS (SELECT 1 FROM model_usage_details d WHERE d.report_id = r.report_id))::int AS rejected,
      (SELECT coalesce(sum(request_count), 0) FROM model_usage_details)::bigint AS audit_requests,
      (SELECT coalesce(sum(request_count), 0) FROM model_usages)::bigint AS rollup_requests`;
  if (row === undefined) throw new Error('no result');
  const extraRollup = Number(row.rollup_requests - row.audit_requests);
  const duplicates = row.audit_rows - row.committed + Math.max(0, extraRollup);
  return {
    sent: ids.length,
    committed: row.committed,
    duplicates,
    rejected: row.rejected,
    lost: ids.length - row.committed - row.rejected,
  };
}

/** Prints the scenario's line (and appends it to TALLY_FAULTS_REPORT when set). */
export function printLine(scenario: string, t: Tally, extra = ''): string {
  return printFigure(
    `${scenario}: sent ${t.sent}, committed ${t.committed}, duplicates ${t.duplicates}, rejected ${t.rejected}, lost ${t.lost}${extra === '' ? '' : `; ${extra}`}`,
  );
}

/** Prints `[fault] <text>` (and appends it to TALLY_FAULTS_REPORT when set). */
export function printFigure(text: string): string {
  const line = `[fault] ${text}`;
  console.log(line);
  const file = process.env['TALLY_FAULTS_REPORT'];
  if (file !== undefined && file !== '') appendFileSync(file, `${line}\n`);
  return line;
}

export interface SettleOptions {
  prisma: PrismaClient;
  redis: Redis;
  prefix: string;
  partitions: number;
  ids: readonly string[];
  timeoutMs: number;
  /** Processes whose output explains a timeout (their death fails at once). */
  watch?: { name: string; exited(): boolean; output(): string }[];
}

/**
 * Waits, at most `timeoutMs`, until every sent report is committed or rejected and the
 * streams are empty, then returns the figures as they are: a loss shows as `lost N` in
 * the scenario's printed line and its assertion, not as a timeout. A watched process
 * that dies fails at once; on a timeout, what the watched processes said is printed.
 */
export async function waitSettled(o: SettleOptions): Promise<Tally> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    for (const w of o.watch ?? []) {
      if (w.exited()) throw new Error(`${w.name} exited:\n${w.output().slice(-4_000)}`);
    }
    const tally = await tallyOf(o.prisma, o.ids);
    const inStreams = await streamLength(o.redis, o.prefix, o.partitions);
    if (tally.lost === 0 && inStreams === 0) return tally;
    if (Date.now() > deadline) {
      const said = (o.watch ?? []).map((w) => `--- ${w.name}:\n${w.output().slice(-3_000)}`);
      console.error(
        `not settled after ${o.timeoutMs} ms: ${inStreams} entries still in the streams\n${said.join('\n')}`,
      );
      return tally;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
