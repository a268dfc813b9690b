// `npm run worker`: the sealer and the batch processor in one process. Run as many as
// you like against one Redis and one PostgreSQL.
import { loadConfig, requireDatabaseUrl } from '../config.js';
import { createPrisma } from '../db/client.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { postgresDependency } from '../db/readiness.js';
import { redisDependency, requireDependencies } from '../readiness.js';
import { attachBacklog } from '../metrics/backlog.js';
import { createMetricsRegistry, startMetricsListener } from '../metrics/registry.js';
import { WorkerMetrics } from '../metrics/worker.js';
import { startWorker } from './worker.js';

run('worker', async () => {
  const config = loadConfig();
  const databaseUrl = requireDatabaseUrl(config);
  const prisma = createPrisma(databaseUrl);
  const logger = createLogger(config.logLevel, 'tally-worker');
  const redis = redisDependency(config);
  try {
    await requireDependencies([redis, postgresDependency(prisma, databaseUrl)]);
  } catch (error) {
    await prisma.$disconnect();
    throw error;
  } finally {
    redis.close();
  }
  const registry = createMetricsRegistry();
  const worker = await startWorker({
    config,
    prisma,
    logger,
    metrics: new WorkerMetrics(registry),
  });
  // /metrics only when TALLY_WORKER_METRICS_PORT is set: a worker otherwise opens no port.
  const port = config.workerMetricsPort;
  const closeBacklog =
    port === undefined ? undefined : attachBacklog(registry, config, worker.batches, logger);
  const listener =
    port === undefined
      ? undefined
      : await startMetricsListener(registry, config.workerMetricsHost, port, logger);
  if (listener) logger.info({ port: listener.port }, 'worker metrics listening on /metrics');
  closeOnSignals(logger, async () => {
    await listener?.close();
    closeBacklog?.();
    await worker.close();
    await prisma.$disconnect();
  });
});
