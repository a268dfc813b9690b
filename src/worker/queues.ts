// The worker's BullMQ queues: job data, job options, and how to open them. Batch
// jobs are never removed on failure, so an exhausted batch stays visible and retryable.
import { Queue, type JobsOptions } from 'bullmq';
import { errorLine, type Logger } from '../logger.js';
import { withTimeout, type Dependency } from '../readiness.js';
import {
  ARCHIVE_QUEUE,
  BATCH_QUEUE,
  SEALER_QUEUE,
  batchJobId,
  queuePrefix,
} from '../contract/keys.js';
import { hashTagged, type RedisClient } from '../redis.js';

/** One sealed batch: the reports of one partition whose stream ids fall in [windowStart, windowEnd). */
export interface BatchJobData {
  partition: number;
  windowStart: number;
  windowEnd: number;
  /** The same window as ISO times, for people reading the dashboard. */
  windowStartAt?: string;
  windowEndAt?: string;
}

/** The most partitions a deployment can have (TALLY_PARTITIONS' upper bound). */
const MAX_PARTITIONS = 1024;

/**
 * Why a batch job's data does not name a real (partition, window), or undefined when it
 * does: the job id the sealer derives from them, a whole partition number, a window
 * aligned to the flush interval and exactly one interval long. Anyone who can add a job
 * (the dashboard can) must not make a worker read a stream or a range it never sealed.
 */
export function invalidBatch(
  id: string | undefined,
  data: BatchJobData,
  windowMs: number,
): string | undefined {
  const { partition, windowStart, windowEnd } = data;
  if (!Number.isInteger(partition) || partition < 0 || partition >= MAX_PARTITIONS) {
    return `partition ${String(partition)} is not a partition number`;
  }
  if (!Number.isSafeInteger(windowStart) || windowStart < 0 || windowStart % windowMs !== 0) {
    return `windowStart ${String(windowStart)} is not aligned to the ${windowMs} ms flush interval`;
  }
  if (windowEnd !== windowStart + windowMs) {
    return `windowEnd ${String(windowEnd)} is not windowStart + ${windowMs} ms`;
  }
  if (id !== batchJobId(partition, windowStart)) {
    return `job id ${String(id)} is not the sealer's id for this window (${batchJobId(partition, windowStart)})`;
  }
  return undefined;
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

/** The batch queue under `prefix`, hash-tagged when `connection` is a Redis Cluster. */
export function openBatchQueue(
  connection: RedisClient,
  prefix: string,
): Queue<BatchJobData, BatchResult> {
  return new Queue<BatchJobData, BatchResult>(BATCH_QUEUE, {
    connection,
    prefix: queuePrefix(prefix, hashTagged(connection)),
  });
}

export function openSealerQueue(connection: RedisClient, prefix: string): Queue {
  return new Queue(SEALER_QUEUE, {
    connection,
    prefix: queuePrefix(prefix, hashTagged(connection)),
  });
}

/** The retention queue (src/worker/archiver.ts) under `prefix`, as the dashboard shows it. */
export function openRetentionQueue(connection: RedisClient, prefix: string): Queue {
  return new Queue(ARCHIVE_QUEUE, {
    connection,
    prefix: queuePrefix(prefix, hashTagged(connection)),
  });
}

/**
 * The batch queue as /readyz shows it: paused or not (a paused queue commits nothing
 * until someone resumes it) and how many batches wait or have failed. A paused queue
 * does not make the process unready: it still serves, and the pause is an operator's act.
 */
export function batchQueueDependency(queue: Queue<BatchJobData, BatchResult>): Dependency {
  return {
    name: 'batches',
    async check() {
      try {
        const [paused, counts] = await withTimeout(
          Promise.all([
            queue.isPaused(),
            queue.getJobCounts('wait', 'active', 'delayed', 'failed'),
          ]),
          2_000,
          'the batch queue',
        );
        return { status: 'ok', paused, ...counts };
      } catch (error) {
        return { status: 'unavailable', message: `batch queue: ${errorLine(error)}` };
      }
    },
  };
}

/**
 * Each tick of a BullMQ job scheduler is added by the script that handles the one before. A
 * Redis failover can fail that script (seen on a Redis Cluster: "Failed to add repeatable
 * job for next iteration: Too many Cluster redirections"), and the schedule then ends
 * silently until a worker restarts: its `next` stays in the past. Every `everyMs` this reads
 * the schedule and, when it is gone or its next tick is more than `everyMs` overdue, calls
 * `schedule` again (the upsert a start makes, which replaces any pending tick). Ticks are
 * idempotent (sealing, archiving), so two workers restoring at once do no harm. Returns the
 * stop.
 */
export function keepScheduled(
  queue: Queue,
  schedulerId: string,
  schedule: () => Promise<unknown>,
  everyMs: number,
  logger: Logger,
  closing: () => boolean,
): () => void {
  const check = async () => {
    let next: number | undefined;
    try {
      next = (await queue.getJobScheduler(schedulerId))?.next;
    } catch (error) {
      // Expected while Redis fails over; the next check tries again.
      logger.debug(
        { schedule: schedulerId, err: errorLine(error) },
        'could not read a job schedule',
      );
      return;
    }
    if (closing() || (next !== undefined && next >= Date.now() - everyMs)) return;
    logger.warn(
      { schedule: schedulerId, next },
      'a job schedule stopped (a Redis failover can drop its next tick); scheduling it again',
    );
    await schedule().catch((error: unknown) =>
      logger.warn(
        { schedule: schedulerId, err: errorLine(error) },
        'could not schedule a job schedule again; the next check tries again',
      ),
    );
  };
  const timer = setInterval(() => void check(), everyMs).unref();
  return () => clearInterval(timer);
}
