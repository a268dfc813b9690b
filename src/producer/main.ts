// Entry point of the ingest process (`npm run ingest`): config, producer, spool, HTTP
// server, and a clean shutdown on SIGINT/SIGTERM. All wiring lives here; must never hold logic.
import { loadConfig, requireGatewayToken } from '../config.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { redisDependency, requireDependencies } from '../readiness.js';
import {
  IngestMetrics,
  instrumentProducer,
  observeRequests,
  observeSpool,
} from '../metrics/ingest.js';
import { addMetricsRoute, createMetricsRegistry } from '../metrics/registry.js';
import { UsageProducer } from './producer.js';
import { ingestLimitsFromConfig } from './ingest-limits.js';
import { buildIngestServer, producerRedis } from './server.js';
import { openIngestSpool } from './spool/ingest-spool.js';

run('tally-ingest', async () => {
  const config = loadConfig();
  const gatewayToken = requireGatewayToken(config);
  const logger = createLogger(config.logLevel, 'tally-ingest');
  const redis = redisDependency(config);
  try {
    if (config.spoolMaxBytes === 0) await requireDependencies([redis]);
    else {
      // With a spool, reports are kept while Redis is away, so a restart during an outage
      // must not turn a gateway's reports away: start, say so, and spool.
      const state = await redis.check();
      if (state.status !== 'ok') {
        logger.warn(`${state.message}; starting anyway, reports go to the spool until it answers`);
      }
    }
  } finally {
    redis.close();
  }
  const producer = UsageProducer.fromConfig(config, logger);
  const registry = createMetricsRegistry();
  const metrics = new IngestMetrics(registry);
  const spool = await openIngestSpool(config, producer, logger, metrics.writeTimings()).catch(
    async (error: unknown) => {
      await producer.close();
      throw error;
    },
  );
  if (spool !== undefined) observeSpool(registry, spool.spool, () => spool.producer.spooled);
  const server = buildIngestServer({
    producer: instrumentProducer(spool?.producer ?? producer, metrics, spool !== undefined),
    gatewayToken,
    logger,
    bodyLimitBytes: config.ingestBodyLimitBytes,
    limits: ingestLimitsFromConfig(config),
    dependencies: [producerRedis(producer), ...(spool === undefined ? [] : [spool.dependency])],
  });
  observeRequests(server, metrics);
  addMetricsRoute(server, registry);
  closeOnSignals(logger, async () => {
    await server.close();
    await spool?.close();
    await producer.close();
  });
  try {
    const address = await server.listen({ host: config.ingestHost, port: config.ingestPort });
    logger.info(
      { address, partitions: config.partitions, spool: spool?.spool.dir ?? 'off' },
      'ingest server listening',
    );
  } catch (error) {
    await spool?.close();
    await producer.close();
    throw error;
  }
});
