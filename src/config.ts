// Tally's configuration: every environment variable is read here, once, at start-up.
// Owns parsing and defaults; must never be bypassed with process.env elsewhere.
import { createHmac } from 'node:crypto';
import { z } from 'zod';

/** A bad or missing variable. The message names the variable and what it should be. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\s*\d+\s*$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const str = () => z.string();

const url = (protocols: RegExp, what: string) =>
  z.string().refine((v) => {
    try {
      return protocols.test(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a ${what} URL`);

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone name such as UTC or Europe/Berlin');

const envSchema = z.object({
  REDIS_URL: url(/^rediss?:$/, 'redis:// or rediss://').optional(),
  TALLY_REDIS_CLUSTER_NODES: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n !== ''),
    )
    .pipe(
      z
        .array(
          z
            .string()
            .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'host:port pairs, comma-separated')
            .transform((n) => {
              const colon = n.lastIndexOf(':');
              return { host: n.slice(0, colon), port: Number(n.slice(colon + 1)) };
            })
            .refine((n) => n.port >= 1 && n.port <= 65535, 'ports must be 1-65535'),
        )
        .min(1),
    )
    .optional(),
  TALLY_REDIS_WAIT_REPLICAS: int(0, 16).default(0),
  TALLY_REDIS_WAIT_TIMEOUT_MS: int(1, 60_000).default(500),
  DATABASE_URL: url(/^postgres(ql)?:$/, 'postgresql://').optional(),
  TALLY_PARTITIONS: int(1, 1024).default(4),
  TALLY_FLUSH_INTERVAL_MS: int(100, 3_600_000).default(10_000),
  TALLY_ESTIMATED_BYTES_PER_INPUT_TOKEN: int(1).default(4),
  TALLY_ESTIMATED_TOKENS_PER_OUTPUT_CHUNK: int(1).default(1),
  TALLY_ROLLUP_TIMEZONE: timeZone.default('UTC'),
  TALLY_GATEWAY_TOKEN: str().optional(),
  TALLY_GPUSTACK_JWT_SECRET: str().optional(),
  TALLY_INGEST_HOST: str().default('0.0.0.0'),
  TALLY_INGEST_PORT: int(0, 65535).default(8080),
  TALLY_INGEST_BODY_LIMIT_BYTES: int(1_024, 256 * 1024 * 1024).default(4 * 1024 * 1024),
  TALLY_INGEST_REQUEST_TIMEOUT_MS: int(100, 600_000).default(10_000),
  TALLY_INGEST_CONNECTION_TIMEOUT_MS: int(100, 600_000).default(30_000),
  TALLY_INGEST_MAX_CONNECTIONS: int(1, 1_000_000).default(256),
  TALLY_INGEST_MAX_JSON_DEPTH: int(2, 10_000).default(32),
  TALLY_SPOOL_DIR: str().default('.tally/spool'),
  TALLY_SPOOL_MAX_BYTES: int(0, Number.MAX_SAFE_INTEGER).default(512 * 1024 * 1024),
  TALLY_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'may hold only letters, digits, _ . -')
    .default('tally'),
  TALLY_PRODUCER_TIMEOUT_MS: int(50, 60_000).default(1_000),
  TALLY_SEAL_GRACE_MS: int(0, 600_000).default(250),
  TALLY_PAGE_SIZE: int(1, 100_000).default(2_000),
  TALLY_WORKER_CONCURRENCY: int(1, 64).default(2),
  TALLY_BATCH_ATTEMPTS: int(1, 1000).default(12),
  TALLY_BATCH_BACKOFF_MS: int(1, 3_600_000).default(2_000),
  TALLY_BATCH_LOCK_MS: int(1_000, 600_000).default(5_000),
  TALLY_ENTITY_CACHE_MS: int(0, 3_600_000).default(5_000),
  TALLY_DASHBOARD_HOST: str().default('0.0.0.0'),
  TALLY_DASHBOARD_PORT: int(0, 65535).default(8081),
  TALLY_DASHBOARD_USER: str().default('admin'),
  TALLY_DASHBOARD_ALLOWED_HOSTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter((h) => h !== ''),
    )
    .pipe(
      z
        .array(
          z
            .string()
            .regex(/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/, 'host names, comma-separated, no ports'),
        )
        .min(1),
    )
    .optional(),
  TALLY_DASHBOARD_PASSWORD: str().optional(),
  TALLY_WORKER_METRICS_HOST: str().default('0.0.0.0'),
  TALLY_WORKER_METRICS_PORT: int(0, 65535).optional(),
  TALLY_USAGE_DETAILS_RETENTION_MONTHS: int(1, 1200).default(13),
  TALLY_USAGE_DETAILS_ARCHIVE_BATCH_SIZE: int(1, 100_000).default(1_000),
  TALLY_USAGE_DETAILS_ARCHIVE_CRON: z
    .string()
    .trim()
    .regex(
      /^[0-9A-Za-z*?/,#-]+( +[0-9A-Za-z*?/,#-]+){4,5}$/,
      'must be a cron expression (5 fields, or 6 with seconds first), e.g. 0 3 * * *',
    )
    .default('0 3 * * *'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.infer<typeof envSchema>;

/** One seed node of a Redis Cluster. */
export interface RedisNode {
  host: string;
  port: number;
}

export interface Config {
  /** The single Redis; unused when `redisClusterNodes` is set. */
  redisUrl: string;
  /** Seed nodes of a Redis Cluster; set, every role talks to the cluster (see src/redis.ts). */
  redisClusterNodes: RedisNode[] | undefined;
  /** Replicas that must confirm each ingest write (Redis WAIT); 0 = no WAIT. */
  redisWaitReplicas: number;
  /** Longest a WAIT waits for those replicas before the write counts as unacknowledged. */
  redisWaitTimeoutMs: number;
  databaseUrl: string | undefined;
  partitions: number;
  flushIntervalMs: number;
  bytesPerInputToken: number;
  tokensPerOutputChunk: number;
  rollupTimeZone: string;
  gatewayToken: string | undefined;
  ingestHost: string;
  ingestPort: number;
  ingestBodyLimitBytes: number;
  /** Longest time to receive a whole ingest request; 408 and close after. */
  ingestRequestTimeoutMs: number;
  /** Longest an ingest socket may sit without traffic. */
  ingestConnectionTimeoutMs: number;
  ingestMaxConnections: number;
  ingestMaxJsonDepth: number;
  /** Where the ingest server spools reports Redis did not acknowledge in time. */
  spoolDir: string;
  /** The spool's bound in bytes; 0 turns the spool off (503 while Redis is unavailable). */
  spoolMaxBytes: number;
  keyPrefix: string;
  producerTimeoutMs: number;
  sealGraceMs: number;
  pageSize: number;
  workerConcurrency: number;
  batchAttempts: number;
  batchBackoffMs: number;
  /** How long a batch's lock lives without renewal (renewed every half of it): a dead worker's batch is retaken within about twice this. */
  batchLockMs: number;
  entityCacheMs: number;
  dashboardHost: string;
  dashboardPort: number;
  dashboardUser: string;
  /** Host names the dashboard answers to besides loopback; unset: see dashboardSettings(). */
  dashboardAllowedHosts: string[] | undefined;
  dashboardPassword: string | undefined;
  /** The standalone worker's /metrics listener; undefined = no listener. */
  workerMetricsHost: string;
  workerMetricsPort: number | undefined;
  /** Audit rows older than this many calendar months move to the archive. */
  usageDetailsRetentionMonths: number;
  usageDetailsArchiveBatchSize: number;
  /** When retention runs: a cron expression in UTC. */
  usageDetailsArchiveCron: string;
  logLevel: Env['LOG_LEVEL'];
}

/** Parses the environment. Throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty values count as unset, so `FOO=` in a compose file falls back to the default.
  const set = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''),
  );
  const parsed = envSchema.safeParse(set);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.TALLY_GATEWAY_TOKEN !== undefined && e.TALLY_GPUSTACK_JWT_SECRET !== undefined) {
    throw new ConfigError(
      'invalid configuration:\n  TALLY_GATEWAY_TOKEN, TALLY_GPUSTACK_JWT_SECRET: set one, not both (the second derives the first)',
    );
  }
  if (e.REDIS_URL !== undefined && e.TALLY_REDIS_CLUSTER_NODES !== undefined) {
    // Refused, not warned: a process writing to a Redis other than the one its workers
    // drain would acknowledge reports that nobody ever commits.
    throw new ConfigError(
      'invalid configuration:\n  REDIS_URL, TALLY_REDIS_CLUSTER_NODES: set one, not both (the cluster nodes replace REDIS_URL)',
    );
  }
  if (
    e.TALLY_REDIS_WAIT_TIMEOUT_MS >= e.TALLY_PRODUCER_TIMEOUT_MS &&
    e.TALLY_REDIS_WAIT_REPLICAS > 0
  ) {
    throw new ConfigError(
      'invalid configuration:\n  TALLY_REDIS_WAIT_TIMEOUT_MS: must be below TALLY_PRODUCER_TIMEOUT_MS, or every unconfirmed write outlives the call',
    );
  }
  return {
    redisUrl: e.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisClusterNodes: e.TALLY_REDIS_CLUSTER_NODES,
    redisWaitReplicas: e.TALLY_REDIS_WAIT_REPLICAS,
    redisWaitTimeoutMs: e.TALLY_REDIS_WAIT_TIMEOUT_MS,
    databaseUrl: e.DATABASE_URL,
    partitions: e.TALLY_PARTITIONS,
    flushIntervalMs: e.TALLY_FLUSH_INTERVAL_MS,
    bytesPerInputToken: e.TALLY_ESTIMATED_BYTES_PER_INPUT_TOKEN,
    tokensPerOutputChunk: e.TALLY_ESTIMATED_TOKENS_PER_OUTPUT_CHUNK,
    rollupTimeZone: e.TALLY_ROLLUP_TIMEZONE,
    gatewayToken:
      e.TALLY_GPUSTACK_JWT_SECRET === undefined
        ? e.TALLY_GATEWAY_TOKEN
        : gpustackGatewayToken(e.TALLY_GPUSTACK_JWT_SECRET),
    ingestHost: e.TALLY_INGEST_HOST,
    ingestPort: e.TALLY_INGEST_PORT,
    ingestBodyLimitBytes: e.TALLY_INGEST_BODY_LIMIT_BYTES,
    ingestRequestTimeoutMs: e.TALLY_INGEST_REQUEST_TIMEOUT_MS,
    ingestConnectionTimeoutMs: e.TALLY_INGEST_CONNECTION_TIMEOUT_MS,
    ingestMaxConnections: e.TALLY_INGEST_MAX_CONNECTIONS,
    ingestMaxJsonDepth: e.TALLY_INGEST_MAX_JSON_DEPTH,
    spoolDir: e.TALLY_SPOOL_DIR,
    spoolMaxBytes: e.TALLY_SPOOL_MAX_BYTES,
    keyPrefix: e.TALLY_KEY_PREFIX,
    producerTimeoutMs: e.TALLY_PRODUCER_TIMEOUT_MS,
    sealGraceMs: e.TALLY_SEAL_GRACE_MS,
    pageSize: e.TALLY_PAGE_SIZE,
    workerConcurrency: e.TALLY_WORKER_CONCURRENCY,
    batchAttempts: e.TALLY_BATCH_ATTEMPTS,
    batchBackoffMs: e.TALLY_BATCH_BACKOFF_MS,
    batchLockMs: e.TALLY_BATCH_LOCK_MS,
    entityCacheMs: e.TALLY_ENTITY_CACHE_MS,
    dashboardHost: e.TALLY_DASHBOARD_HOST,
    dashboardPort: e.TALLY_DASHBOARD_PORT,
    dashboardUser: e.TALLY_DASHBOARD_USER,
    dashboardAllowedHosts: e.TALLY_DASHBOARD_ALLOWED_HOSTS,
    dashboardPassword: e.TALLY_DASHBOARD_PASSWORD,
    workerMetricsHost: e.TALLY_WORKER_METRICS_HOST,
    workerMetricsPort: e.TALLY_WORKER_METRICS_PORT,
    usageDetailsRetentionMonths: e.TALLY_USAGE_DETAILS_RETENTION_MONTHS,
    usageDetailsArchiveBatchSize: e.TALLY_USAGE_DETAILS_ARCHIVE_BATCH_SIZE,
    usageDetailsArchiveCron: e.TALLY_USAGE_DETAILS_ARCHIVE_CRON,
    logLevel: e.LOG_LEVEL,
  };
}

/**
 * The token GPUStack writes into its gateway plugin's configuration: the lowercase hex of
 * HMAC-SHA256(its jwt_secret_key, "gateway-metrics-push"). With it, Tally accepts a
 * GPUStack gateway's reports without the operator copying the token by hand.
 */
export function gpustackGatewayToken(jwtSecret: string): string {
  return createHmac('sha256', jwtSecret).update('gateway-metrics-push').digest('hex');
}

/** The database URL, for processes that touch PostgreSQL. */
export function requireDatabaseUrl(config: Config): string {
  if (config.databaseUrl === undefined) {
    throw new ConfigError(
      'invalid configuration:\n  DATABASE_URL: required (e.g. postgresql://user@127.0.0.1:5432/tally)',
    );
  }
  return config.databaseUrl;
}

/** The gateway token, for the ingest server. */
export function requireGatewayToken(config: Config): string {
  if (config.gatewayToken === undefined) {
    throw new ConfigError(
      'invalid configuration:\n  TALLY_GATEWAY_TOKEN: required by the ingest server (the value gateways send in X-GPUStack-Auth-Token), or TALLY_GPUSTACK_JWT_SECRET to derive it as GPUStack does',
    );
  }
  return config.gatewayToken;
}
