// Runs once before the tests: checks that Redis and PostgreSQL answer (failing loudly
// if not) and migrates the template database every test database is cloned from. The
// template is named per run, so two test runs on one machine do not collide.
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/db/migrate.js';
import { createDatabase, dropDatabase } from '../../devkit/services.js';
import { ADMIN_DATABASE_URL, REDIS_URL, uniqueName } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
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
  const template = uniqueName('tally_template');
  let url: string;
  try {
    url = await createDatabase(ADMIN_DATABASE_URL, template);
  } catch (error) {
    throw new Error(`tests need PostgreSQL at ${ADMIN_DATABASE_URL}: ${(error as Error).message}`);
  }
  await migrate(url);
  project.provide('templateDatabase', template);
  return async () => {
    await dropDatabase(ADMIN_DATABASE_URL, template);
  };
}
