// The ingest role's metrics: reports accepted, requests refused by status, request
// duration, the time the SDK takes to write a request's reports to Redis, and (with the
// spool on) the time a spool append takes when Redis did not answer. Hooks in
// from outside the server (a fastify hook and a producer wrapper), so the ingest code
// stays unaware of Prometheus. Must never label by user, key, model or token.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import type { UsageProducer } from '../producer/producer.js';
import type { WriteTimings } from '../producer/spool/spooling-producer.js';

/** Request latencies of a JSON endpoint: 1 ms to 10 s. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class IngestMetrics {
  readonly reportsAccepted: Counter;
  readonly requestsRefused: Counter<'status'>;
  readonly requestDuration: Histogram<'route' | 'status'>;
  readonly redisWriteDuration: Histogram;
  readonly spoolAppendDuration: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.reportsAccepted = new Counter({
      name: 'tally_ingest_reports_accepted_total',
      help: 'Reports acknowledged to a gateway (written to a partition stream, or to the spool when Redis did not answer in time).',
      registers,
    });
    this.requestsRefused = new Counter({
      name: 'tally_ingest_requests_refused_total',
      help: 'HTTP requests answered with a 4xx or 5xx status, by status.',
      labelNames: ['status'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'tally_ingest_request_duration_seconds',
      help: 'Time from request received to response sent, by route and status.',
      labelNames: ['route', 'status'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.redisWriteDuration = new Histogram({
      name: 'tally_ingest_redis_write_duration_seconds',
      help: "Time the producer took to validate and write one request's reports to Redis (one pipelined round trip), successful writes only; a request that went to the spool is not counted here.",
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.spoolAppendDuration = new Histogram({
      name: 'tally_ingest_spool_append_duration_seconds',
      help: "Time ingest took to append and sync one request's reports to the spool after Redis did not answer in time, successful appends only.",
      buckets: REQUEST_BUCKETS,
      registers,
    });
  }

  /** The spooling producer's timings, Redis writes and spool appends apart. */
  writeTimings(): WriteTimings {
    return {
      redisWrite: (seconds) => this.redisWriteDuration.observe(seconds),
      spoolAppend: (seconds) => this.spoolAppendDuration.observe(seconds),
    };
  }
}

type IngestProducer = Pick<UsageProducer, 'report' | 'reportMany' | 'ping'>;

/**
 * Wraps the producer the ingest server calls: counts accepted reports, and times each
 * write as a Redis write unless `timesItself` (the spooling producer, which times its
 * Redis writes and spool appends apart through `IngestMetrics.writeTimings`).
 */
export function instrumentProducer(
  producer: IngestProducer,
  metrics: IngestMetrics,
  timesItself = false,
): IngestProducer {
  const timed = async <T>(write: () => Promise<T>, count: (result: T) => number): Promise<T> => {
    const stop = timesItself ? undefined : metrics.redisWriteDuration.startTimer();
    const result = await write();
    stop?.();
    metrics.reportsAccepted.inc(count(result));
    return result;
  };
  return {
    report: (report) =>
      timed(
        () => producer.report(report),
        () => 1,
      ),
    reportMany: (reports) =>
      timed(
        () => producer.reportMany(reports),
        (ids) => ids.length,
      ),
    ping: () => producer.ping(),
  };
}

/** Observes every response of a role's server (ingest, or all-in-one). */
export function observeRequests(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>,
  metrics: IngestMetrics,
): void {
  app.addHook('onResponse', async (request, reply) => {
    const status = String(reply.statusCode);
    // Unknown paths share one label value, so a scanner cannot mint new series.
    const route = request.routeOptions.url ?? '(none)';
    metrics.requestDuration.observe({ route, status }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) metrics.requestsRefused.inc({ status });
  });
}

interface SpoolView {
  stats(): {
    reports: number;
    bytes: number;
    maxBytes: number;
    oldestSpooledAt: number | undefined;
  };
}

/** The ingest spool's depth, bound and oldest report's age, read at each scrape. */
export function observeSpool(
  registry: Registry,
  spool: SpoolView,
  spooled: () => number,
  now: () => number = Date.now,
): void {
  const registers = [registry];
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value());
      },
    });
  gauge(
    'tally_ingest_spool_reports',
    'Reports in the ingest spool not yet written to Redis.',
    () => spool.stats().reports,
  );
  gauge(
    'tally_ingest_spool_bytes',
    'Bytes of the ingest spool segment files on disk.',
    () => spool.stats().bytes,
  );
  gauge(
    'tally_ingest_spool_max_bytes',
    'The ingest spool bound (TALLY_SPOOL_MAX_BYTES).',
    () => spool.stats().maxBytes,
  );
  gauge(
    'tally_ingest_spool_oldest_age_seconds',
    'Age of the oldest report in the ingest spool; 0 when it is empty.',
    () => {
      const oldest = spool.stats().oldestSpooledAt;
      return oldest === undefined ? 0 : (now() - oldest) / 1000;
    },
  );
  new Counter({
    name: 'tally_ingest_reports_spooled_total',
    help: 'Reports acknowledged to a gateway after being written to the spool (Redis did not answer in time).',
    registers,
    collect() {
      this.reset();
      this.inc(spooled());
    },
  });
}
