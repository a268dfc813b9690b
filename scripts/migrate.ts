// `npm run migrate`: applies prisma/migrations to DATABASE_URL without network access.
import { loadConfig, requireDatabaseUrl } from '../src/config.js';
import { migrate } from '../src/db/migrate.js';

try {
  const applied = await migrate(requireDatabaseUrl(loadConfig()));
  console.log(
    applied.length === 0
      ? 'migrate: database is up to date, nothing applied'
      : `migrate: applied ${applied.length} migration(s): ${applied.join(', ')}`,
  );
} catch (error) {
  console.error(`migrate: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
// Prisma's engine leaves a timer behind for several seconds; the work is done.
process.exit();
