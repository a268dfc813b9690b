// `npm start`: ingest, worker and dashboard in one process, for small installs and the
// quick start. The dashboard is served on the ingest port under /dashboard.
// All wiring lives here.
import { loadConfig, requireDatabaseUrl, requireGatewayToken } from './config.js';
import { createPrisma } from './db/client.js';
import { createLogger } from './logger.js';
import { closeOnSignals, run } from './lifecycle.js';
import { attachBacklog } from './metrics/backlog.js';
import {
  IngestMetrics,
  instrumentProducer,
  observeRequests,
  observeSpool,
} from './metrics/ingest.js';
import { addMetricsRoute, createMetricsRegistry } from './metrics/registry.js';
import { WorkerMetrics } from './metrics/worker.js';
import { UsageProducer } from './producer/producer.js';
import { ingestLimitsFromConfig } from './producer/ingest-limits.js';
import { buildIngestServer } from './producer/server.js';
import { openIngestSpool } from './producer/spool/ingest-spool.js';
import { DASHBOARD_PATH, dashboardSettings, registerDashboard } from './dashboard/dashboard.js';
import { startWorker } from './worker/worker.js';
import { batchQueueDependency } from './worker/queues.js';
import { postgresDependency } from './db/readiness.js';
import { redisDependency, requireDependencies } from './readiness.js';

run('tally', async () => {
  const config = loadConfig();
  const gatewayToken = requireGatewayToken(config);
  const databaseUrl = requireDatabaseUrl(config);
  const dashboard = dashboardSettings(config, config.ingestHost);
  const logger = createLogger(config.logLevel, 'tally');

  const prisma = createPrisma(databaseUrl);
  const redis = redisDependency(config);
  const postgres = postgresDependency(prisma, databaseUrl);
  try {
    await requireDependencies([redis, postgres]);
  } catch (error) {
    redis.close();
    await prisma.$disconnect();
    throw error;
  }
  const registry = createMetricsRegistry();
  const metrics = new IngestMetrics(registry);
  const worker = await startWorker({
    config,
    prisma,
    logger,
    metrics: new WorkerMetrics(registry),
  });
  const closeBacklog = attachBacklog(registry, config, worker.batches, logger);
  const producer = UsageProducer.fromConfig(config, logger);
  const spool = await openIngestSpool(config, producer, logger, metrics.writeTimings());
  if (spool !== undefined) observeSpool(registry, spool.spool, () => spool.producer.spooled);
  const server = buildIngestServer({
    producer: instrumentProducer(spool?.producer ?? producer, metrics, spool !== undefined),
    gatewayToken,
    logger,
    bodyLimitBytes: config.ingestBodyLimitBytes,
    limits: ingestLimitsFromConfig(config),
    dependencies: [
      redis,
      postgres,
      batchQueueDependency(worker.batches),
      ...(spool === undefined ? [] : [spool.dependency]),
    ],
  });
  observeRequests(server, metrics);
  addMetricsRoute(server, registry);
  await registerDashboard(
    server,
    [worker.batches, ...(worker.archiver === undefined ? [] : [worker.archiver.queue])],
    dashboard,
    logger,
  );
  const address = await server.listen({ host: config.ingestHost, port: config.ingestPort });
  logger.info({ address, dashboard: `${address}${DASHBOARD_PATH}` }, 'tally listening');

  closeOnSignals(logger, async () => {
    await server.close();
    await spool?.close();
    await producer.close();
    await worker.close();
    closeBacklog();
    await prisma.$disconnect();
    redis.close();
  });
});
