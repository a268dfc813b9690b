// Every long-running role checks what it needs before it starts, and otherwise exits 1
// with ONE line that names the variable to fix and the command to run: a database that
// does not exist, one never migrated, Redis not answering. Real processes, real services.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../devkit/services.js';
import {
  REDIS_URL,
  adminQuery,
  databaseUrl,
  uniqueName,
  createTestDatabase,
  type TestDatabase,
} from '../support/services.js';

const ROLES = {
  worker: 'src/worker/main.ts',
  ingest: 'src/producer/main.ts',
  dashboard: 'src/dashboard/main.ts',
  start: 'src/main.ts',
} as const;

async function startRole(
  entry: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr, stdout };
}

let migrated: TestDatabase;
const empty = uniqueName('tally_empty');
let closedRedis: string;

beforeAll(async () => {
  migrated = await createTestDatabase();
  await adminQuery(`CREATE DATABASE "${empty}"`);
  closedRedis = `redis://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  await migrated.drop();
  await adminQuery(`DROP DATABASE IF EXISTS "${empty}" WITH (FORCE)`);
});

describe('start-up checks', () => {
  it.each([ROLES.worker, ROLES.start])(
    '%s refuses a database that was never migrated, naming the command',
    async (entry) => {
      const run = await startRole(entry, {
        DATABASE_URL: databaseUrl(empty),
        REDIS_URL,
        TALLY_GATEWAY_TOKEN: 't',
        TALLY_INGEST_HOST: '127.0.0.1',
        TALLY_INGEST_PORT: '0',
      });
      expect(run.code).toBe(1);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /DATABASE_URL.*lacks \d+ migration.*20261126000000_init.*npm run migrate/,
      );
      expect(run.stdout).not.toContain('worker started');
    },
  );

  it('the worker refuses a database that does not exist, naming DATABASE_URL', async () => {
    const run = await startRole(ROLES.worker, {
      DATABASE_URL: databaseUrl(uniqueName('tally_missing')),
      REDIS_URL,
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/DATABASE_URL .*does not exist.*fix DATABASE_URL.*npm run migrate/);
  });

  it.each([ROLES.worker, ROLES.ingest, ROLES.dashboard, ROLES.start])(
    '%s refuses a Redis that does not answer, naming REDIS_URL',
    async (entry) => {
      const run = await startRole(entry, {
        DATABASE_URL: migrated.url,
        REDIS_URL: closedRedis,
        TALLY_GATEWAY_TOKEN: 't',
        TALLY_INGEST_HOST: '127.0.0.1',
        TALLY_INGEST_PORT: '0',
        TALLY_DASHBOARD_HOST: '127.0.0.1',
        TALLY_DASHBOARD_PORT: '0',
      });
      expect(run.code).toBe(1);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(
        /Redis at REDIS_URL \(redis:\/\/127\.0\.0\.1:\d+\) does not answer/,
      );
    },
  );
});
