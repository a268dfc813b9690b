// `npm run dashboard`: bull-board for the batch queue on its own port.
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { checkDashboardAuth, registerDashboard } from './dashboard.js';
import { openBatchQueue } from '../worker/queues.js';
import { attachBacklog } from '../metrics/backlog.js';
import { addMetricsRoute, createMetricsRegistry } from '../metrics/registry.js';

run('dashboard', async () => {
  const config = loadConfig();
  const auth = { user: config.dashboardUser, password: config.dashboardPassword };
  checkDashboardAuth(auth, config.dashboardHost);
  const logger = createLogger(config.logLevel, 'tally-dashboard');
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const batches = openBatchQueue(connection, config.keyPrefix);
  const app = Fastify({ loggerInstance: logger });
  const registry = createMetricsRegistry();
  const closeBacklog = attachBacklog(registry, config, batches, logger);
  addMetricsRoute(app, registry);
  await registerDashboard(app, [batches], '/', auth);
  const address = await app.listen({ host: config.dashboardHost, port: config.dashboardPort });
  logger.info({ address }, 'dashboard listening');
  closeOnSignals(logger, async () => {
    await app.close();
    await batches.close();
    closeBacklog();
    connection.disconnect();
  });
});
