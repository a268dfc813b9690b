// Redis key and BullMQ queue names, shared by producer and worker. Every key starts
// with the configured prefix, so several installations (or test runs) share one Redis.

/** Stream that holds the unprocessed reports of one partition. */
export function streamKey(prefix: string, partition: number): string {
  return `${prefix}:${partition}:reports`;
}

/** The field of a stream entry that holds the report JSON. */
export const REPORT_FIELD = 'r';

/** BullMQ queue of sealed batches, one job per (partition, window). */
export const BATCH_QUEUE = 'batches';
/** BullMQ queue whose job scheduler ticks the sealer. */
export const SEALER_QUEUE = 'sealer';

/** BullMQ job id of one batch: deterministic, so a window is added once however often it is sealed. */
export function batchJobId(partition: number, windowStart: number): string {
  return `p${partition}-w${windowStart}`;
}
