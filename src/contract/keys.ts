// Redis key and BullMQ queue names, and the shape of a stream entry, shared by producer
// and worker. Every key starts with the configured prefix, so several installations (or
// test runs) share one Redis. Must never hold I/O: other modules read and write Redis.

const STREAM_SUFFIX = 'reports';

/** Stream that holds the unprocessed reports of one partition. */
export function streamKey(prefix: string, partition: number): string {
  return `${prefix}:${partition}:${STREAM_SUFFIX}`;
}

/** A SCAN MATCH pattern for the partition streams under `prefix`. */
export function streamKeyPattern(prefix: string): string {
  return `${prefix}:*:${STREAM_SUFFIX}`;
}

/** The partition of a stream key written by `streamKey(prefix, …)`, or undefined if it is not one. */
export function parseStreamKey(prefix: string, key: string): number | undefined {
  const head = `${prefix}:`;
  const tail = `:${STREAM_SUFFIX}`;
  if (!key.startsWith(head) || !key.endsWith(tail) || key.length <= head.length + tail.length) {
    return undefined;
  }
  const partition = key.slice(head.length, key.length - tail.length);
  return /^\d+$/.test(partition) ? Number(partition) : undefined;
}

/** The field of a stream entry that holds the report JSON. */
export const REPORT_FIELD = 'r';

/** One stream entry as read back. */
export interface StreamEntry {
  /** Redis' entry id, `<milliseconds>-<sequence>`. */
  id: string;
  /** The report JSON, or undefined when the entry has no report field. */
  payload: string | undefined;
}

/** Milliseconds of a stream entry id: when Redis accepted the entry (server time). */
export function streamEntryTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash === -1 ? id : id.slice(0, dash));
}

/** BullMQ queue of sealed batches, one job per (partition, window). */
export const BATCH_QUEUE = 'batches';
/** BullMQ queue whose job scheduler ticks the sealer. */
export const SEALER_QUEUE = 'sealer';
/** BullMQ queue whose job scheduler runs retention (audit rows moved to the archive). */
export const ARCHIVE_QUEUE = 'retention';

/** BullMQ job id of one batch: deterministic, so a window is added once however often it is sealed. */
export function batchJobId(partition: number, windowStart: number): string {
  return `p${partition}-w${windowStart}`;
}
