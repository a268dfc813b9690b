// Why the ingest server's spool refused reports, as typed errors the server maps to 503,
// and why a spool directory could not be opened. Must never carry a report's payload.
import type { StoredReport } from '../../contract/index.js';

/** The spool did not take the reports: `full` (at TALLY_SPOOL_MAX_BYTES) or `unwritable`. */
export class SpoolRefusedError extends Error {
  override readonly name = 'SpoolRefusedError';
  readonly reason: 'full' | 'unwritable';
  /** The report_ids of the refused call, so a client that retries can reuse them. */
  readonly reportIds: string[];

  constructor(
    reason: 'full' | 'unwritable',
    message: string,
    reports: readonly Pick<StoredReport, 'report_id'>[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.reason = reason;
    this.reportIds = reports.map((r) => r.report_id);
  }
}

/** Another live process holds the spool directory's lock file. */
export class SpoolLockedError extends Error {
  override readonly name = 'SpoolLockedError';
  constructor(
    readonly dir: string,
    readonly holderPid: number,
  ) {
    super(
      `the spool directory ${dir} is in use by process ${holderPid} (its LOCK file); give each ingest process its own TALLY_SPOOL_DIR`,
    );
  }
}
