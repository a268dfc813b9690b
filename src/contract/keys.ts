// Redis key and BullMQ queue names, and the shape of a stream entry, shared by producer
// and worker. Every key starts with the configured prefix, so several installations (or
// test runs) share one Redis. On a Redis Cluster the keys carry hash tags (docs/redis-cluster.md):
// each partition stream its own tag, so partitions spread over the shards, and every
// BullMQ key one tag, so BullMQ's multi-key scripts stay in one slot. On a single Redis the
// names stay untagged, as they always were. Must never hold I/O: other modules read and write Redis.

const STREAM_SUFFIX = 'reports';

/**
 * Stream that holds the unprocessed reports of one partition: `tally:3:reports`, or on a
 * cluster `tally:{3}:reports` (slot of "3").
 */
export function streamKey(prefix: string, partition: number, hashTagged = false): string {
  return hashTagged
    ? `${prefix}:{${partition}}:${STREAM_SUFFIX}`
    : `${prefix}:${partition}:${STREAM_SUFFIX}`;
}

/** The BullMQ prefix of both queues: the key prefix, or on a cluster `{prefix}` (one slot). */
export function queuePrefix(prefix: string, hashTagged = false): string {
  return hashTagged ? `{${prefix}}` : prefix;
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
  const match = /^(?:\d+|\{\d+\})$/.test(partition) ? partition.replace(/[{}]/g, '') : undefined;
  return match === undefined ? undefined : Number(match);
}

/**
 * The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (the text between the
 * first `{` and the next `}`, when not empty) or of the whole key, modulo 16384.
 */
export function hashSlot(key: string): number {
  const bytes = Buffer.from(key);
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i += 1) {
    crc ^= (bytes[i] as number) << 8;
    for (let bit = 0; bit < 8; bit += 1) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc % 16384;
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
