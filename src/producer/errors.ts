// Typed failures of the producer SDK, so a gateway can tell "fix the report" (never
// retry) from "Redis is down" (retry later with the same report_ids).
// Must never carry a report's payload or a connection URL (they end up in logs).
import type { ReportProblem } from '../contract/index.js';

/** One or more reports failed validation; nothing from that call was enqueued. */
export class InvalidReportError extends Error {
  override readonly name = 'InvalidReportError';
  /** Every problem found; in `reportMany` each path starts with the item's index (`3.input_token`). */
  readonly problems: ReportProblem[];
  /** Indexes (in call order) of the items that failed; `[0]` for `report`. */
  readonly invalidIndexes: number[];

  constructor(problems: ReportProblem[], invalidIndexes: number[]) {
    const first = problems[0];
    const detail = first === undefined ? '' : `: ${first.path}: ${first.message}`;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : '';
    super(`invalid usage report${detail}${more}; nothing was enqueued, fix the report(s)`);
    this.problems = problems;
    this.invalidIndexes = invalidIndexes;
  }
}

/**
 * Redis did not acknowledge the reports in time (unreachable, closed or failing).
 * Some of them may still have reached Redis: retry with the same `reportIds` so the
 * worker's dedup by report_id drops the copies.
 */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  /** The report_ids of the call, in order (including ids the producer assigned). */
  readonly reportIds: string[];

  constructor(message: string, reportIds: string[], options?: { cause?: unknown }) {
    super(message, options);
    this.reportIds = reportIds;
  }
}
