// `npm run migrate` against real, empty databases: creates every table, is idempotent,
// and installs the NULL-safe rollup key.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect(await npmRunMigrate()).toMatch(/applied 1 migration/);
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
      'model_usages',
      'models',
      'rejected_usage_reports',
      'users',
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
    expect(history.rows[0]).toEqual({ n: 1 });
  });

  it('rejects a second rollup row with the same key even where key columns are NULL', async () => {
    const insert = `INSERT INTO model_usages (date, model_name, operation) VALUES ('2026-11-26', 'm', NULL)`;
    await client.query(insert);
    await expect(client.query(insert)).rejects.toThrow(/model_usages_rollup_key/);
  });

  it('fails with a message naming DATABASE_URL when it is missing', async () => {
    const env = { ...process.env };
    delete env['DATABASE_URL'];
    await expect(run('npm', ['run', '--silent', 'migrate'], { env })).rejects.toMatchObject({
      stderr: expect.stringMatching(/DATABASE_URL: required/) as unknown,
    });
  });
});
