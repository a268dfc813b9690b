// Moves spooled reports back into their partition streams, oldest segment first, as soon
// as Redis answers: each segment's records are XADDed in chunks with their report_ids, and
// the segment is deleted only after every chunk was acknowledged. A report that reached
// Redis twice (a write that landed after its timeout, then the spool's copy) is counted
// once by the worker's dedup on report_id. Logs the spool's depth while it holds reports.
// Must never delete a segment before Redis acknowledged all of it.
import type { StoredReport } from '../../contract/index.js';
import { errorLine, type Logger } from '../../logger.js';
import type { DiskSpool } from './spool.js';

export interface DrainTarget {
  ping(): Promise<void>;
  write(reports: StoredReport[]): Promise<string[]>;
}

export interface DrainerOptions {
  /** Reports per pipelined write. */
  chunkReports?: number;
  /** Wait after a failed attempt; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  /** How often the depth is logged while the spool is not empty. */
  logEveryMs?: number;
  now?: () => number;
}

export class SpoolDrainer {
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private lastLogAt = Number.NEGATIVE_INFINITY;
  private wasEmpty = true;
  private idle = false;
  private readonly unsubscribe: () => void;
  private readonly chunkReports: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly logEveryMs: number;
  private readonly now: () => number;
  /** Reports written back into Redis since start. */
  drained = 0;

  constructor(
    private readonly spool: DiskSpool,
    private readonly target: DrainTarget,
    private readonly logger: Logger,
    options: DrainerOptions = {},
  ) {
    this.chunkReports = options.chunkReports ?? 500;
    this.retryMs = options.retryMs ?? 250;
    this.maxRetryMs = options.maxRetryMs ?? 2_000;
    this.logEveryMs = options.logEveryMs ?? 10_000;
    this.now = options.now ?? Date.now;
    // Only an idle drainer is woken by an append: one backing off after a failure keeps
    // its pace, or every spooled request during an outage would cost a PING.
    this.unsubscribe = spool.onAppend(() => {
      if (this.idle) this.wake?.();
    });
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    let delay = this.retryMs;
    while (!this.stopped) {
      this.logDepth();
      if (this.spool.stats().reports === 0) {
        this.idle = true;
        await this.sleep(1_000);
        this.idle = false;
        continue;
      }
      try {
        await this.target.ping();
        await this.drainOldest();
        delay = this.retryMs;
      } catch (error) {
        this.logger.debug({ err: { message: errorLine(error) } }, 'spool drain attempt failed');
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.maxRetryMs);
      }
    }
  }

  private async drainOldest(): Promise<void> {
    const segment = await this.spool.oldest();
    if (segment === undefined) return;
    const records = segment.records;
    let index = segment.recordsDone;
    while (index < records.length) {
      if (this.stopped) return;
      let end = index;
      const chunk: StoredReport[] = [];
      while (end < records.length && (chunk.length === 0 || chunk.length < this.chunkReports)) {
        chunk.push(...(records[end]?.reports ?? []));
        end += 1;
      }
      await this.target.write(chunk);
      segment.advance(end - index);
      this.drained += chunk.length;
      index = end;
    }
    await segment.remove();
  }

  private logDepth(): void {
    const stats = this.spool.stats();
    if (stats.reports === 0) {
      if (!this.wasEmpty) this.logger.info({ drained: this.drained }, 'spool drained; it is empty');
      this.wasEmpty = true;
      return;
    }
    this.wasEmpty = false;
    const at = this.now();
    if (at - this.lastLogAt < this.logEveryMs) return;
    this.lastLogAt = at;
    this.logger.warn(
      {
        reports: stats.reports,
        bytes: stats.bytes,
        maxBytes: stats.maxBytes,
        oldestAgeSeconds: Math.round((at - (stats.oldestSpooledAt ?? at)) / 1000),
      },
      'spool holds reports Redis has not acknowledged; draining them as soon as it answers',
    );
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }
}
