// Starts a worker: the sealer (a BullMQ job scheduler tick), the batch processor and
// retention (src/worker/archiver.ts), on their own Redis connections. Any number of
// workers may run against one Redis and one PostgreSQL. `close()` releases the current
// batch between pages and closes all.
import { hostname } from 'node:os';
import { Worker, type Job, type Queue } from 'bullmq';
import {
  BATCH_QUEUE,
  SEALER_QUEUE,
  parseStreamKey,
  queuePrefix,
  streamKeyPattern,
} from '../contract/keys.js';
import { hashTagged, openRedis, scanKeys, type RedisClient } from '../redis.js';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { errorLine, type Logger } from '../logger.js';
import { withTimeout } from '../readiness.js';
import { batchSettings, createBatchProcessor } from './batch-processor.js';
import type { WorkerMetrics } from '../metrics/worker.js';
import { EntityLoader } from './entity-loader.js';
import {
  keepScheduled,
  openBatchQueue,
  openSealerQueue,
  type BatchJobData,
  type BatchResult,
} from './queues.js';
import { seal } from './sealer.js';
import { startArchiver, type RunningArchiver } from './archiver.js';

/** The longest a sealer tick may take (a few commands per partition, normally milliseconds). */
function sealTickTimeoutMs(flushIntervalMs: number): number {
  return Math.max(5_000, 2 * flushIntervalMs);
}

/** Flush intervals between two checks that the sealer has a tick pending (keepScheduled). */
const SCHEDULE_CHECK_INTERVALS = 3;

/** How long after window end + grace the sealer ticks (clock skew between workers and Redis). */
const SEAL_TICK_MARGIN_MS = 100;

export type WorkerConfig = Pick<
  Config,
  | 'redisUrl'
  | 'redisClusterNodes'
  | 'keyPrefix'
  | 'partitions'
  | 'flushIntervalMs'
  | 'sealGraceMs'
  | 'pageSize'
  | 'workerConcurrency'
  | 'batchAttempts'
  | 'batchBackoffMs'
  | 'batchLockMs'
  | 'entityCacheMs'
  | 'rollupTimeZone'
  | 'bytesPerInputToken'
  | 'tokensPerOutputChunk'
  | 'usageDetailsRetentionMonths'
  | 'usageDetailsArchiveBatchSize'
  | 'usageDetailsArchiveCron'
>;

export interface WorkerDeps {
  config: WorkerConfig;
  prisma: PrismaClient;
  logger: Logger;
  /** Run the sealer in this process (default true). */
  seal?: boolean;
  /** Process batches in this process (default true). */
  process?: boolean;
  /** Counts commits and batch outcomes for /metrics (default: not counted). */
  metrics?: WorkerMetrics;
  /** Run retention (the archive scheduler and its worker) in this process (default true). */
  archive?: boolean;
  /**
   * Stored on each batch this process takes (BullMQ's processedBy, shown by the dashboard),
   * so an operator can tell which process holds a batch (default `<hostname>:<pid>`).
   */
  name?: string;
}

export interface RunningWorker {
  batches: Queue<BatchJobData, BatchResult>;
  batchWorker: Worker<BatchJobData, BatchResult> | undefined;
  archiver: RunningArchiver | undefined;
  /** Runs one sealer tick now (the scheduler runs them every flush interval). */
  sealNow(): Promise<number>;
  close(): Promise<void>;
}

export async function startWorker(deps: WorkerDeps): Promise<RunningWorker> {
  const { config, logger } = deps;
  // BullMQ needs connections that retry forever; stream reads share one of their own.
  const bullConnection = openRedis(config, { maxRetriesPerRequest: null });
  const streams = openRedis(config, { maxRetriesPerRequest: 3 });
  const prefix = config.keyPrefix;
  const batches = openBatchQueue(bullConnection, prefix);
  const sealerQueue = openSealerQueue(bullConnection, prefix);
  const bullPrefix = queuePrefix(prefix, hashTagged(bullConnection));
  let closing = false;

  const partitions = await partitionCount(streams, config.keyPrefix, config.partitions, logger);
  const sealDeps = {
    redis: streams,
    batches,
    logger,
    keyPrefix: prefix,
    partitions,
    windowMs: config.flushIntervalMs,
    graceMs: config.sealGraceMs,
    retry: { attempts: config.batchAttempts, backoffMs: config.batchBackoffMs },
  };

  const batchWorker =
    deps.process === false
      ? undefined
      : new Worker<BatchJobData, BatchResult>(
          BATCH_QUEUE,
          createBatchProcessor(
            {
              redis: streams,
              prisma: deps.prisma,
              entities: new EntityLoader(deps.prisma, config.entityCacheMs),
              logger,
              isClosing: () => closing,
              metrics: deps.metrics,
            },
            batchSettings(config),
          ),
          {
            connection: bullConnection,
            prefix: bullPrefix,
            name: deps.name ?? `${hostname()}:${process.pid}`,
            concurrency: config.workerConcurrency,
            // Batches are idempotent, so a batch whose worker died is simply run again,
            // by whichever worker's stalled check finds its lock expired.
            maxStalledCount: 1000,
            // A live worker renews its lock every lockDuration / 2; a dead one's lock
            // expires, and two stalled checks later (half a lock apart) the batch is
            // back in the queue: taken over within ~2 × TALLY_BATCH_LOCK_MS.
            lockDuration: config.batchLockMs,
            stalledInterval: Math.max(500, Math.round(config.batchLockMs / 2)),
          },
        );
  if (batchWorker !== undefined) deps.metrics?.observeBatchWorker(batchWorker);
  batchWorker?.on('failed', (job, error) => {
    if (job !== undefined && isFinalFailure(job, error)) {
      // The one line an operator must see: this batch now waits in the failed set.
      logger.error(
        {
          job: job.id,
          partition: job.data.partition,
          windowStart: new Date(job.data.windowStart).toISOString(),
          windowEnd: new Date(job.data.windowEnd).toISOString(),
          attempts: job.attemptsMade,
          err: errorLine(error),
        },
        'batch failed for good: it stays in the failed set, with its reports in the stream, until retried from the dashboard',
      );
      return;
    }
    logger.warn(
      { job: job?.id, data: job?.data, attempt: job?.attemptsMade, err: errorLine(error) },
      'batch failed; BullMQ retries it with backoff until its attempts are spent',
    );
  });
  batchWorker?.on('error', (error) => logger.error({ err: error.message }, 'batch worker error'));

  const sealerWorkers: Worker[] = [];
  let scheduleWatch: (() => void) | undefined;
  if (deps.seal !== false) {
    const schedule = () =>
      sealerQueue.upsertJobScheduler(
        'seal',
        {
          every: config.flushIntervalMs,
          // Ticks land just after a window closes (its end plus the grace), so a window
          // waits for no extra interval before it is sealed: latency ≈ window + grace.
          offset: (config.sealGraceMs + SEAL_TICK_MARGIN_MS) % config.flushIntervalMs || 1,
        },
        { name: 'seal', opts: { removeOnComplete: true, removeOnFail: 100 } },
      );
    await schedule();
    scheduleWatch = keepScheduled(
      sealerQueue,
      'seal',
      schedule,
      SCHEDULE_CHECK_INTERVALS * config.flushIntervalMs,
      logger,
      () => closing,
    );
    const pause = pauseWatch(batches, logger);
    const sealerWorker = new Worker(
      SEALER_QUEUE,
      async () => {
        await pause.check();
        // Bounded: a tick stuck on a command that never settles (seen after a Redis Cluster
        // failover) would hold the sealer's only slot, and no later tick would run.
        return withTimeout(seal(sealDeps), sealTickTimeoutMs(config.flushIntervalMs), 'Redis');
      },
      {
        connection: bullConnection,
        prefix: bullPrefix,
        concurrency: 1,
      },
    );
    sealerWorker.on('error', (error) => logger.error({ err: error.message }, 'sealer error'));
    sealerWorker.on('failed', (_job, error) =>
      logger.warn({ err: error.message }, 'sealer tick failed; the next tick tries again'),
    );
    sealerWorkers.push(sealerWorker);
  }

  const archiver =
    deps.archive === false
      ? undefined
      : await startArchiver({
          prisma: deps.prisma,
          logger,
          config,
          isClosing: () => closing,
          connection: bullConnection,
          prefix: bullPrefix,
        });

  logger.info(
    { partitions, windowMs: config.flushIntervalMs, concurrency: config.workerConcurrency },
    'worker started',
  );

  return {
    batches,
    batchWorker,
    archiver,
    sealNow: () => seal(sealDeps),
    close: async () => {
      closing = true;
      scheduleWatch?.();
      await Promise.all([
        batchWorker?.close(),
        archiver?.close(),
        ...sealerWorkers.map((w) => w.close()),
      ]);
      await Promise.all([batches.close(), sealerQueue.close()]);
      streams.disconnect();
      bullConnection.disconnect();
    },
  };
}

/**
 * The partitions to seal: the configured count, raised to cover any partition stream that
 * already exists (a producer configured with more partitions must never strand reports).
 */
async function partitionCount(
  redis: RedisClient,
  prefix: string,
  configured: number,
  logger: Logger,
): Promise<number> {
  let highest = configured - 1;
  for (const key of await scanKeys(redis, streamKeyPattern(prefix), 'stream')) {
    const p = parseStreamKey(prefix, key);
    if (p !== undefined && p > highest) highest = p;
  }
  if (highest + 1 > configured) {
    logger.warn(
      { configured, found: highest + 1 },
      'streams exist for more partitions than TALLY_PARTITIONS; sealing them all',
    );
  }
  return highest + 1;
}

/** The last attempt of a batch, or an error BullMQ will not retry. */
function isFinalFailure(job: Job<BatchJobData, BatchResult>, error: Error): boolean {
  return error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
}

/**
 * Logs when the batch queue is paused (from the dashboard) and when it is resumed: a
 * paused queue commits nothing, so a pause must never go unnoticed. Checked every sealer
 * tick; while paused, a reminder once a minute.
 */
function pauseWatch(queue: Queue<BatchJobData, BatchResult>, logger: Logger) {
  let paused = false;
  let lastWarned = 0;
  return {
    async check(): Promise<void> {
      const now = await queue.isPaused();
      if (now && (!paused || Date.now() - lastWarned >= 60_000)) {
        lastWarned = Date.now();
        logger.warn(
          { queue: queue.name },
          'batch queue is paused: no batch is committed until it is resumed (dashboard)',
        );
      } else if (!now && paused) {
        logger.info({ queue: queue.name }, 'batch queue resumed');
      }
      paused = now;
    },
  };
}
