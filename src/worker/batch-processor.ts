// Processes one sealed batch: reads its window a page at a time, commits each page in
// one transaction, and only then deletes the page's stream entries. Any failure other
// than a rejection throws, so BullMQ retries the batch; nothing is buffered in-process.
import { DelayedError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { streamKey } from '../contract/keys.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { WorkerMetrics } from '../metrics/worker.js';
import { collectRefs } from './core/entities.js';
import { parseEntries, resolveEntries, type PageRejection } from './core/page.js';
import type { EntityLoader } from './entity-loader.js';
import type { BatchJobData, BatchProgress, BatchResult } from './queues.js';
import { deleteEntries, readWindowPage } from './stream.js';
import { commitPage } from './writer.js';

export interface BatchProcessorDeps {
  redis: Redis;
  prisma: PrismaClient;
  entities: EntityLoader;
  logger: Logger;
  keyPrefix: string;
  pageSize: number;
  timeZone: string;
  bytesPerInputToken: number;
  tokensPerOutputChunk: number;
  /** True once the process is shutting down: the batch is released between pages. */
  isClosing?: () => boolean;
  metrics?: Pick<WorkerMetrics, 'pageCommitted'>;
}

export function createBatchProcessor(deps: BatchProcessorDeps) {
  return async function processBatch(
    job: Job<BatchJobData, BatchResult>,
    token?: string,
  ): Promise<BatchResult> {
    const { partition, windowStart, windowEnd } = job.data;
    const key = streamKey(deps.keyPrefix, partition);
    const log = deps.logger.child({ job: job.id, partition, window: windowStart });
    const started = performance.now();
    const progress: BatchProgress = { pages: 0, read: 0, committed: 0, duplicates: 0, rejected: 0 };
    const rejected: Record<string, number> = {};

    for (;;) {
      if (deps.isClosing?.() === true && progress.pages > 0) {
        // Release the rest of the window to another worker without spending an attempt.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError('worker shutting down; batch released between pages');
      }
      const entries = await readWindowPage(deps.redis, key, windowStart, windowEnd, deps.pageSize);
      if (entries.length === 0) break;

      const { parsed, rejected: unparsable } = parseEntries(entries, partition);
      const entities = await deps.entities.load(collectRefs(parsed.map((p) => p.report)));
      const { rows, rejected: invalid } = resolveEntries(parsed, entities, deps);
      const pageRejections: PageRejection[] = [...unparsable, ...invalid];
      const commitStarted = performance.now();
      const result = await commitPage(
        deps.prisma,
        rows,
        pageRejections.map((r) => ({ ...r, partition })),
      );
      const seconds = (performance.now() - commitStarted) / 1000;
      deps.metrics?.pageCommitted({ ...result, rejected: pageRejections, seconds });
      await deleteEntries(
        deps.redis,
        key,
        entries.map((e) => e.id),
      );

      progress.pages += 1;
      progress.read += entries.length;
      progress.committed += result.committed;
      progress.duplicates += result.duplicates;
      progress.rejected += pageRejections.length;
      for (const r of pageRejections) rejected[r.reason] = (rejected[r.reason] ?? 0) + 1;
      await job.updateProgress({ ...progress });
    }

    const summary: BatchResult = {
      committed: progress.committed,
      duplicates: progress.duplicates,
      rejected,
      pages: progress.pages,
    };
    log.info(
      { ...summary, read: progress.read, ms: Math.round(performance.now() - started) },
      'batch committed',
    );
    return summary;
  };
}
