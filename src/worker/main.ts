// `npm run worker`: the sealer and the batch processor in one process. Run as many as
// you like against one Redis and one PostgreSQL.
import { loadConfig, requireDatabaseUrl } from '../config.js';
import { createPrisma } from '../db/client.js';
import { createLogger } from '../logger.js';
import { closeOnSignals, run } from '../lifecycle.js';
import { postgresDependency } from '../db/readiness.js';
import { redisDependency, requireDependencies } from '../readiness.js';
import { startWorker } from './worker.js';

run('worker', async () => {
  const config = loadConfig();
  const databaseUrl = requireDatabaseUrl(config);
  const prisma = createPrisma(databaseUrl);
  const logger = createLogger(config.logLevel, 'tally-worker');
  const redis = redisDependency(config.redisUrl);
  try {
    await requireDependencies([redis, postgresDependency(prisma, databaseUrl)]);
  } catch (error) {
    await prisma.$disconnect();
    throw error;
  } finally {
    redis.close();
  }
  const worker = await startWorker({ config, prisma, logger });
  closeOnSignals(logger, async () => {
    await worker.close();
    await prisma.$disconnect();
  });
});
