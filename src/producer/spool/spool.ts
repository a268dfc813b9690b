// The ingest server's durable spool: reports Redis did not acknowledge in time are appended
// to segment files in one directory and made durable (fdatasync) before the request is
// answered; concurrent appends share one write and one fdatasync (group commit). The
// drainer takes segments back out oldest first and deletes one only once every report in
// it reached Redis. Bounded by maxBytes; memory holds per-segment counts, never reports.
// Must never acknowledge an append before its bytes are synced, nor append after a failed
// write to the same segment (its tail may be torn).
import { mkdir, open, readdir, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredReport } from '../../contract/index.js';
import type { Logger } from '../../logger.js';
import { SpoolRefusedError } from './errors.js';
import { decodeSegment, encodeRecord, type SpoolRecord } from './format.js';
import { acquireLock, type SpoolLock } from './lock.js';

const SEGMENT_PATTERN = /^segment-(\d{12})\.spool$/;
const segmentName = (seq: number) => `segment-${String(seq).padStart(12, '0')}.spool`;

export interface SpoolOptions {
  dir: string;
  /** Appends that would take the segments past this many bytes are refused. */
  maxBytes: number;
  /** A segment is closed for appends once it reaches this size. */
  segmentBytes?: number;
  logger: Logger;
  now?: () => number;
}

export interface SpoolStats {
  /** Reports spooled and not yet acknowledged by Redis. */
  reports: number;
  /** Bytes of segment files on disk (a segment is deleted only when wholly drained). */
  bytes: number;
  maxBytes: number;
  segments: number;
  /** When the oldest report still spooled was spooled (UnixMilli), if any. */
  oldestSpooledAt: number | undefined;
}

interface Segment {
  seq: number;
  path: string;
  bytes: number;
  reports: number;
  drained: number;
  oldestAt: number | undefined;
  /** Open for appends (the active segment only). */
  handle?: FileHandle;
  /** The write in progress into this segment, if any. */
  writing?: Promise<void>;
}

interface Pending {
  frame: Buffer;
  record: SpoolRecord;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A sealed segment handed to the drainer, with its records decoded. */
export interface DrainableSegment {
  seq: number;
  records: SpoolRecord[];
  /** Records of `records` already written to Redis by an earlier attempt of this process. */
  recordsDone: number;
  /** Marks `count` more records as acknowledged by Redis. */
  advance(count: number): void;
  /** Deletes the segment: every report in it is acknowledged. */
  remove(): Promise<void>;
}

export class DiskSpool {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly segments: Segment[] = [];
  private readonly recordsDone = new Map<number, number>();
  private active: Segment | undefined;
  private nextSeq: number;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private flushing = false;
  private closed = false;
  private readonly listeners = new Set<() => void>();
  /** fdatasync calls so far: with group commit, fewer than the appends they made durable. */
  syncs = 0;
  /** The last write failure's message, until a write succeeds again. */
  writeError: string | undefined;

  private constructor(
    options: SpoolOptions,
    private readonly lock: SpoolLock,
    nextSeq: number,
  ) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.segmentBytes = options.segmentBytes ?? 8 * 1024 * 1024;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.nextSeq = nextSeq;
  }

  /**
   * Creates the directory if needed, takes its lock, and indexes what an earlier run left
   * (a torn or damaged record is skipped with a warning). Throws SpoolLockedError when a
   * live process holds the directory.
   */
  static async open(options: SpoolOptions): Promise<DiskSpool> {
    if (!(options.maxBytes > 0)) throw new RangeError('maxBytes must be > 0');
    await mkdir(options.dir, { recursive: true });
    const lock = await acquireLock(options.dir);
    if (lock.tookOverFrom !== undefined) {
      options.logger.warn(
        { dir: options.dir, previousPid: lock.tookOverFrom },
        'spool lock left by a process that no longer runs; taking it over',
      );
    }
    try {
      const names = (await readdir(options.dir))
        .map((name) => ({ name, match: SEGMENT_PATTERN.exec(name) }))
        .filter((e) => e.match !== null)
        .map((e) => ({ name: e.name, seq: Number(e.match?.[1]) }))
        .sort((a, b) => a.seq - b.seq);
      const spool = new DiskSpool(options, lock, (names.at(-1)?.seq ?? 0) + 1);
      for (const { name, seq } of names) {
        const path = join(options.dir, name);
        const { records, bytes } = await spool.readSegment(path, seq);
        const reports = records.reduce((n, r) => n + r.reports.length, 0);
        if (reports === 0) {
          await unlink(path);
          continue;
        }
        spool.segments.push({
          seq,
          path,
          bytes,
          reports,
          drained: 0,
          oldestAt: records[0]?.spooledAt,
        });
      }
      const stats = spool.stats();
      if (stats.reports > 0) {
        options.logger.warn(
          { dir: options.dir, reports: stats.reports, bytes: stats.bytes },
          'spool holds reports from an earlier run; draining them into Redis',
        );
      }
      return spool;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Calls `listener` whenever an append became durable. */
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): SpoolStats {
    let reports = 0;
    let bytes = 0;
    let oldestSpooledAt: number | undefined;
    for (const s of this.segments) {
      reports += Math.max(0, s.reports - s.drained);
      bytes += s.bytes;
      if (oldestSpooledAt === undefined && s.reports > s.drained) oldestSpooledAt = s.oldestAt;
    }
    return {
      reports,
      bytes,
      maxBytes: this.maxBytes,
      segments: this.segments.length,
      oldestSpooledAt,
    };
  }

  /**
   * Appends the reports as one record; resolves once they are on disk (fdatasync). Rejects
   * with SpoolRefusedError: `full` when they do not fit within maxBytes, `unwritable` when
   * the write or the sync failed (nothing is acknowledged then).
   */
  async append(reports: StoredReport[]): Promise<void> {
    if (this.closed) throw new SpoolRefusedError('unwritable', 'the spool is closed', reports);
    const record: SpoolRecord = { spooledAt: this.now(), reports };
    const frame = encodeRecord(record);
    const used = this.stats().bytes + this.queuedBytes;
    if (used + frame.length > this.maxBytes) {
      throw new SpoolRefusedError(
        'full',
        `the spool at ${this.dir} is full (${used} of ${this.maxBytes} bytes, TALLY_SPOOL_MAX_BYTES)`,
        reports,
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, record, resolve, reject });
      this.queuedBytes += frame.length;
      if (!this.flushing) void this.flush();
    });
  }

  /**
   * The oldest segment with reports left, decoded; the active segment is sealed first (new
   * appends go to a new one). Undefined when the spool is empty.
   */
  async oldest(): Promise<DrainableSegment | undefined> {
    const segment = this.segments.find((s) => s.reports > s.drained);
    if (segment === undefined) return undefined;
    if (segment === this.active) await this.seal(segment);
    await segment.writing;
    const { records } = await this.readSegment(segment.path, segment.seq);
    const recordsDone = this.recordsDone.get(segment.seq) ?? 0;
    return {
      seq: segment.seq,
      records,
      recordsDone,
      advance: (count) => {
        const done = (this.recordsDone.get(segment.seq) ?? 0) + count;
        this.recordsDone.set(segment.seq, done);
        segment.drained = records.slice(0, done).reduce((n, r) => n + r.reports.length, 0);
        segment.oldestAt = records[done]?.spooledAt ?? segment.oldestAt;
      },
      remove: async () => {
        // Out of the counts first: every report in it is in Redis now. A file that cannot be
        // deleted is drained again by the next start, and counted once by the worker.
        this.recordsDone.delete(segment.seq);
        this.segments.splice(this.segments.indexOf(segment), 1);
        await unlink(segment.path);
      },
    };
  }

  /** Waits for appends in progress, closes the active segment and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing || this.queue.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (this.active !== undefined) await this.seal(this.active);
    await this.lock.release();
  }

  /** Writes everything queued, one write and one fdatasync per round, until the queue is empty. */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const bytes = batch.reduce((n, p) => n + p.frame.length, 0);
        this.queuedBytes -= bytes;
        let segment: Segment | undefined;
        try {
          segment = await this.activeSegment();
          // The drainer may seal it while we waited; the check and the write start are synchronous.
          while (segment.handle === undefined) segment = await this.activeSegment();
          const target = segment;
          const write = this.writeAndSync(target, Buffer.concat(batch.map((p) => p.frame)));
          target.writing = write;
          await write;
          target.bytes += bytes;
          target.reports += batch.reduce((n, p) => n + p.record.reports.length, 0);
          target.oldestAt ??= batch[0]?.record.spooledAt;
          this.writeError = undefined;
          for (const p of batch) p.resolve();
          for (const listener of this.listeners) listener();
        } catch (error) {
          // The segment may end in a torn record now: never append after it.
          if (segment !== undefined) await this.seal(segment, true).catch(() => undefined);
          const message = `the spool at ${this.dir} is not writable: ${(error as Error).message}`;
          this.writeError = message;
          for (const p of batch) {
            p.reject(
              new SpoolRefusedError('unwritable', message, p.record.reports, { cause: error }),
            );
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async writeAndSync(segment: Segment, buffer: Buffer): Promise<void> {
    const handle = segment.handle;
    if (handle === undefined) throw new Error('segment is sealed');
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
      offset += bytesWritten;
    }
    await handle.datasync();
    this.syncs += 1;
  }

  /** The segment appends go to, opening a new one (and syncing the directory) when needed. */
  private async activeSegment(): Promise<Segment> {
    if (this.active !== undefined && this.active.bytes < this.segmentBytes) return this.active;
    if (this.active !== undefined) await this.seal(this.active);
    const seq = this.nextSeq++;
    const path = join(this.dir, segmentName(seq));
    const handle = await open(path, 'ax');
    try {
      // The new file's directory entry must be durable before a record in it is acknowledged.
      const dir = await open(this.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (error) {
      await handle.close();
      await unlink(path).catch(() => undefined);
      throw error;
    }
    const segment: Segment = {
      seq,
      path,
      bytes: 0,
      reports: 0,
      drained: 0,
      oldestAt: undefined,
      handle,
    };
    this.segments.push(segment);
    this.active = segment;
    return segment;
  }

  /** Closes a segment for appends; an empty one is deleted. */
  private async seal(segment: Segment, afterFailure = false): Promise<void> {
    if (this.active === segment) this.active = undefined;
    const handle = segment.handle;
    segment.handle = undefined;
    if (!afterFailure) await segment.writing?.catch(() => undefined);
    await handle?.close();
    if (afterFailure)
      segment.bytes = await stat(segment.path).then(
        (s) => s.size,
        () => segment.bytes,
      );
    if (segment.reports === 0) {
      this.segments.splice(this.segments.indexOf(segment), 1);
      await unlink(segment.path).catch(() => undefined);
    }
  }

  private async readSegment(
    path: string,
    seq: number,
  ): Promise<{ records: SpoolRecord[]; bytes: number }> {
    const buffer = await readFile(path);
    const decoded = decodeSegment(buffer);
    if (decoded.damage !== undefined) {
      this.logger.warn(
        {
          segment: seq,
          offset: decoded.damage.offset,
          reason: decoded.damage.reason,
          skippedBytes: buffer.length - decoded.damage.offset,
          keptRecords: decoded.records.length,
        },
        decoded.damage.reason === 'torn'
          ? 'spool segment ends in a torn record (a write cut short); skipping it'
          : 'spool segment has a record whose checksum does not match; skipping the rest of the segment',
      );
    }
    return { records: decoded.records, bytes: buffer.length };
  }
}
