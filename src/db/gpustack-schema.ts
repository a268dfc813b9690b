// How Tally recognises a database that GPUStack's migrations manage, and whether its
// schema is one Tally can write: probes tables, columns and model_usages' foreign keys
// through information_schema (alembic_version is reported, never trusted alone, since
// GPUStack edited migrations in place before release). The checks are pure functions over
// the probe. Read-only: must never change the database.
import type pg from 'pg';

/** GPUStack's alembic revisions and the release each one shipped in. */
const RELEASES: Record<string, string> = {
  '8ad0f94c92e8': 'v2.1.x',
  b2c3d4e5f6a7: 'v2.2.0/v2.2.1',
  c4d7e8f9a0b1: 'v2.2.2/v2.2.3',
  '367a3982fcde': 'main (unreleased v2.3.0)',
};

export interface SchemaProbe {
  /** alembic_version.version_num, or undefined when the table is absent or empty. */
  alembicVersion: string | undefined;
  /** Every table of the current schema with its columns. */
  columns: Map<string, Set<string>>;
  /** Names of foreign keys declared on model_usages. */
  modelUsagesForeignKeys: string[];
}

export async function probeSchema(client: pg.Client | pg.PoolClient): Promise<SchemaProbe> {
  const columns = new Map<string, Set<string>>();
  const { rows } = await client.query<{ table_name: string; column_name: string | null }>(
    `SELECT t.table_name, c.column_name
     FROM information_schema.tables t
     LEFT JOIN information_schema.columns c
       ON c.table_schema = t.table_schema AND c.table_name = t.table_name
     WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`,
  );
  for (const row of rows) {
    const set = columns.get(row.table_name) ?? new Set<string>();
    if (row.column_name !== null) set.add(row.column_name);
    columns.set(row.table_name, set);
  }
  let alembicVersion: string | undefined;
  if (columns.get('alembic_version')?.has('version_num') === true) {
    const version = await client.query<{ version_num: string }>(
      'SELECT version_num FROM alembic_version LIMIT 1',
    );
    alembicVersion = version.rows[0]?.version_num;
  }
  const fks = await client.query<{ constraint_name: string }>(
    `SELECT constraint_name FROM information_schema.table_constraints
     WHERE table_schema = current_schema() AND table_name = 'model_usages'
       AND constraint_type = 'FOREIGN KEY' ORDER BY constraint_name`,
  );
  return {
    alembicVersion,
    columns,
    modelUsagesForeignKeys: fks.rows.map((r) => r.constraint_name),
  };
}

/**
 * GPUStack manages the database when it has GPUStack's alembic table, or GPUStack's rollup
 * table without Prisma's bookkeeping (a database whose alembic table was dropped by hand).
 */
export function isGpustackDatabase(probe: SchemaProbe): boolean {
  return managedByGpustack({
    alembicVersion: probe.columns.has('alembic_version'),
    modelUsages: probe.columns.has('model_usages'),
    prismaMigrations: probe.columns.has('_prisma_migrations'),
  });
}

/**
 * The one rule `npm run migrate` (attach mode or Prisma's migrations) and the start-up
 * readiness check (which bookkeeping to read) share: GPUStack manages a database that has
 * alembic_version, even next to a `_prisma_migrations` left by an earlier `prisma
 * migrate`, or that has model_usages without `_prisma_migrations`.
 */
export function managedByGpustack(tables: {
  alembicVersion: boolean;
  modelUsages: boolean;
  prismaMigrations: boolean;
}): boolean {
  return tables.alembicVersion || (tables.modelUsages && !tables.prismaMigrations);
}

/** What alembic_version says, for people: the revision and the release it names. */
export function describeAlembic(version: string | undefined): string {
  if (version === undefined) return 'no alembic_version';
  const release = RELEASES[version];
  return `alembic_version ${version} (${release === undefined ? 'a revision Tally does not know' : `GPUStack ${release}`})`;
}

const DETAILS_COLUMNS = [
  'id',
  'user_id',
  'model_id',
  'model_route_id',
  'owner_principal_id',
  'consumer_principal_id',
  'provider_id',
  'cluster_id',
  'api_key_id',
  'user_name',
  'model_route_name',
  'provider_name',
  'provider_type',
  'cluster_name',
  'api_key_name',
  'access_key',
  'model_name',
  'api_key_is_custom',
  'date',
  'prompt_token_count',
  'completion_token_count',
  'prompt_cached_token_count',
  'completed',
  'operation',
  'started_at',
  'completed_at',
  'created_at',
  'updated_at',
  'deleted_at',
];

/** The columns Tally reads or writes in GPUStack's tables (GPUStack v2.2.2 and later). */
export const REQUIRED_COLUMNS: Record<string, readonly string[]> = {
  principals: ['id', 'kind', 'name'],
  api_keys: ['id', 'name', 'access_key', 'is_custom', 'user_id', 'owner_principal_id'],
  models: ['id', 'name', 'cluster_id', 'categories', 'owner_principal_id'],
  model_providers: ['id', 'name', 'config', 'models', 'owner_principal_id'],
  model_routes: ['id', 'name', 'created_model_id', 'owner_principal_id'],
  clusters: ['id', 'name'],
  model_usages: [
    'id',
    'user_id',
    'model_id',
    'date',
    'prompt_token_count',
    'completion_token_count',
    'request_count',
    'operation',
    'access_key',
    'model_name',
    'provider_id',
    'cluster_name',
    'user_name',
    'api_key_name',
    'provider_name',
    'provider_type',
    'api_key_id',
    'api_key_is_custom',
    'prompt_cached_token_count',
    'model_route_id',
    'model_route_name',
    'owner_principal_id',
    'consumer_principal_id',
    'consumer_name',
    'consumer_principal_kind',
  ],
  model_usage_details: DETAILS_COLUMNS,
  model_usage_details_archive: DETAILS_COLUMNS,
};

/** Where a missing piece comes from in GPUStack's history, so the operator knows what to upgrade. */
function origin(table: string, column?: string): string {
  if (column === undefined) {
    if (table === 'principals') return ' (GPUStack v2.2.0 replaced users with principals)';
    if (table.startsWith('model_usage_details')) return ' (added by GPUStack v2.2.0)';
    return '';
  }
  if (column === 'completed') {
    return ' (GPUStack v2.2.0 GA; a database first migrated by v2.2.0rc1–rc3 lacks it and no later GPUStack migration adds it)';
  }
  if (column === 'consumer_name' || column === 'consumer_principal_kind') {
    return ' (added by GPUStack v2.2.2)';
  }
  if (['model_route_id', 'owner_principal_id', 'consumer_principal_id'].includes(column)) {
    return ' (added by GPUStack v2.2.0)';
  }
  return '';
}

/**
 * Why Tally cannot attach to this schema, one line per missing piece; empty when it can.
 * Tally's own additions (report_id, request_count) are not required: attach adds them.
 */
export function attachBlockers(probe: SchemaProbe): string[] {
  const problems: string[] = [];
  for (const [table, required] of Object.entries(REQUIRED_COLUMNS)) {
    const present = probe.columns.get(table);
    if (present === undefined) {
      problems.push(`table ${table} is missing${origin(table)}`);
      continue;
    }
    for (const column of required) {
      if (!present.has(column)) {
        problems.push(`column ${table}.${column} is missing${origin(table, column)}`);
      }
    }
  }
  if (probe.modelUsagesForeignKeys.length > 0) {
    problems.push(
      `model_usages still has foreign keys (${probe.modelUsagesForeignKeys.join(', ')}); GPUStack v2.2.2 dropped them, and Tally stores ids of routes it does not check`,
    );
  }
  const hot = probe.columns.get('model_usage_details');
  const archive = probe.columns.get('model_usage_details_archive');
  if (hot !== undefined && archive !== undefined) {
    const differ = [...hot]
      .filter((c) => !archive.has(c))
      .concat([...archive].filter((c) => !hot.has(c)))
      .filter((c) => c !== 'report_id' && c !== 'request_count');
    if (differ.length > 0) {
      problems.push(
        `model_usage_details and model_usage_details_archive differ in column(s) ${differ.sort().join(', ')}; moving rows to the archive needs the same columns`,
      );
    }
  }
  return problems;
}

/** The error `npm run migrate` ends with when the schema is not one Tally can write. */
export class GpustackSchemaError extends Error {
  override readonly name = 'GpustackSchemaError';
  constructor(
    readonly alembic: string,
    readonly blockers: string[],
  ) {
    super(
      `this database is managed by GPUStack (${alembic}), but its schema is older than the one Tally writes (GPUStack v2.2.2 or later):\n` +
        blockers.map((b) => `  - ${b}`).join('\n') +
        `\nNothing was changed. Upgrade GPUStack (its own migrations bring the schema forward) and run \`npm run migrate\` again.` +
        (blockers.some((b) => b.includes('.completed is missing'))
          ? `\nFor a database first migrated by GPUStack v2.2.0rc1–rc3, add the column as GPUStack defines it: ALTER TABLE model_usage_details ADD COLUMN completed BOOLEAN NOT NULL DEFAULT false (and the same on model_usage_details_archive).`
          : ''),
    );
  }
}
