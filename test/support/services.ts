// Real services for tests: a fresh PostgreSQL database per test file (cloned from a
// migrated template) and a unique Redis key prefix per test. Both must be reachable:
// a test that needs them fails loudly when they are absent, it never skips.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import {
  LOCAL_DATABASE_URL,
  LOCAL_REDIS_URL,
  createDatabase,
  databaseUrl as databaseUrlOn,
  deleteKeys,
  dropDatabase,
  waitFor,
  adminQuery as adminQueryOn,
} from '../../devkit/services.js';
import { createPrisma, type PrismaClient } from '../../src/db/client.js';

export { deleteKeys, waitFor };

export const REDIS_URL = process.env['TALLY_TEST_REDIS_URL'] ?? LOCAL_REDIS_URL;
/** A database the tests may create other databases from (trust auth on this machine). */
export const ADMIN_DATABASE_URL = process.env['TALLY_TEST_DATABASE_URL'] ?? LOCAL_DATABASE_URL;

export function databaseUrl(name: string): string {
  return databaseUrlOn(ADMIN_DATABASE_URL, name);
}

export function uniqueName(kind: string): string {
  return `${kind}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export async function adminQuery(sql: string): Promise<void> {
  await adminQueryOn(ADMIN_DATABASE_URL, sql);
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
  'model_usage_details_archive',
  'rejected_usage_reports',
  'models',
  'model_providers',
  'model_routes',
  'principals',
  'api_keys',
  'clusters',
];

/** A new, migrated database of its own (a copy of this run's template, see global-setup.ts). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueName('tally_t');
  const url = await createDatabase(ADMIN_DATABASE_URL, name, inject('templateDatabase'));
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
      await dropDatabase(ADMIN_DATABASE_URL, name);
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
