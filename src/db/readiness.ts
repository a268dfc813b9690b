// PostgreSQL as a dependency: reachable, and every committed migration applied (a role
// started against an empty or older database would fail every batch ~10 s later and
// retry for an hour). Must never print a password or write to the database.
import { migrationNames } from './migrations.js';
import type { PrismaClient } from './client.js';
import { errorLine } from '../logger.js';
import { redactUrl, withTimeout, type Dependency } from '../readiness.js';

const CHECK_TIMEOUT_MS = 3_000;

/** Names of committed migrations that `_prisma_migrations` does not list as finished. */
export async function pendingMigrations(prisma: PrismaClient): Promise<string[]> {
  const [table] = await prisma.$queryRaw<{ present: boolean }[]>`
    SELECT to_regclass('_prisma_migrations') IS NOT NULL AS present`;
  const applied = new Set<string>();
  if (table?.present === true) {
    const rows = await prisma.$queryRaw<{ migration_name: string }[]>`
      SELECT migration_name FROM _prisma_migrations
      WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`;
    for (const row of rows) applied.add(row.migration_name);
  }
  return (await migrationNames()).filter((name) => !applied.has(name));
}

export function postgresDependency(prisma: PrismaClient, databaseUrl: string): Dependency {
  const where = `PostgreSQL at DATABASE_URL (${redactUrl(databaseUrl)})`;
  return {
    name: 'postgres',
    async check() {
      let pending: string[];
      try {
        pending = await withTimeout(pendingMigrations(prisma), CHECK_TIMEOUT_MS, 'PostgreSQL');
      } catch (error) {
        return {
          status: 'unavailable',
          message: `${where} cannot be used: ${errorLine(error)}; fix DATABASE_URL (the database must exist), then run \`npm run migrate\``,
        };
      }
      if (pending.length > 0) {
        return {
          status: 'unavailable',
          pendingMigrations: pending,
          message: `${where} lacks ${pending.length} migration(s) (${pending.join(', ')}): run \`npm run migrate\` with the same DATABASE_URL`,
        };
      }
      return { status: 'ok' };
    },
  };
}
