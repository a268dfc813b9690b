// Retention: moves audit rows past TALLY_USAGE_DETAILS_RETENTION_MONTHS from
// model_usage_details to model_usage_details_archive, a batch per statement, so a crash
// anywhere leaves every row in exactly one of the two tables. Runs from its own BullMQ
// queue whose one job scheduler fires on a cron (UTC): one run per slot however many
// workers there are, and never on the batch queue, so it cannot hold up a commit. Must
// never change a row's values, nor touch model_usages (rollups have no retention).
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { ARCHIVE_QUEUE } from '../contract/keys.js';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { errorLine, type Logger } from '../logger.js';
import { retentionCutoff } from './core/retention.js';
import { keepScheduled } from './queues.js';
import { ARCHIVE_LOCK_KEYS } from './writer.js';

/** One scheduler id: every worker upserts the same one, so each cron slot makes one job. */
export const ARCHIVE_SCHEDULER_ID = 'archive-usage-details';

export type ArchiveConfig = Pick<
  Config,
  'usageDetailsRetentionMonths' | 'usageDetailsArchiveBatchSize' | 'usageDetailsArchiveCron'
>;

export interface ArchiveResult {
  /** The cutoff, ISO: rows whose completed_at (else created_at) is before it were moved. */
  cutoff: string;
  moved: number;
  batches: number;
}

const HOT = 'model_usage_details';
const ARCHIVE = 'model_usage_details_archive';

/**
 * The columns both tables have, read from the database so the move carries every column
 * of whichever schema is installed (GPUStack's plus Tally's). Throws when they differ: a
 * column only one table has would be lost or left empty by the move.
 */
export async function archiveColumns(prisma: PrismaClient): Promise<string[]> {
  const rows = await prisma.$queryRaw<{ table_name: string; column_name: string }[]>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name IN (${HOT}, ${ARCHIVE})
    ORDER BY ordinal_position`;
  const hot = rows.filter((r) => r.table_name === HOT).map((r) => r.column_name);
  const archive = new Set(rows.filter((r) => r.table_name === ARCHIVE).map((r) => r.column_name));
  const differ = hot
    .filter((c) => !archive.has(c))
    .concat([...archive].filter((c) => !hot.includes(c)));
  if (hot.length === 0 || archive.size === 0 || differ.length > 0) {
    throw new Error(
      `${HOT} and ${ARCHIVE} must have the same columns to move rows between them (differing: ${differ.join(', ') || 'a table is missing'}); run \`npm run migrate\``,
    );
  }
  return hot;
}

/**
 * Moves up to `batchSize` of the oldest-id rows past `cutoff` in ONE statement, under the
 * archive lock taken alone: the DELETE and the INSERT commit together or not at all. A row
 * whose id the archive already holds (moved before by someone else) is deleted from the hot
 * table only, as GPUStack's archiver does. Returns how many rows left the hot table.
 */
export async function archiveBatch(
  prisma: PrismaClient,
  columns: readonly string[],
  cutoff: Date,
  batchSize: number,
): Promise<number> {
  const list = columns.map((c) => `"${c.replaceAll('"', '""')}"`).join(', ');
  // Timestamps are naive UTC (GPUStack's TIMESTAMP without time zone): compare in UTC.
  // Two branches rather than coalesce() so each can use its own index, as GPUStack's does.
  // Alone under the archive lock: page commits wait until this batch is committed, so none
  // can miss a report_id it moves (ARCHIVE_LOCK_KEYS in writer.ts).
  const [, [row]] = await prisma.$transaction([
    prisma.$queryRawUnsafe(`SELECT pg_advisory_xact_lock(${ARCHIVE_LOCK_KEYS})::text AS locked`),
    prisma.$queryRawUnsafe<{ moved: number }[]>(
      `WITH victims AS (
       SELECT id FROM ${HOT}
       WHERE (completed_at IS NOT NULL AND completed_at < ($1::timestamptz AT TIME ZONE 'UTC'))
          OR (completed_at IS NULL AND created_at < ($1::timestamptz AT TIME ZONE 'UTC'))
       ORDER BY id LIMIT $2
     ),
     moved AS (
       DELETE FROM ${HOT} h USING victims v WHERE h.id = v.id RETURNING h.*
     ),
     archived AS (
       INSERT INTO ${ARCHIVE} (${list}) SELECT ${list} FROM moved
       ON CONFLICT (id) DO NOTHING RETURNING 1
     )
     SELECT (SELECT count(*) FROM moved)::int AS moved`,
      cutoff.toISOString(),
      batchSize,
    ),
  ]);
  return row?.moved ?? 0;
}

export interface ArchiveDeps {
  prisma: PrismaClient;
  logger: Logger;
  config: ArchiveConfig;
  /** The clock (default: Date.now). */
  now?: () => number;
  /** Stop between batches when this turns true (shutdown); the next run continues. */
  isClosing?: () => boolean;
}

/** One retention run: batches until none is left past the cutoff (or shutdown). */
export async function archiveExpired(deps: ArchiveDeps): Promise<ArchiveResult> {
  const { prisma, config } = deps;
  const cutoff = retentionCutoff(
    new Date((deps.now ?? Date.now)()),
    config.usageDetailsRetentionMonths,
  );
  const columns = await archiveColumns(prisma);
  let moved = 0;
  let batches = 0;
  for (;;) {
    if (deps.isClosing?.() === true) break;
    const n = await archiveBatch(prisma, columns, cutoff, config.usageDetailsArchiveBatchSize);
    if (n === 0) break;
    moved += n;
    batches += 1;
  }
  const result = { cutoff: cutoff.toISOString(), moved, batches };
  if (moved > 0) deps.logger.info(result, 'audit rows past retention moved to the archive');
  return result;
}

/** How often a worker checks that the archive schedule still has its next run pending. */
const ARCHIVE_SCHEDULE_CHECK_MS = 60_000;

export interface RunningArchiver {
  queue: Queue<unknown, ArchiveResult>;
  worker: Worker<unknown, ArchiveResult>;
  close(): Promise<void>;
}

/**
 * Upserts the archive scheduler (cron in UTC) and starts this process's archive worker.
 * Every worker process does the same; BullMQ makes one job per slot and hands it to one.
 */
export async function startArchiver(
  deps: ArchiveDeps & { connection: ConnectionOptions; prefix: string },
): Promise<RunningArchiver> {
  const { connection, prefix, logger, config } = deps;
  const queue = new Queue<unknown, ArchiveResult>(ARCHIVE_QUEUE, { connection, prefix });
  const schedule = () =>
    queue.upsertJobScheduler(
      ARCHIVE_SCHEDULER_ID,
      { pattern: config.usageDetailsArchiveCron, tz: 'UTC' },
      {
        name: 'archive',
        opts: {
          // A failed run (database down) is retried; the next slot catches up anyway.
          attempts: 5,
          backoff: { type: 'exponential', delay: 60_000 },
          removeOnComplete: { count: 100 },
          removeOnFail: { count: 100 },
        },
      },
    );
  await schedule();
  let closing = false;
  const stopWatch = keepScheduled(
    queue,
    ARCHIVE_SCHEDULER_ID,
    schedule,
    ARCHIVE_SCHEDULE_CHECK_MS,
    logger,
    () => closing,
  );
  const worker = new Worker<unknown, ArchiveResult>(
    ARCHIVE_QUEUE,
    (_job: Job) => archiveExpired(deps),
    { connection, prefix, concurrency: 1 },
  );
  worker.on('error', (error) => logger.error({ err: error.message }, 'archive worker error'));
  worker.on('failed', (job, error) => {
    const fields = { job: job?.id, attempt: job?.attemptsMade, err: errorLine(error) };
    if (job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1)) {
      // Attempts spent: no retry of this slot; the next cron slot runs again.
      logger.error(
        { ...fields, attempts: job.attemptsMade },
        'moving audit rows to the archive failed after all its attempts; the next scheduled run tries again, rows stay where they are',
      );
      return;
    }
    logger.warn(
      fields,
      'moving audit rows to the archive failed; retried with backoff, rows stay where they are',
    );
  });
  return {
    queue,
    worker,
    close: async () => {
      closing = true;
      stopWatch();
      await worker.close();
      await queue.close();
    },
  };
}
