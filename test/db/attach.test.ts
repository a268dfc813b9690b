// Attach mode against databases built as GPUStack's migrations leave them
// (devkit/gpustack.ts): Tally adds only its own columns, indexes and tables, keeps every
// GPUStack row, refuses older schemas and duplicate rollup keys with a message naming
// what is wrong, merges duplicates only when asked, and is idempotent.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { buildGpustackDatabase, type GpustackFixtureOptions } from '../../devkit/gpustack.js';
import { ATTACH_STEP_NAMES } from '../../src/db/attach-steps.js';
import { createPrisma } from '../../src/db/client.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { pendingMigrations } from '../../src/db/readiness.js';
import { adminQuery, databaseUrl, uniqueName } from '../support/services.js';

const run = promisify(execFile);
const created: string[] = [];
const clients: pg.Client[] = [];

afterAll(async () => {
  for (const client of clients) await client.end();
  for (const name of created) await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
});

async function gpustackDatabase(
  options: GpustackFixtureOptions = {},
): Promise<{ url: string; client: pg.Client }> {
  const name = uniqueName('tally_gps');
  await adminQuery(`CREATE DATABASE "${name}"`);
  created.push(name);
  const url = databaseUrl(name);
  await buildGpustackDatabase(url, options);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  clients.push(client);
  return { url, client };
}

async function npmRunMigrate(url: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('npm', ['run', '--silent', 'migrate', '--', ...args], {
    env: { ...process.env, DATABASE_URL: url },
  });
  return stdout;
}

/** Tables, columns (with type and nullability), indexes and constraints of the schema. */
async function schemaOf(client: pg.Client): Promise<Set<string>> {
  const { rows } = await client.query<{ item: string }>(`
    SELECT 'table ' || table_name AS item FROM information_schema.tables
      WHERE table_schema = 'public'
    UNION ALL
    SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable,
                  coalesce(column_default, ''))
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace`);
  return new Set(rows.map((r) => r.item));
}

const GPUSTACK_TABLES = [
  'alembic_version',
  'principals',
  'clusters',
  'models',
  'model_providers',
  'model_routes',
  'api_keys',
  'model_usages',
  'model_usage_details',
  'model_usage_details_archive',
];

/** A digest of every row of GPUStack's tables, in the columns `columns` lists (GPUStack's own). */
async function gpustackData(client: pg.Client, columns: Set<string>): Promise<string> {
  const digests: string[] = [];
  for (const table of GPUSTACK_TABLES) {
    const own = [...columns]
      .filter((c) => c.startsWith(`column ${table}.`))
      .map((c) => c.split(' ')[1]?.split('.')[1] ?? '')
      .sort();
    const { rows } = await client.query<{ digest: string }>(
      `SELECT md5(coalesce(string_agg(row_text, '|' ORDER BY row_text), '')) AS digest
       FROM (SELECT concat_ws(',', ${own.map((c) => `"${c}"::text`).join(', ')}) AS row_text
             FROM ${table}) t`,
    );
    digests.push(`${table}:${rows[0]?.digest}`);
  }
  return digests.join(' ');
}

function difference(after: Set<string>, before: Set<string>): string[] {
  return [...after].filter((item) => !before.has(item)).sort();
}

describe('npm run migrate on a database GPUStack manages', () => {
  it('adds only Tally’s additions to GPUStack v2.2.3, keeps every row, then changes nothing', async () => {
    const { url, client } = await gpustackDatabase();
    const before = await schemaOf(client);
    const dataBefore = await gpustackData(client, before);

    const prisma = createPrisma(url, { max: 1 });
    try {
      expect(await pendingMigrations(prisma)).toEqual(ATTACH_STEP_NAMES);
      const out = await npmRunMigrate(url);
      expect(out).toMatch(/GPUStack database detected \(alembic_version c4d7e8f9a0b1/);
      expect(out).toMatch(/applied 1 attach step\(s\): 20261128000000_exactly_once/);
      expect(await pendingMigrations(prisma)).toEqual([]);
    } finally {
      await prisma.$disconnect();
    }

    const after = await schemaOf(client);
    // No GPUStack table or column lost or changed: everything before is still there.
    expect(difference(before, after)).toEqual([]);
    const added = difference(after, before);
    const addedTables = added.filter((i) => i.startsWith('table '));
    expect(addedTables).toEqual(['table rejected_usage_reports', 'table tally_attach_migrations']);
    const gpustackChanges = added.filter(
      (i) => !/rejected_usage_reports|tally_attach_migrations/.test(i),
    );
    expect(gpustackChanges).toEqual([
      'column model_usage_details.report_id character varying YES ',
      'column model_usage_details.request_count bigint NO 1',
      'column model_usage_details_archive.report_id character varying YES ',
      'column model_usage_details_archive.request_count bigint NO 1',
      'index CREATE UNIQUE INDEX model_usage_details_archive_report_id_key ON public.model_usage_details_archive USING btree (report_id)',
      'index CREATE UNIQUE INDEX model_usage_details_report_id_key ON public.model_usage_details USING btree (report_id)',
      'index CREATE UNIQUE INDEX model_usages_rollup_key ON public.model_usages USING btree (date, model_id, model_name, provider_id, provider_name, provider_type, model_route_id, user_id, access_key, operation, consumer_principal_id) NULLS NOT DISTINCT',
    ]);
    expect(await gpustackData(client, before)).toBe(dataBefore);
    const audit = await client.query(
      'SELECT report_id, request_count::int AS n FROM model_usage_details ORDER BY id',
    );
    expect(audit.rows).toEqual([
      { report_id: null, n: 1 },
      { report_id: null, n: 1 },
    ]);

    // Idempotent: a second run reports nothing to do and changes nothing.
    expect(await npmRunMigrate(url)).toMatch(/up to date, nothing applied/);
    expect(await schemaOf(client)).toEqual(after);
    expect(await gpustackData(client, before)).toBe(dataBefore);
    const steps = await client.query(
      'SELECT name, gpustack_alembic_version FROM tally_attach_migrations',
    );
    expect(steps.rows).toEqual([
      { name: '20261128000000_exactly_once', gpustack_alembic_version: 'c4d7e8f9a0b1' },
    ]);
  });

  it('a GPUStack database that also has _prisma_migrations is attached, and readiness asks for the attach steps', async () => {
    const { url, client } = await gpustackDatabase({ seed: false });
    // What an earlier `prisma migrate` against GPUStack's database leaves: Prisma's table,
    // with none of Tally's migrations in it.
    await client.query(`CREATE TABLE _prisma_migrations (
      id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
      migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
      started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0)`);
    const prisma = createPrisma(url, { max: 1 });
    try {
      expect(await pendingMigrations(prisma)).toEqual(ATTACH_STEP_NAMES);
      expect(await migrateDatabase(url)).toMatchObject({
        mode: 'attach',
        applied: ATTACH_STEP_NAMES,
      });
      expect(await pendingMigrations(prisma)).toEqual([]);
      expect(
        (await client.query('SELECT count(*)::int AS n FROM _prisma_migrations')).rows,
      ).toEqual([{ n: 0 }]);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('attaches to GPUStack main (unreleased v2.3.0) too', async () => {
    const { url } = await gpustackDatabase({ generation: 'main' });
    const outcome = await migrateDatabase(url);
    expect(outcome).toMatchObject({ mode: 'attach', applied: ['20261128000000_exactly_once'] });
    expect(outcome.mode === 'attach' && outcome.alembic).toMatch(/367a3982fcde.*main/);
  });

  it('refuses GPUStack v2.1.x, naming what is missing, and changes nothing', async () => {
    const { url, client } = await gpustackDatabase({ generation: 'v2.1' });
    const before = await schemaOf(client);
    const failure = run('npm', ['run', '--silent', 'migrate'], {
      env: { ...process.env, DATABASE_URL: url },
    });
    const error = await failure.then(
      () => undefined,
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(error?.code).toBe(1);
    expect(error?.stderr).toMatch(
      /managed by GPUStack \(alembic_version 8ad0f94c92e8 \(GPUStack v2\.1\.x\)\)/,
    );
    for (const missing of [
      'table principals is missing (GPUStack v2.2.0 replaced users with principals)',
      'table model_usage_details is missing (added by GPUStack v2.2.0)',
      'column model_usages.model_route_id is missing (added by GPUStack v2.2.0)',
      'column model_usages.consumer_principal_id is missing (added by GPUStack v2.2.0)',
    ]) {
      expect(error?.stderr).toContain(missing);
    }
    expect(error?.stderr).toMatch(/Nothing was changed/);
    expect(await schemaOf(client)).toEqual(before);
  });

  it('refuses GPUStack v2.2.0/v2.2.1: no consumer columns, foreign keys still on model_usages', async () => {
    const { url, client } = await gpustackDatabase({ generation: 'v2.2.0' });
    const before = await schemaOf(client);
    await expect(migrateDatabase(url)).rejects.toThrow(
      /column model_usages\.consumer_name is missing \(added by GPUStack v2\.2\.2\)[\s\S]*model_usages still has foreign keys \(model_usages_model_id_fkey, model_usages_model_route_id_fkey, model_usages_user_id_fkey\)/,
    );
    expect(await schemaOf(client)).toEqual(before);
  });

  it('refuses a database first migrated by a v2.2.0 release candidate (no completed column)', async () => {
    // Its alembic_version is current: only probing the columns tells.
    const { url, client } = await gpustackDatabase({ completed: false });
    const before = await schemaOf(client);
    const error = await migrateDatabase(url).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/alembic_version c4d7e8f9a0b1/);
    expect(error?.message).toMatch(/column model_usage_details\.completed is missing/);
    expect(error?.message).toMatch(/column model_usage_details_archive\.completed is missing/);
    expect(error?.message).toMatch(/ADD COLUMN completed BOOLEAN NOT NULL DEFAULT false/);
    expect(error?.message).not.toMatch(/consumer_name|principals/);
    expect(await schemaOf(client)).toEqual(before);
  });

  it('refuses duplicate rollup keys, then merges them in one transaction when asked', async () => {
    const { url, client } = await gpustackDatabase();
    // The fixture's rollup (id 1) twice more, and a NULL-keyed rollup twice: GPUStack's
    // unlocked SELECT-then-INSERT racing across replicas.
    await client.query(`
      INSERT INTO model_usages (user_id, model_id, date, prompt_token_count,
        completion_token_count, request_count, operation, access_key, model_name,
        prompt_cached_token_count, model_route_id, consumer_principal_id)
      VALUES (3, 1, '2026-11-20', 5, 1, 1, 'CHAT_COMPLETION', 'ak_alice', 'qwen3-8b', 2, 1, 1),
             (3, 1, '2026-11-20', 7, 2, 1, 'CHAT_COMPLETION', 'ak_alice', 'qwen3-8b', 0, 1, 1),
             (NULL, 1, '2026-11-21', 1, 1, 1, NULL, NULL, 'qwen3-8b', 0, NULL, NULL),
             (NULL, 1, '2026-11-21', 2, 2, 1, NULL, NULL, 'qwen3-8b', 0, NULL, NULL),
             (NULL, 1, '2026-11-22', 4, 4, 1, NULL, NULL, 'qwen3-8b', 0, NULL, NULL)`);
    const before = await schemaOf(client);
    const rows =
      'SELECT id, prompt_token_count::int AS p, completion_token_count::int AS c, prompt_cached_token_count::int AS k, request_count::int AS r FROM model_usages ORDER BY id';
    const rowsBefore = (await client.query(rows)).rows;

    await expect(npmRunMigrate(url)).rejects.toMatchObject({
      stderr: expect.stringMatching(
        /model_usages holds 2 rollup key\(s\) on more than one row \(5 rows in all[\s\S]*Nothing was changed\. Run `npm run migrate -- --merge-duplicate-rollups`/,
      ) as unknown,
    });
    expect(await schemaOf(client)).toEqual(before);
    expect((await client.query(rows)).rows).toEqual(rowsBefore);

    const out = await npmRunMigrate(url, '--merge-duplicate-rollups');
    expect(out).toMatch(/merged 2 duplicate rollup key\(s\) \(5 rows into 2\)/);
    expect(out).toMatch(/applied 1 attach step/);
    expect((await client.query(rows)).rows).toEqual([
      { id: 1, p: 42, c: 15, k: 2, r: 4 },
      { id: 4, p: 3, c: 3, k: 0, r: 2 },
      { id: 6, p: 4, c: 4, k: 0, r: 1 },
    ]);
    // The index now holds the key, NULLs equal.
    await expect(
      client.query(
        `INSERT INTO model_usages (model_id, date, prompt_token_count, completion_token_count,
           request_count, model_name) VALUES (1, '2026-11-21', 1, 1, 1, 'qwen3-8b')`,
      ),
    ).rejects.toThrow(/model_usages_rollup_key/);
    expect(await npmRunMigrate(url, '--merge-duplicate-rollups')).toMatch(/up to date/);
  });
});
