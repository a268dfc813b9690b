// Runs once before the tests: checks that Redis and PostgreSQL answer (failing loudly
// if not) and migrates the template database every test database is cloned from.
import { Redis } from 'ioredis';
import { migrate } from '../../src/db/migrate.js';
import {
  ADMIN_DATABASE_URL,
  REDIS_URL,
  TEMPLATE_DATABASE,
  adminQuery,
  databaseUrl,
} from './services.js';

export default async function setup(): Promise<void> {
  const redis = new Redis(REDIS_URL, {
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`tests need Redis at ${REDIS_URL}: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
  try {
    await adminQuery(`DROP DATABASE IF EXISTS "${TEMPLATE_DATABASE}" WITH (FORCE)`);
    await adminQuery(`CREATE DATABASE "${TEMPLATE_DATABASE}"`);
  } catch (error) {
    throw new Error(`tests need PostgreSQL at ${ADMIN_DATABASE_URL}: ${(error as Error).message}`);
  }
  await migrate(databaseUrl(TEMPLATE_DATABASE));
}
