// `npm run worker`: the sealer and the batch processor in one process. Run as many as
// you like against one Redis and one PostgreSQL.
import { loadConfig, requireDatabaseUrl } from '../config.js';
import { createPrisma } from '../db/client.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { startWorker } from './worker.js';

run('worker', async () => {
  const config = loadConfig();
  const prisma = createPrisma(requireDatabaseUrl(config));
  const logger = createLogger(config.logLevel, 'tally-worker');
  const worker = await startWorker({ config, prisma, logger });
  closeOnSignals(logger, async () => {
    await worker.close();
    await prisma.$disconnect();
  });
});
