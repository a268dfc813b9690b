// The worker's BullMQ queues: job data, job options, and how to open them. Batch
// jobs are never removed on failure, so an exhausted batch stays visible and retryable.
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { BATCH_QUEUE, SEALER_QUEUE } from '../contract/keys.js';

/** One sealed batch: the reports of one partition whose stream ids fall in [windowStart, windowEnd). */
export interface BatchJobData {
  partition: number;
  windowStart: number;
  windowEnd: number;
}

export interface BatchResult {
  committed: number;
  duplicates: number;
  rejected: Record<string, number>;
  pages: number;
}

export interface BatchProgress {
  pages: number;
  read: number;
  committed: number;
  duplicates: number;
  rejected: number;
}

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

export function batchJobOptions(retry: RetryPolicy): JobsOptions {
  return {
    attempts: retry.attempts,
    backoff: { type: 'exponential', delay: retry.backoffMs },
    // Completed batches are kept a day for the dashboard; failed ones until an operator acts.
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: false,
  };
}

export function openBatchQueue(
  connection: ConnectionOptions,
  prefix: string,
): Queue<BatchJobData, BatchResult> {
  return new Queue<BatchJobData, BatchResult>(BATCH_QUEUE, { connection, prefix });
}

export function openSealerQueue(connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(SEALER_QUEUE, { connection, prefix });
}
