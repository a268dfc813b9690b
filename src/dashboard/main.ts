// `npm run dashboard`: bull-board for the batch queue on its own port.
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { checkDashboardAuth, registerDashboard } from './dashboard.js';
import { openBatchQueue } from '../worker/queues.js';

run('dashboard', async () => {
  const config = loadConfig();
  const auth = { user: config.dashboardUser, password: config.dashboardPassword };
  checkDashboardAuth(auth, config.dashboardHost);
  const logger = createLogger(config.logLevel, 'tally-dashboard');
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  const batches = openBatchQueue(connection, config.keyPrefix);
  const app = Fastify({ loggerInstance: logger });
  await registerDashboard(app, [batches], '/', auth);
  const address = await app.listen({ host: config.dashboardHost, port: config.dashboardPort });
  logger.info({ address }, 'dashboard listening');
  closeOnSignals(logger, async () => {
    await app.close();
    await batches.close();
    connection.disconnect();
  });
});
