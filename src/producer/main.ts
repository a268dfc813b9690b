// Entry point of the ingest process (`npm run ingest`): config, producer, HTTP server,
// and a clean shutdown on SIGINT/SIGTERM. All wiring lives here; must never hold logic.
import { loadConfig, requireGatewayToken } from '../config.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { redisDependency, requireDependencies } from '../readiness.js';
import { IngestMetrics, instrumentProducer, observeRequests } from '../metrics/ingest.js';
import { addMetricsRoute, createMetricsRegistry } from '../metrics/registry.js';
import { UsageProducer } from './producer.js';
import { ingestLimitsFromConfig } from './ingest-limits.js';
import { buildIngestServer } from './server.js';

run('tally-ingest', async () => {
  const config = loadConfig();
  const gatewayToken = requireGatewayToken(config);
  const logger = createLogger(config.logLevel, 'tally-ingest');
  const redis = redisDependency(config);
  try {
    await requireDependencies([redis]);
  } finally {
    redis.close();
  }
  const producer = UsageProducer.fromConfig(config, logger);
  const registry = createMetricsRegistry();
  const metrics = new IngestMetrics(registry);
  const server = buildIngestServer({
    producer: instrumentProducer(producer, metrics),
    gatewayToken,
    logger,
    bodyLimitBytes: config.ingestBodyLimitBytes,
    limits: ingestLimitsFromConfig(config),
  });
  observeRequests(server, metrics);
  addMetricsRoute(server, registry);
  closeOnSignals(logger, async () => {
    await server.close();
    await producer.close();
  });
  try {
    const address = await server.listen({ host: config.ingestHost, port: config.ingestPort });
    logger.info({ address, partitions: config.partitions }, 'ingest server listening');
  } catch (error) {
    await producer.close();
    throw error;
  }
});
