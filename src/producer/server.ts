// The HTTP ingest endpoint for gateways that are not Node (GPUStack-compatible): checks the
// gateway token, hands the body to the producer SDK and maps its typed errors to statuses.
// Must never log a token or a payload, answer 5xx to bad input, or start listening itself.
import { fastify, LogController, type FastifyError } from 'fastify';
import { loadConfig } from '../config.js';
import type { UsageReportInput } from '../contract/index.js';
import { secretMatcher } from '../contract/secret.js';
import { errorLine, type Logger } from '../logger.js';
import { registerReadyz, type Dependency } from '../readiness.js';
import { InvalidReportError, RedisUnavailableError } from './errors.js';
import {
  applyIngestLimits,
  DEFAULT_INGEST_LIMITS,
  serverLimitOptions,
  type IngestLimits,
} from './ingest-limits.js';
import { LogThrottle } from './log-throttle.js';
import { SpoolRefusedError } from './spool/errors.js';
import type { UsageProducer } from './producer.js';

export const INGEST_PATH = '/v2/usage/gateway-metrics';
export const TOKEN_HEADER = 'x-gpustack-auth-token';
export const MAX_REPORTS_PER_REQUEST = 1_000;
export const DEFAULT_BODY_LIMIT_BYTES = loadConfig({}).ingestBodyLimitBytes;

export interface IngestServerOptions {
  producer: Pick<UsageProducer, 'report' | 'reportMany' | 'ping'>;
  gatewayToken: string;
  logger: Logger;
  bodyLimitBytes?: number;
  /** Time, connection and nesting bounds; each defaults to its configuration default. */
  limits?: Partial<IngestLimits>;
  /**
   * What GET /readyz reports, one entry each; defaults to Redis through the producer's
   * bounded PING. The all-in-one process adds PostgreSQL and the batch queue.
   */
  dependencies?: readonly Dependency[];
}

const FASTIFY_ERRORS: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  TALLY_JSON_TOO_DEEP: 'json_too_deep',
};

/** Builds the server with its routes; the caller adds more routes, then listens. */
export function buildIngestServer(options: IngestServerOptions) {
  const { producer, logger } = options;
  if (options.gatewayToken === '') throw new TypeError('gatewayToken must not be empty');
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const dependencies = options.dependencies ?? [producerRedis(producer)];
  const limits: IngestLimits = { ...DEFAULT_INGEST_LIMITS, ...options.limits };
  const isGatewayToken = secretMatcher(options.gatewayToken);

  const server = fastify({
    ...serverLimitOptions(limits),
    loggerInstance: logger,
    bodyLimit,
    // Per-request lines would turn a flood of requests into a flood of logs; the
    // onResponse hook below logs instead, throttled.
    logController: new LogController({ disableRequestLogging: true }),
  });
  // Only JSON is a report; fastify would otherwise hand text/plain bodies to the route.
  server.removeContentTypeParser('text/plain');
  applyIngestLimits(server, limits);

  const throttles = new Map<number, LogThrottle>();
  server.addHook('onResponse', async (request, reply) => {
    const fields = {
      method: request.method,
      route: request.routeOptions.url ?? '(none)',
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    };
    if (reply.statusCode < 400) return request.log.debug(fields, 'request handled');
    let throttle = throttles.get(reply.statusCode);
    if (throttle === undefined) throttles.set(reply.statusCode, (throttle = new LogThrottle()));
    const suppressed = throttle.take();
    if (suppressed === undefined) return request.log.debug(fields, 'request rejected');
    return request.log.warn(
      { ...fields, suppressed },
      'request rejected (more with this status within 10 s are logged at debug only)',
    );
  });

  server.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = FASTIFY_ERRORS[error.code] ?? 'bad_request';
      const message =
        code === 'payload_too_large'
          ? `the body exceeds the ${bodyLimit}-byte limit; send fewer reports per request`
          : code === 'unsupported_media_type'
            ? 'send the reports as JSON with Content-Type: application/json'
            : error.message;
      return reply.code(status).send({ error: code, message });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: 'internal_error', message: 'internal error' });
  });

  server.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ error: 'not_found', message: `no route ${request.method} ${request.url}` }),
  );

  server.get('/healthz', () => ({ status: 'ok' }));

  registerReadyz(server, dependencies);

  server.post(INGEST_PATH, {
    // Runs before the body is read, so an unauthenticated client cannot make us parse it.
    onRequest: async (request, reply) => {
      const token = request.headers[TOKEN_HEADER];
      if (typeof token !== 'string' || token === '') {
        return reply
          .code(401)
          .send({ error: 'unauthorized', message: `missing ${TOKEN_HEADER} header` });
      }
      if (!isGatewayToken(token)) {
        return reply
          .code(401)
          .send({ error: 'unauthorized', message: `invalid ${TOKEN_HEADER} header` });
      }
      return undefined;
    },
    handler: async (request, reply) => {
      const body = request.body;
      if (Array.isArray(body) && body.length === 0) {
        return reply
          .code(400)
          .send({ error: 'empty_batch', message: 'the array holds no reports; send at least one' });
      }
      if (Array.isArray(body) && body.length > MAX_REPORTS_PER_REQUEST) {
        const message = `an array may hold at most ${MAX_REPORTS_PER_REQUEST} reports, got ${body.length}; split it`;
        return reply.code(400).send({ error: 'too_many_reports', message });
      }
      try {
        // The SDK validates at run time whatever it is given; these casts only name the hope.
        const ids = Array.isArray(body)
          ? await producer.reportMany(body as UsageReportInput[])
          : [await producer.report(body as UsageReportInput)];
        return { accepted: ids.length, report_ids: ids };
      } catch (error) {
        if (error instanceof InvalidReportError) {
          return reply.code(400).send({
            error: 'invalid_report',
            message: `${error.invalidIndexes.length} invalid report(s); nothing was accepted, fix them and resend all`,
            problems: error.problems,
            invalid_indexes: error.invalidIndexes,
          });
        }
        if (error instanceof SpoolRefusedError) {
          return reply.code(503).send({
            error: error.reason === 'full' ? 'spool_full' : 'spool_unwritable',
            message: `usage storage is unavailable and the ingest spool ${error.reason === 'full' ? 'is full' : 'is not writable'}; nothing was acknowledged, retry later with the same report_ids`,
            report_ids: error.reportIds,
          });
        }
        if (error instanceof RedisUnavailableError) {
          // The ids let a gateway retry without double counting: the write may have
          // landed before the timeout, and a resend with the same ids counts once.
          return reply.code(503).send({
            error: 'redis_unavailable',
            message:
              'usage storage is unavailable; nothing was acknowledged, retry later with the same report_ids',
            report_ids: error.reportIds,
          });
        }
        throw error;
      }
    },
  });

  return server;
}

export type IngestServer = ReturnType<typeof buildIngestServer>;

/** Redis as the producer sees it: its own bounded PING. */
export function producerRedis(producer: Pick<UsageProducer, 'ping'>): Dependency {
  return {
    name: 'redis',
    async check() {
      try {
        await producer.ping();
        return { status: 'ok' };
      } catch (error) {
        return { status: 'unavailable', message: `Redis does not answer: ${errorLine(error)}` };
      }
    },
  };
}
