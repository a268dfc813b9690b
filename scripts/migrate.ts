// `npm run migrate`: brings DATABASE_URL to Tally's schema without network access: Prisma's
// migrations on a fresh database, attach mode on one GPUStack manages (docs/operations.md).
// `--merge-duplicate-rollups` lets attach mode merge GPUStack's duplicate rollup rows first.
import { parseArgs } from 'node:util';
import { loadConfig, requireDatabaseUrl } from '../src/config.js';
import { migrateDatabase, type MigrateOutcome } from '../src/db/migrate.js';

function summary(outcome: MigrateOutcome): string[] {
  if (outcome.mode === 'prisma') {
    return [
      outcome.applied.length === 0
        ? 'migrate: database is up to date, nothing applied'
        : `migrate: applied ${outcome.applied.length} migration(s): ${outcome.applied.join(', ')}`,
    ];
  }
  const lines = [
    `migrate: GPUStack database detected (${outcome.alembic}; its tables and columns were checked): attach mode, GPUStack's tables are kept`,
  ];
  if (outcome.merged !== undefined) {
    lines.push(
      `migrate: merged ${outcome.merged.keys} duplicate rollup key(s) (${outcome.merged.rows} rows into ${outcome.merged.keys})`,
    );
  }
  lines.push(
    outcome.applied.length === 0
      ? 'migrate: database is up to date, nothing applied'
      : `migrate: applied ${outcome.applied.length} attach step(s): ${outcome.applied.join(', ')}`,
  );
  return lines;
}

try {
  const { values } = parseArgs({
    options: { 'merge-duplicate-rollups': { type: 'boolean', default: false } },
  });
  const outcome = await migrateDatabase(requireDatabaseUrl(loadConfig()), {
    mergeDuplicateRollups: values['merge-duplicate-rollups'],
  });
  for (const line of summary(outcome)) console.log(line);
} catch (error) {
  console.error(`migrate: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
// Prisma's engine leaves a timer behind for several seconds; the work is done.
process.exit();
