// `npm run dashboard`: bull-board for the batch and retention queues on its own port, at /dashboard as
// under `npm start`, with /healthz and /readyz. All wiring lives here.
import Fastify, { LogController } from 'fastify';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { openRedis } from '../redis.js';
import { redisDependency, registerReadyz, requireDependencies } from '../readiness.js';
import { batchQueueDependency, openBatchQueue, openRetentionQueue } from '../worker/queues.js';
import { DASHBOARD_PATH, dashboardSettings, registerDashboard } from './dashboard.js';
import { attachBacklog } from '../metrics/backlog.js';
import { addMetricsRoute, createMetricsRegistry } from '../metrics/registry.js';

run('dashboard', async () => {
  const config = loadConfig();
  const settings = dashboardSettings(config, config.dashboardHost);
  const logger = createLogger(config.logLevel, 'tally-dashboard');
  const redis = redisDependency(config);
  try {
    await requireDependencies([redis]);
  } catch (error) {
    redis.close();
    throw error;
  }
  const connection = openRedis(config, { maxRetriesPerRequest: null });
  const batches = openBatchQueue(connection, config.keyPrefix);
  const retention = openRetentionQueue(connection, config.keyPrefix);
  // No request lines: a flood of unauthenticated requests must not become a flood of logs.
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get('/healthz', () => ({ status: 'ok' }));
  registerReadyz(app, [redis, batchQueueDependency(batches)]);
  await registerDashboard(app, [batches, retention], settings, logger);
  const registry = createMetricsRegistry();
  const closeBacklog = attachBacklog(registry, config, batches, logger);
  addMetricsRoute(app, registry);
  const address = await app.listen({ host: config.dashboardHost, port: config.dashboardPort });
  logger.info({ address, dashboard: `${address}${DASHBOARD_PATH}` }, 'dashboard listening');
  closeOnSignals(logger, async () => {
    await app.close();
    await batches.close();
    await retention.close();
    closeBacklog();
    connection.disconnect();
    redis.close();
  });
});
