// The sealer: on every tick, walks each partition's stream from its head and adds one
// batch job per closed, non-empty window. Job ids come from (partition, window start),
// so repeated or concurrent ticks add each batch once. No cursor is stored: committed
// pages are deleted, so the head is always the oldest uncommitted report.
import type { Queue } from 'bullmq';
import { hashTagged, type RedisClient } from '../redis.js';
import { batchJobId, streamEntryTime, streamKey } from '../contract/keys.js';
import type { Logger } from '../logger.js';
import {
  batchJobOptions,
  type BatchJobData,
  type BatchResult,
  type RetryPolicy,
} from './queues.js';

export interface SealerDeps {
  redis: RedisClient;
  batches: Queue<BatchJobData, BatchResult>;
  logger: Logger;
  keyPrefix: string;
  partitions: number;
  windowMs: number;
  graceMs: number;
  retry: RetryPolicy;
}

/**
 * Redis server time in milliseconds: windows never depend on a worker's clock. With `key`,
 * the time of the node that holds that key (on a cluster, the clock that stamped its entries).
 */
export async function redisTime(redis: RedisClient, key?: string): Promise<number> {
  const [seconds, micros] =
    key === undefined
      ? await redis.time()
      : ((await redis.eval("return redis.call('TIME')", 1, key)) as [string, string]);
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

export function windowOf(ms: number, windowMs: number): { start: number; end: number } {
  const start = Math.floor(ms / windowMs) * windowMs;
  return { start, end: start + windowMs };
}

/** The closed, non-empty windows of one partition, oldest first. */
export async function closedWindows(
  redis: RedisClient,
  key: string,
  now: number,
  windowMs: number,
  graceMs: number,
): Promise<{ start: number; end: number }[]> {
  const windows: { start: number; end: number }[] = [];
  let cursor = '-';
  for (;;) {
    const [first] = await redis.xrange(key, cursor, '+', 'COUNT', 1);
    if (first === undefined) break;
    const window = windowOf(streamEntryTime(first[0]), windowMs);
    if (now < window.end + graceMs) break;
    windows.push(window);
    cursor = `${window.end}-0`;
  }
  return windows;
}

/** One sealer tick. Returns how many windows it found closed (jobs that existed are not re-added). */
export async function seal(deps: SealerDeps): Promise<number> {
  const options = batchJobOptions(deps.retry);
  let sealed = 0;
  for (let partition = 0; partition < deps.partitions; partition += 1) {
    const key = streamKey(deps.keyPrefix, partition, hashTagged(deps.redis));
    // The clock of the node that holds the stream: on a cluster, nodes' clocks may differ.
    const now = await redisTime(deps.redis, key);
    const windows = await closedWindows(deps.redis, key, now, deps.windowMs, deps.graceMs);
    if (windows.length === 0) continue;
    await deps.batches.addBulk(
      windows.map((w) => ({
        name: 'batch',
        data: {
          partition,
          windowStart: w.start,
          windowEnd: w.end,
          windowStartAt: new Date(w.start).toISOString(),
          windowEndAt: new Date(w.end).toISOString(),
        },
        opts: { ...options, jobId: batchJobId(partition, w.start) },
      })),
    );
    sealed += windows.length;
  }
  if (sealed > 0) deps.logger.debug({ sealed }, 'sealer tick');
  return sealed;
}
