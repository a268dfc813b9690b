// Processes one sealed batch: reads its window a page at a time, commits each page in
// one transaction, and only then deletes the page's stream entries. A report the database
// can never store is isolated and rejected (isolation.ts); any other failure throws, so
// BullMQ retries the batch; nothing is buffered in-process.
// Must never delete a page before its commit, nor hand the pure core an I/O handle.
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { hashTagged, type RedisClient } from '../redis.js';
import type { Config } from '../config.js';
import { streamKey } from '../contract/keys.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { WorkerMetrics } from '../metrics/worker.js';
import { collectRefs } from './core/entities.js';
import { parseEntries, resolveEntries } from './core/page.js';
import type { ResolveSettings } from './core/resolve.js';
import type { EntityLoader } from './entity-loader.js';
import { invalidBatch, type BatchJobData, type BatchProgress, type BatchResult } from './queues.js';
import { deleteEntries, readEntries, readWindowPage } from './stream.js';
import { commitIsolating } from './isolation.js';
import { pageRows } from './writer.js';

/** The I/O a batch needs, passed in so a test hands it real, isolated instances. */
export interface BatchIo {
  redis: RedisClient;
  prisma: PrismaClient;
  entities: EntityLoader;
  logger: Logger;
  /** True once the process is shutting down: the batch is released between pages. */
  isClosing?: () => boolean;
  metrics?: Pick<WorkerMetrics, 'pageCommitted'>;
}

/** Plain data from configuration; the pure core gets only its `ResolveSettings` part. */
export interface BatchSettings extends ResolveSettings {
  keyPrefix: string;
  pageSize: number;
  /** Window length: a batch must name one whole window (see invalidBatch). */
  windowMs: number;
}

export function batchSettings(
  config: Pick<
    Config,
    | 'keyPrefix'
    | 'pageSize'
    | 'flushIntervalMs'
    | 'rollupTimeZone'
    | 'bytesPerInputToken'
    | 'tokensPerOutputChunk'
  >,
): BatchSettings {
  return {
    keyPrefix: config.keyPrefix,
    pageSize: config.pageSize,
    windowMs: config.flushIntervalMs,
    timeZone: config.rollupTimeZone,
    bytesPerInputToken: config.bytesPerInputToken,
    tokensPerOutputChunk: config.tokensPerOutputChunk,
  };
}

export function createBatchProcessor(io: BatchIo, settings: BatchSettings) {
  const resolveSettings: ResolveSettings = {
    timeZone: settings.timeZone,
    bytesPerInputToken: settings.bytesPerInputToken,
    tokensPerOutputChunk: settings.tokensPerOutputChunk,
  };
  /**
   * Reads the window's next page and makes what its commit needs: the entry ids (deleted after
   * the commit), the audit rows as one text, the rejections, and `rawOf` for isolation. The
   * entries' text, the parsed reports and their audit rows end with this call, before the
   * commit's round trips: what outlives a round trip is promoted to V8's old generation and
   * costs a full collection.
   */
  async function nextPage(key: string, partition: number, windowStart: number, windowEnd: number) {
    const entries = await readWindowPage(io.redis, key, windowStart, windowEnd, settings.pageSize);
    const [first] = entries;
    const last = entries.at(-1);
    if (first === undefined || last === undefined) return undefined;
    const { parsed, rejected: unparsable } = parseEntries(entries, partition);
    const entities = await io.entities.load(collectRefs(parsed.map((p) => p.report)));
    const { rows, rejected: invalid } = resolveEntries(parsed, entities, resolveSettings);
    const ids = entries.map((e) => e.id);
    // Only isolation asks for a report's raw text. The page stays in the stream until its
    // commit, so its entries are read again for that. `rawOf` keeps the two ids, not the
    // entries, so the entries' text can die with this call.
    const [firstId, lastId] = [first.id, last.id];
    let raws: Promise<Map<string, string>> | undefined;
    const rawOf = async (id: string) => {
      raws ??= readEntries(io.redis, key, firstId, lastId, ids.length).then(
        (again) =>
          new Map(parseEntries(again, partition).parsed.map((p) => [p.report.report_id, p.raw])),
      );
      const raw = (await raws).get(id);
      // Gone only if another delivery of this window committed the page meanwhile (and
      // recorded this rejection with its text): retrying the batch moves past the page.
      if (raw === undefined) throw new Error(`the stream entry of report ${id} is gone`);
      return raw;
    };
    return { ids, rows: pageRows(rows), rejected: [...unparsable, ...invalid], rawOf };
  }

  return async function processBatch(
    job: Job<BatchJobData, BatchResult>,
    token?: string,
  ): Promise<BatchResult> {
    const invalid = invalidBatch(job.id, job.data, settings.windowMs);
    if (invalid !== undefined) throw new UnrecoverableError(`refused batch job: ${invalid}`);
    const { partition, windowStart, windowEnd } = job.data;
    const key = streamKey(settings.keyPrefix, partition, hashTagged(io.redis));
    const log = io.logger.child({ job: job.id, partition, window: windowStart });
    const started = performance.now();
    const progress: BatchProgress = { pages: 0, read: 0, committed: 0, duplicates: 0, rejected: 0 };
    const rejectedByReason: Record<string, number> = {};

    for (;;) {
      if (io.isClosing?.() === true && progress.pages > 0) {
        // Release the rest of the window to another worker without spending an attempt.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError('worker shutting down; batch released between pages');
      }
      // 1. read  2. parse  3. load entities  4. resolve  5. commit  6. delete
      const page = await nextPage(key, partition, windowStart, windowEnd);
      if (page === undefined) break;
      const commitStarted = performance.now();
      const result = await commitIsolating(
        { prisma: io.prisma, partition, rawOf: page.rawOf },
        page.rows,
        page.rejected,
      );
      const rejected = [...page.rejected, ...result.isolated];
      const seconds = (performance.now() - commitStarted) / 1000;
      io.metrics?.pageCommitted({ ...result, rejected, seconds });
      if (result.isolated.length > 0) {
        log.warn(
          { isolated: result.isolated.length, commits: result.commits },
          'page split to isolate reports the database refuses for good; they are rejected',
        );
      }
      await deleteEntries(io.redis, key, page.ids);

      progress.pages += 1;
      progress.read += page.ids.length;
      progress.committed += result.committed;
      progress.duplicates += result.duplicates;
      progress.rejected += rejected.length;
      for (const r of rejected) rejectedByReason[r.reason] = (rejectedByReason[r.reason] ?? 0) + 1;
      await job.updateProgress({ ...progress });
    }

    const summary: BatchResult = {
      committed: progress.committed,
      duplicates: progress.duplicates,
      rejected: rejectedByReason,
      pages: progress.pages,
    };
    log.info(
      { ...summary, read: progress.read, ms: Math.round(performance.now() - started) },
      'batch committed',
    );
    return summary;
  };
}
