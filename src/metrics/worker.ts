// The worker role's metrics: reports committed, duplicate and rejected (by reason) as
// each page commits; batches completed, retried, failed and stalled from BullMQ's worker
// events; page-commit and batch durations. Counters count work done by this process: a
// page rerun after a crash adds duplicates, never committed reports. Must never label by
// user, key or model.
import type { Job, Worker } from 'bullmq';
import { Counter, Histogram, type Registry } from 'prom-client';
import { REJECT_REASONS } from '../worker/core/resolve.js';

/** Page commits and batches: 10 ms to 5 min. */
const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What one committed page adds (the batch processor's view of a commit). */
export interface PageOutcome {
  committed: number;
  duplicates: number;
  rejected: readonly { reason: string }[];
  seconds: number;
}

export class WorkerMetrics {
  readonly reportsCommitted: Counter;
  readonly reportsDuplicate: Counter;
  readonly reportsRejected: Counter<'reason'>;
  readonly batchesCompleted: Counter;
  readonly batchesRetried: Counter;
  readonly batchesFailed: Counter;
  readonly batchesStalled: Counter;
  readonly pageCommitDuration: Histogram;
  readonly batchDuration: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    this.reportsCommitted = counter(
      'tally_reports_committed_total',
      'Reports committed: audit row inserted and added to its daily rollup.',
    );
    this.reportsDuplicate = counter(
      'tally_reports_duplicate_total',
      'Reports skipped because their report_id already had an audit row (resends, reruns).',
    );
    this.reportsRejected = new Counter({
      name: 'tally_reports_rejected_total',
      help: 'Reports recorded as rejected, by reason (never retried).',
      labelNames: ['reason'],
      registers,
    });
    // Every reason starts at 0, so rate() and the rejection alert see the first one.
    for (const reason of REJECT_REASONS) this.reportsRejected.inc({ reason }, 0);
    this.batchesCompleted = counter(
      'tally_batches_completed_total',
      'Batches (one window of one partition) committed to the end.',
    );
    this.batchesRetried = counter(
      'tally_batches_retried_total',
      'Batch attempts that failed with attempts left; BullMQ retries them with backoff.',
    );
    this.batchesFailed = counter(
      'tally_batches_failed_total',
      'Batches that spent all their attempts and wait in the failed set for an operator.',
    );
    this.batchesStalled = counter(
      'tally_batches_stalled_total',
      "Batches whose worker stopped renewing the lock (died or blocked), moved back to wait by this process's stalled check.",
    );
    this.pageCommitDuration = new Histogram({
      name: 'tally_page_commit_duration_seconds',
      help: "Time of one page's PostgreSQL transaction (audit rows, rollups, rejections).",
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.batchDuration = new Histogram({
      name: 'tally_batch_duration_seconds',
      help: 'Time from a batch attempt starting to its completion.',
      buckets: DURATION_BUCKETS,
      registers,
    });
  }

  /** Called by the batch processor after each page's transaction. */
  pageCommitted(page: PageOutcome): void {
    this.pageCommitDuration.observe(page.seconds);
    this.reportsCommitted.inc(page.committed);
    this.reportsDuplicate.inc(page.duplicates);
    for (const r of page.rejected) this.reportsRejected.inc({ reason: r.reason });
  }

  /** Counts a batch worker's completed, failed (retried or exhausted) and stalled batches. */
  observeBatchWorker(worker: Worker): void {
    worker.on('completed', (job: Job) => {
      this.batchesCompleted.inc();
      if (job.processedOn !== undefined && job.finishedOn !== undefined) {
        this.batchDuration.observe((job.finishedOn - job.processedOn) / 1000);
      }
    });
    worker.on('failed', (job: Job | undefined) => {
      if (job === undefined) return;
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade < attempts) this.batchesRetried.inc();
      else this.batchesFailed.inc();
    });
    worker.on('stalled', () => this.batchesStalled.inc());
  }
}
