// The producer as the HTTP ingest server uses it: reports are validated and given their
// report_ids first, written to Redis within the producer's deadline, and when Redis does
// not acknowledge in time they are appended to the durable spool instead, so a client
// that never retries is still answered 200 only for reports that are kept. Must never
// acknowledge a report that is neither in Redis nor synced to the spool.
import type { StoredReport, UsageReportInput } from '../../contract/index.js';
import type { Logger } from '../../logger.js';
import { RedisUnavailableError } from '../errors.js';
import { LogThrottle } from '../log-throttle.js';
import type { UsageProducer } from '../producer.js';
import { SpoolRefusedError } from './errors.js';
import type { DiskSpool } from './spool.js';

type Inner = Pick<UsageProducer, 'prepare' | 'write' | 'ping'>;

export class SpoolingProducer {
  /** Reports appended to the spool since start. */
  spooled = 0;
  private readonly throttles = { full: new LogThrottle(), unwritable: new LogThrottle() };

  constructor(
    private readonly producer: Inner,
    private readonly spool: DiskSpool,
    private readonly logger: Logger,
  ) {}

  async report(input: UsageReportInput): Promise<string> {
    const [id] = await this.accept(this.producer.prepare([input], false));
    return id as string;
  }

  async reportMany(inputs: UsageReportInput[]): Promise<string[]> {
    return this.accept(this.producer.prepare(inputs, true));
  }

  async ping(): Promise<void> {
    await this.producer.ping();
  }

  private async accept(reports: StoredReport[]): Promise<string[]> {
    try {
      return await this.producer.write(reports);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
    }
    try {
      await this.spool.append(reports);
    } catch (error) {
      if (error instanceof SpoolRefusedError) this.logRefusal(error);
      throw error;
    }
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
