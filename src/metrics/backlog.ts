// The backlog, read from Redis when Prometheus scrapes: entries per partition stream,
// the age of the oldest uncommitted report (Redis TIME minus the oldest stream entry's
// id, which is its arrival time), and batches waiting, active, delayed and failed. Every
// gauge of one scrape comes from one read. Must never write to Redis or scan the streams
// beyond their first entry.
import type { Queue } from 'bullmq';
import { withTimeout } from '../readiness.js';
import { hashTagged, openRedis, type RedisClient, type RedisTarget } from '../redis.js';
import { Counter, Gauge, type Registry } from 'prom-client';
import { streamKey } from '../contract/keys.js';
import type { Logger } from '../logger.js';

export const BATCH_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
type BatchState = (typeof BATCH_STATES)[number];

export interface Backlog {
  /** Entries per partition stream, index = partition. */
  streamEntries: number[];
  /** Seconds since the oldest entry of any stream arrived; 0 when every stream is empty. */
  oldestReportAgeSeconds: number;
  batches: Record<BatchState, number>;
}

export interface BacklogSource {
  redis: RedisClient;
  batches: Pick<Queue, 'getJobCounts'>;
  keyPrefix: string;
  partitions: number;
}

/**
 * Reads the backlog: the streams' lengths and heads, sent together (on a cluster each
 * partition may live on another node, so no single pipeline spans them), and the batch counts.
 */
export async function readBacklog(source: BacklogSource): Promise<Backlog> {
  const tagged = hashTagged(source.redis);
  const keys = Array.from({ length: source.partitions }, (_, p) =>
    streamKey(source.keyPrefix, p, tagged),
  );
  const [time, streams, counts] = await Promise.all([
    source.redis.time(),
    Promise.all(
      keys.map(async (key) =>
        Promise.all([source.redis.xlen(key), source.redis.xrange(key, '-', '+', 'COUNT', 1)]),
      ),
    ),
    source.batches.getJobCounts(...BATCH_STATES),
  ]);
  const [seconds, micros] = time;
  const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  const streamEntries: number[] = [];
  let oldestMs = nowMs;
  for (const [length, head] of streams) {
    streamEntries.push(length);
    const first = head[0];
    if (first !== undefined) oldestMs = Math.min(oldestMs, Number(first[0].split('-')[0]));
  }
  return {
    streamEntries,
    oldestReportAgeSeconds: Math.max(0, nowMs - oldestMs) / 1000,
    batches: Object.fromEntries(BATCH_STATES.map((s) => [s, counts[s] ?? 0])) as Record<
      BatchState,
      number
    >,
  };
}

/** Longest a scrape waits for the backlog; past it the gauges are left out (Redis down or slow). */
export const BACKLOG_READ_TIMEOUT_MS = 1_500;

/**
 * Registers the backlog gauges. A scrape that cannot reach Redis within
 * BACKLOG_READ_TIMEOUT_MS leaves them out and counts tally_backlog_read_errors_total, so
 * the rest of the scrape still answers (BullMQ's connection would otherwise wait for Redis).
 */
export function registerBacklogMetrics(
  registry: Registry,
  source: BacklogSource,
  logger: Logger,
  timeoutMs = BACKLOG_READ_TIMEOUT_MS,
): void {
  const registers = [registry];
  const errors = new Counter({
    name: 'tally_backlog_read_errors_total',
    help: 'Scrapes whose backlog read from Redis failed (the backlog gauges are then absent).',
    registers,
    // Waits for this scrape's read, so a failed read counts in the same scrape.
    async collect() {
      await read();
    },
  });
  // The gauges collect in parallel within one scrape; they share one read.
  let inFlight: Promise<Backlog | undefined> | undefined;
  function read(): Promise<Backlog | undefined> {
    inFlight ??= withTimeout(readBacklog(source), timeoutMs, 'the backlog read from Redis')
      .catch((error: unknown) => {
        errors.inc();
        logger.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'backlog read failed; its gauges are left out of this scrape',
        );
        return undefined;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  new Gauge({
    name: 'tally_stream_entries',
    help: 'Reports waiting in each partition stream (acknowledged, not yet committed or rejected).',
    labelNames: ['partition'],
    registers,
    async collect() {
      this.reset();
      const backlog = await read();
      backlog?.streamEntries.forEach((n, p) => this.set({ partition: String(p) }, n));
    },
  });
  new Gauge({
    name: 'tally_oldest_report_age_seconds',
    help: 'Age of the oldest report still in any partition stream (Redis time minus its stream id); 0 when all are empty.',
    registers,
    async collect() {
      this.reset();
      const backlog = await read();
      if (backlog !== undefined) this.set(backlog.oldestReportAgeSeconds);
    },
  });
  new Gauge({
    name: 'tally_batches',
    help: 'Batches in the queue, by state (waiting, active, delayed, failed).',
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      const backlog = await read();
      if (backlog === undefined) return;
      for (const state of BATCH_STATES) this.set({ state }, backlog.batches[state]);
    },
  });
}

export interface BacklogConfig extends RedisTarget {
  keyPrefix: string;
  partitions: number;
}

/** The backlog gauges, read over a connection of their own (closed by the returned function). */
export function attachBacklog(
  registry: Registry,
  config: BacklogConfig,
  batches: Pick<Queue, 'getJobCounts'>,
  logger: Logger,
): () => void {
  // A scrape must answer even when Redis is down: fail fast instead of queueing commands.
  const redis = openRedis(config, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  });
  redis.on('error', () => undefined);
  registerBacklogMetrics(
    registry,
    { redis, batches, keyPrefix: config.keyPrefix, partitions: config.partitions },
    logger,
  );
  return () => redis.disconnect();
}
