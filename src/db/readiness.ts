// PostgreSQL as a dependency: reachable, and every committed migration (on a database
// GPUStack manages: every attach step) applied; a role started against an empty or older
// database would fail every batch ~10 s later and retry for an hour. Must never print a
// password or write to the database.
import { migrationNames } from './migrations.js';
import { ATTACH_STEP_NAMES, ATTACH_TABLE } from './attach-steps.js';
import { managedByGpustack } from './gpustack-schema.js';
import type { PrismaClient } from './client.js';
import { errorLine } from '../logger.js';
import { redactUrl, withTimeout, type Dependency } from '../readiness.js';

const CHECK_TIMEOUT_MS = 3_000;

/**
 * Names of the migrations this database lacks: on a database GPUStack manages (attach
 * mode, decided as `npm run migrate` decides it), attach steps that
 * tally_attach_migrations does not list; otherwise committed Prisma migrations that
 * `_prisma_migrations` does not list as finished.
 */
export async function pendingMigrations(prisma: PrismaClient): Promise<string[]> {
  const [tables] = await prisma.$queryRaw<
    { prisma: boolean; attach: boolean; alembic: boolean; model_usages: boolean }[]
  >`
    SELECT to_regclass('_prisma_migrations') IS NOT NULL AS prisma,
           to_regclass(${ATTACH_TABLE}) IS NOT NULL AS attach,
           to_regclass('alembic_version') IS NOT NULL AS alembic,
           to_regclass('model_usages') IS NOT NULL AS model_usages`;
  if (tables === undefined) throw new Error('PostgreSQL answered no row to a table probe');
  const gpustack = managedByGpustack({
    alembicVersion: tables.alembic,
    modelUsages: tables.model_usages,
    prismaMigrations: tables.prisma,
  });
  if (gpustack) {
    const done = new Set<string>();
    if (tables.attach) {
      const rows = await prisma.$queryRawUnsafe<{ name: string }[]>(
        `SELECT name FROM ${ATTACH_TABLE}`,
      );
      for (const row of rows) done.add(row.name);
    }
    return ATTACH_STEP_NAMES.filter((name) => !done.has(name));
  }
  const applied = new Set<string>();
  if (tables.prisma) {
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
