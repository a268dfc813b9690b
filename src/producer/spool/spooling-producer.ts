// The producer as the HTTP ingest server uses it: reports are validated and given their
// report_ids first, written to Redis within the producer's deadline, and when Redis does
// not acknowledge in time they are appended to the durable spool instead, so a client
// that never retries is still answered 200 only for reports that are kept. Must never
// acknowledge a report that is neither in Redis nor synced to the spool. Times the Redis
// write and the spool append apart, through an observer it is given (no Prometheus here).
import type { StoredReport, UsageReportInput } from '../../contract/index.js';
import type { Logger } from '../../logger.js';
import { RedisUnavailableError } from '../errors.js';
import { LogThrottle } from '../log-throttle.js';
import type { UsageProducer } from '../producer.js';
import { SpoolRefusedError } from './errors.js';
import type { DiskSpool } from './spool.js';

type Inner = Pick<UsageProducer, 'prepare' | 'write' | 'ping'>;

/** Durations in seconds of the writes that succeeded, Redis and spool apart. */
export interface WriteTimings {
  /** Validation and the Redis write of a request's reports that Redis acknowledged. */
  redisWrite(seconds: number): void;
  /** The spool append (with its sync) of a request's reports Redis did not take in time. */
  spoolAppend(seconds: number): void;
}

const NO_TIMINGS: WriteTimings = { redisWrite: () => {}, spoolAppend: () => {} };
const since = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

export class SpoolingProducer {
  /** Reports appended to the spool since start. */
  spooled = 0;
  private readonly throttles = { full: new LogThrottle(), unwritable: new LogThrottle() };

  constructor(
    private readonly producer: Inner,
    private readonly spool: DiskSpool,
    private readonly logger: Logger,
    private readonly timings: WriteTimings = NO_TIMINGS,
  ) {}

  async report(input: UsageReportInput): Promise<string> {
    const started = process.hrtime.bigint();
    const [id] = await this.accept(started, this.producer.prepare([input], false));
    return id as string;
  }

  async reportMany(inputs: UsageReportInput[]): Promise<string[]> {
    const started = process.hrtime.bigint();
    return this.accept(started, this.producer.prepare(inputs, true));
  }

  async ping(): Promise<void> {
    await this.producer.ping();
  }

  private async accept(started: bigint, reports: StoredReport[]): Promise<string[]> {
    try {
      const ids = await this.producer.write(reports);
      this.timings.redisWrite(since(started));
      return ids;
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
    }
    const appending = process.hrtime.bigint();
    try {
      await this.spool.append(reports);
    } catch (error) {
      if (error instanceof SpoolRefusedError) this.logRefusal(error);
      throw error;
    }
    this.timings.spoolAppend(since(appending));
    this.spooled += reports.length;
    return reports.map((r) => r.report_id);
  }

  private logRefusal(error: SpoolRefusedError): void {
    const suppressed = this.throttles[error.reason].take();
    const fields = { reason: error.reason, dir: this.spool.dir, err: { message: error.message } };
    if (suppressed === undefined) {
      this.logger.debug(fields, 'spool refused reports');
      return;
    }
    this.logger.error(
      { ...fields, suppressed },
      error.reason === 'full'
        ? 'Redis is unavailable and the spool is full: answering 503, reports from clients that do not retry are lost'
        : 'Redis is unavailable and the spool is not writable: answering 503, reports from clients that do not retry are lost',
    );
  }
}
