// Real services for tests: a fresh PostgreSQL database per test file (cloned from a
// migrated template) and a unique Redis key prefix per test. Both must be reachable:
// a test that needs them fails loudly when they are absent, it never skips.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { inject } from 'vitest';
import { createPrisma, type PrismaClient } from '../../src/db/client.js';

export const REDIS_URL = process.env['TALLY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** A database the tests may create other databases from (trust auth on this machine). */
export const ADMIN_DATABASE_URL =
  process.env['TALLY_TEST_DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export function uniqueName(kind: string): string {
  return `${kind}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  prisma: PrismaClient;
  /** Empties every table (between tests of one file). */
  reset(): Promise<void>;
  drop(): Promise<void>;
}

const TABLES = [
  'model_usages',
  'model_usage_details',
  'rejected_usage_reports',
  'models',
  'model_providers',
  'model_routes',
  'users',
  'api_keys',
  'clusters',
];

/** A new, migrated database of its own (a copy of this run's template, see global-setup.ts). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueName('tally_t');
  await adminQuery(`CREATE DATABASE "${name}" TEMPLATE "${inject('templateDatabase')}"`);
  const url = databaseUrl(name);
  const prisma = createPrisma(url, { max: 4 });
  return {
    name,
    url,
    prisma,
    reset: async () => {
      await prisma.$executeRawUnsafe(`TRUNCATE ${TABLES.join(', ')} RESTART IDENTITY`);
    },
    drop: async () => {
      await prisma.$disconnect();
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

export interface TestRedis {
  redis: Redis;
  prefix: string;
  /** Deletes every key under the prefix and closes the connection. */
  cleanup(): Promise<void>;
}

export async function createTestRedis(): Promise<TestRedis> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  const prefix = uniqueName('tt');
  return {
    redis,
    prefix,
    cleanup: async () => {
      await deleteKeys(redis, `${prefix}:*`);
      redis.disconnect();
    },
  };
}

export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
