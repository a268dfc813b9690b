// The producer SDK: validates usage reports, gives each a time-ordered report_id and
// XADDs them to N partition streams in one pipelined round trip, failing fast when Redis
// is down. Must never import PostgreSQL or BullMQ, trim a stream, or outwait its timeout.
import {
  parseReport,
  REPORT_FIELD,
  streamKey,
  type ReportProblem,
  type StoredReport,
  type UsageReportInput,
} from '../contract/index.js';
import { loadConfig, type Config } from '../config.js';
import type { Redis } from 'ioredis';
import { hashTagged, nodeForKey, type RedisClient, type RedisTarget } from '../redis.js';
import { silentLogger, type Logger } from '../logger.js';
import { InvalidReportError, RedisUnavailableError } from './errors.js';
import { Deadline, openConnection, StallWatch, untilReady } from './connection.js';
import { createUuidV7, partitionOf } from './ids.js';

const DEFAULTS = loadConfig({});

export interface UsageProducerOptions {
  /**
   * A redis:// URL or a Redis / Redis Cluster target (the producer owns that connection),
   * or a connection the caller owns (`Redis` or `Cluster`; keys are hash-tagged on a cluster).
   */
  redis: string | RedisTarget | RedisClient;
  partitions?: number;
  keyPrefix?: string;
  /** Longest a call may wait for Redis before it rejects with RedisUnavailableError. */
  timeoutMs?: number;
  /**
   * Replicas that must confirm each write (Redis WAIT) before a report is acknowledged;
   * 0 (default) acknowledges once the master has it. See docs/redis-cluster.md.
   */
  waitReplicas?: number;
  /** Longest a WAIT waits for those replicas (default 500 ms, and below `timeoutMs`). */
  waitTimeoutMs?: number;
  logger?: Logger;
}

export class UsageProducer {
  readonly partitions: number;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  readonly waitReplicas: number;
  readonly waitTimeoutMs: number;
  private readonly redis: RedisClient;
  private readonly tagged: boolean;
  private readonly ownsConnection: boolean;
  /** Bounds the calls to a single Redis this producer opened (undefined otherwise). */
  private readonly watch: StallWatch | undefined;
  private readonly nextId = createUuidV7();
  /** Each partition's stream key, by partition number. */
  private readonly streamKeys: string[];
  private closed = false;

  constructor(options: UsageProducerOptions) {
    this.partitions = options.partitions ?? DEFAULTS.partitions;
    this.keyPrefix = options.keyPrefix ?? DEFAULTS.keyPrefix;
    this.timeoutMs = options.timeoutMs ?? DEFAULTS.producerTimeoutMs;
    if (!Number.isInteger(this.partitions) || this.partitions < 1) {
      throw new RangeError(`partitions must be a whole number >= 1, got ${this.partitions}`);
    }
    if (!(this.timeoutMs > 0)) {
      throw new RangeError(`timeoutMs must be > 0, got ${this.timeoutMs}`);
    }
    this.waitReplicas = options.waitReplicas ?? DEFAULTS.redisWaitReplicas;
    this.waitTimeoutMs = options.waitTimeoutMs ?? DEFAULTS.redisWaitTimeoutMs;
    if (!Number.isInteger(this.waitReplicas) || this.waitReplicas < 0) {
      throw new RangeError(`waitReplicas must be a whole number >= 0, got ${this.waitReplicas}`);
    }
    if (this.waitReplicas > 0 && !(this.waitTimeoutMs > 0 && this.waitTimeoutMs < this.timeoutMs)) {
      throw new RangeError(
        `waitTimeoutMs must be > 0 and below timeoutMs (${this.timeoutMs}), got ${this.waitTimeoutMs}`,
      );
    }
    const target =
      typeof options.redis === 'string'
        ? { redisUrl: options.redis, redisClusterNodes: undefined }
        : 'redisUrl' in options.redis
          ? options.redis
          : undefined;
    this.ownsConnection = target !== undefined;
    const logger = options.logger ?? silentLogger;
    this.redis =
      target === undefined
        ? (options.redis as RedisClient)
        : openConnection(target, this.timeoutMs, logger);
    this.tagged = hashTagged(this.redis);
    this.watch =
      this.ownsConnection && !this.tagged
        ? new StallWatch(this.redis as Redis, this.timeoutMs, (waitedMs) =>
            logger.warn(
              { waitedMs, timeoutMs: this.timeoutMs },
              'Redis stopped answering; the calls waiting were refused and the connection is rebuilt',
            ),
          )
        : undefined;
    this.streamKeys = Array.from({ length: this.partitions }, (_, partition) =>
      streamKey(this.keyPrefix, partition, this.tagged),
    );
  }

  static fromConfig(config: Config, logger?: Logger): UsageProducer {
    return new UsageProducer({
      redis: { redisUrl: config.redisUrl, redisClusterNodes: config.redisClusterNodes },
      partitions: config.partitions,
      keyPrefix: config.keyPrefix,
      timeoutMs: config.producerTimeoutMs,
      waitReplicas: config.redisWaitReplicas,
      waitTimeoutMs: config.redisWaitTimeoutMs,
      logger,
    });
  }

  /** Validates and enqueues one report; resolves to its report_id. */
  async report(input: UsageReportInput): Promise<string> {
    const result = parseReport(input);
    if (!result.ok) throw new InvalidReportError(result.problems, [0]);
    // The parsed report is a fresh object of our own: completed in place, not copied.
    const report = result.report;
    const id = (report.report_id ??= this.nextId());
    const watch = this.watch;
    if (watch === undefined || !this.boundsItsCommands() || this.waitReplicas > 0) {
      await this.write([report as StoredReport]);
      return id;
    }
    // The common case, kept to one command and one await: on a ready single Redis this
    // producer opened, the stall watch bounds the command by timeoutMs without a timer of its
    // own, and concurrent calls share the connection's auto-pipeline.
    const key = this.streamKeys[partitionOf(id, this.partitions)] as string;
    const sent = watch.sent();
    try {
      await this.redis.xadd(key, '*', REPORT_FIELD, JSON.stringify(report));
    } catch (error) {
      throw this.unavailable([id], error instanceof Error ? error.message : String(error), error);
    } finally {
      watch.settled(sent);
    }
    return id;
  }

  /** Validates all, then enqueues all in one round trip; resolves to the report_ids in order. */
  async reportMany(inputs: UsageReportInput[]): Promise<string[]> {
    return this.write(this.prepare(inputs, true));
  }

  /** Resolves when Redis answers PING within the timeout. */
  async ping(): Promise<void> {
    await this.withRedis([], () => this.redis.ping());
  }

  /** Closes the connection if the producer opened it; a caller's connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watch?.stop();
    if (!this.ownsConnection) return;
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    const deadline = new Deadline(this.timeoutMs, () => new Error('QUIT timed out'));
    try {
      await deadline.race(this.redis.quit());
    } catch {
      this.redis.disconnect();
    } finally {
      deadline.clear();
    }
  }

  /**
   * Validates all reports and gives each without one its report_id; nothing is written.
   * Throws InvalidReportError (with item indexes in the paths when `indexed`).
   */
  prepare(inputs: UsageReportInput[], indexed: boolean): StoredReport[] {
    if (!Array.isArray(inputs)) {
      throw new InvalidReportError([{ path: '(reports)', message: 'must be an array' }], []);
    }
    const reports: StoredReport[] = [];
    const problems: ReportProblem[] = [];
    const invalidIndexes: number[] = [];
    inputs.forEach((input, index) => {
      const result = parseReport(input);
      if (result.ok) {
        // The parsed report is a fresh object of our own: completed in place, not copied.
        const report = result.report;
        report.report_id ??= this.nextId();
        reports.push(report as StoredReport);
        return;
      }
      invalidIndexes.push(index);
      const inItem = (path: string) => (path === '(report)' ? `${index}` : `${index}.${path}`);
      problems.push(...result.problems.map((p) => (indexed ? { ...p, path: inItem(p.path) } : p)));
    });
    if (problems.length > 0) throw new InvalidReportError(problems, invalidIndexes);
    return reports;
  }

  /** Writes prepared reports (each keeps its report_id) in one round trip, within the timeout. */
  async write(reports: StoredReport[]): Promise<string[]> {
    const ids = reports.map((r) => r.report_id);
    if (reports.length === 0) return ids;
    const keys = reports.map(
      (r) => this.streamKeys[partitionOf(r.report_id, this.partitions)] as string,
    );
    await this.withRedis(ids, async () => {
      if (reports.length === 1 || this.tagged) {
        // Single commands, so concurrent report() calls share the connection's
        // auto-pipeline (one write per event-loop tick, per node on a cluster, where one
        // pipeline may not span the nodes) instead of one write each.
        await Promise.all(
          reports.map((report, i) =>
            this.redis.xadd(keys[i] as string, '*', REPORT_FIELD, JSON.stringify(report)),
          ),
        );
      } else {
        const pipeline = this.redis.pipeline();
        reports.forEach((report, i) => {
          pipeline.xadd(keys[i] as string, '*', REPORT_FIELD, JSON.stringify(report));
        });
        const results = await pipeline.exec();
        if (results === null) throw new Error('the pipeline was aborted');
        const failed = results.find(([error]) => error !== null);
        if (failed?.[0]) throw failed[0];
      }
      await this.confirmReplicated(keys);
    });
    return ids;
  }

  /**
   * With `waitReplicas`, a WAIT on each node written to: the reports count as acknowledged
   * only once that many replicas hold them, so a master's failover cannot lose them.
   */
  private async confirmReplicated(keys: string[]): Promise<void> {
    if (this.waitReplicas === 0) return;
    const nodes = new Set(keys.map((key) => nodeForKey(this.redis, key)));
    await Promise.all(
      [...nodes].map(async (node) => {
        if (node === undefined) throw new Error('no cluster node serves a written partition');
        const confirmed = await node.wait(this.waitReplicas, this.waitTimeoutMs);
        if (confirmed < this.waitReplicas) {
          throw new Error(
            `${confirmed} of ${this.waitReplicas} replicas confirmed the write within ${this.waitTimeoutMs} ms`,
          );
        }
      }),
    );
  }

  /**
   * True when every command on the connection is bounded by timeoutMs without a timer per
   * call: a ready single Redis this producer opened (its StallWatch). Not a cluster: there a
   * command may wait in the cluster client's own retries (failover, redirections), so each
   * call keeps its own deadline.
   */
  private boundsItsCommands(): boolean {
    return !this.closed && this.watch !== undefined && this.redis.status === 'ready';
  }

  private unavailable(reportIds: string[], reason: string, cause?: unknown): RedisUnavailableError {
    return new RedisUnavailableError(
      `Redis is unavailable (${reason}); the reports were not acknowledged, retry them later with the same report_ids`,
      reportIds,
      { cause },
    );
  }

  /** Runs `work` once Redis is ready, all within the timeout; any failure is RedisUnavailableError. */
  private async withRedis<T>(reportIds: string[], work: () => Promise<T>): Promise<T> {
    const unavailable = (reason: string, cause?: unknown) =>
      this.unavailable(reportIds, reason, cause);
    if (this.closed) throw unavailable('the producer is closed');
    const watch = this.watch;
    if (watch !== undefined && this.boundsItsCommands()) {
      // A ready single Redis this producer opened: its stall watch bounds the call.
      const sent = watch.sent();
      try {
        return await work();
      } catch (error) {
        throw unavailable(error instanceof Error ? error.message : String(error), error);
      } finally {
        watch.settled(sent);
      }
    }
    const deadline = new Deadline(this.timeoutMs, () =>
      unavailable(`no answer within ${this.timeoutMs} ms`),
    );
    try {
      await untilReady(this.redis, deadline, unavailable);
      return await deadline.race(work());
    } catch (error) {
      if (error instanceof RedisUnavailableError) throw error;
      throw unavailable(error instanceof Error ? error.message : String(error), error);
    } finally {
      deadline.clear();
    }
  }
}
