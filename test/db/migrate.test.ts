// `npm run migrate` against real, empty databases: creates every table, is idempotent,
// and installs the NULL-safe rollup key. And the upgrade from the first schema (GPUStack's
// of 2026-05-07) to GPUStack v2.2.x's keeps every row.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrationNames } from '../../src/db/migrations.js';
import { adminQuery, databaseUrl, uniqueName } from '../support/services.js';

const run = promisify(execFile);
const name = uniqueName('tally_mig');
const url = databaseUrl(name);
let client: pg.Client;

async function npmRunMigrate(): Promise<string> {
  const { stdout } = await run('npm', ['run', '--silent', 'migrate'], {
    env: { ...process.env, DATABASE_URL: url },
  });
  return stdout;
}

beforeAll(async () => {
  await adminQuery(`CREATE DATABASE "${name}"`);
  client = new pg.Client({ connectionString: url });
  await client.connect();
});

afterAll(async () => {
  await client.end();
  await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
});

describe('npm run migrate', () => {
  it('creates every table on an empty database, then changes nothing', async () => {
    const names = await migrationNames();
    expect(await npmRunMigrate()).toMatch(new RegExp(`applied ${names.length} migration`));
    const tables = await client.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
    );
    expect(tables.rows.map((r) => r.tablename)).toEqual([
      '_prisma_migrations',
      'api_keys',
      'clusters',
      'model_providers',
      'model_routes',
      'model_usage_details',
      'model_usage_details_archive',
      'model_usages',
      'models',
      'principals',
      'rejected_usage_reports',
    ]);

    const schemaBefore = await client.query(
      `SELECT table_name, column_name, data_type FROM information_schema.columns
       WHERE table_schema = 'public' ORDER BY 1, 2`,
    );
    expect(await npmRunMigrate()).toMatch(/up to date, nothing applied/);
    const schemaAfter = await client.query(
      `SELECT table_name, column_name, data_type FROM information_schema.columns
       WHERE table_schema = 'public' ORDER BY 1, 2`,
    );
    expect(schemaAfter.rows).toEqual(schemaBefore.rows);
    const history = await client.query(`SELECT count(*)::int AS n FROM _prisma_migrations`);
    expect(history.rows[0]).toEqual({ n: names.length });
  });

  it('rejects a second rollup row with the same key even where key columns are NULL', async () => {
    const insert = `INSERT INTO model_usages (date, model_name, operation, prompt_token_count,
      completion_token_count, request_count) VALUES ('2026-11-26', 'm', NULL, 0, 0, 0)`;
    await client.query(insert);
    await expect(client.query(insert)).rejects.toThrow(/model_usages_rollup_key/);
  });

  it('upgrades a database of the first schema, keeping its rows', async () => {
    const upgrade = uniqueName('tally_up');
    await adminQuery(`CREATE DATABASE "${upgrade}"`);
    const db = new pg.Client({ connectionString: databaseUrl(upgrade) });
    await db.connect();
    try {
      const [init, ...rest] = await migrationNames();
      const sql = (name: string) => readFile(join(MIGRATIONS_DIR, name, 'migration.sql'), 'utf8');
      await db.query(await sql(init ?? ''));
      await db.query(`
        INSERT INTO users (id, username) VALUES (1, 'alice');
        INSERT INTO model_routes (id, name) VALUES (1, 'chat');
        INSERT INTO api_keys (id, name, access_key) VALUES (1, 'k', 'ak_1');
        INSERT INTO model_usages (date, model_name, user_id, operation, prompt_token_count,
          request_count) VALUES ('2026-11-01', 'm', 1, 'chat_completion', 5, 1);
        INSERT INTO model_usage_details (report_id, date, model_name, user_id, operation,
          prompt_token_count, created_at, updated_at)
        VALUES ('r1', '2026-11-01', 'm', 1, 'chat_completion', 5,
          '2026-11-01T10:00:00Z', '2026-11-01T10:00:00Z')`);
      for (const name of rest) await db.query(await sql(name));

      const principals = await db.query(`SELECT id, kind, name FROM principals ORDER BY id`);
      // Routes and keys had no owner on record: GPUStack's platform Org stands in.
      expect(principals.rows).toEqual([
        { id: 1, kind: 'USER', name: 'alice' },
        { id: 2, kind: 'ORG', name: 'default' },
      ]);
      const owners = await db.query(`
        SELECT (SELECT owner_principal_id FROM model_routes) AS route,
               (SELECT user_id FROM api_keys) AS key_user`);
      expect(owners.rows).toEqual([{ route: 2, key_user: 2 }]);
      const usage = await db.query(
        `SELECT operation::text AS op, prompt_token_count::int AS p FROM model_usages`,
      );
      expect(usage.rows).toEqual([{ op: 'CHAT_COMPLETION', p: 5 }]);
      const detail = await db.query(`
        SELECT operation, completed, created_at::text AS created FROM model_usage_details`);
      expect(detail.rows).toEqual([
        { operation: 'CHAT_COMPLETION', completed: false, created: '2026-11-01 10:00:00' },
      ]);
    } finally {
      await db.end();
      await adminQuery(`DROP DATABASE IF EXISTS "${upgrade}" WITH (FORCE)`);
    }
  });

  it('fails with a message naming DATABASE_URL when it is missing', async () => {
    const env = { ...process.env };
    delete env['DATABASE_URL'];
    await expect(run('npm', ['run', '--silent', 'migrate'], { env })).rejects.toMatchObject({
      stderr: expect.stringMatching(/DATABASE_URL: required/) as unknown,
    });
  });
});
