// The local services of a development machine, shared by tests, the bench and the demo:
// connection defaults, databases created and dropped by name, the Redis keys under a
// prefix, the reports still queued in its streams, and a free local port. Must never be imported by src/
// (production takes its URLs from src/config.ts) and never reads the environment.
import net, { type AddressInfo } from 'node:net';
import pg from 'pg';
import { streamKey } from '../src/contract/keys.js';
import { hashTagged, masters, type RedisClient } from '../src/redis.js';

/** A local PostgreSQL server with trust auth, through its maintenance database. */
export const LOCAL_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
/** A local Redis. */
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

/** The URL of database `name` on the server that `serverUrl` reaches. */
export function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs one statement on its own connection (CREATE/DROP DATABASE cannot run in a pool's transaction). */
export async function adminQuery(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates database `name` (empty, or a copy of `template`); returns its URL. */
export async function createDatabase(
  serverUrl: string,
  name: string,
  template?: string,
): Promise<string> {
  const copy = template === undefined ? '' : ` TEMPLATE "${template}"`;
  await adminQuery(serverUrl, `CREATE DATABASE "${name}"${copy}`);
  return databaseUrl(serverUrl, name);
}

/** Drops database `name` if it exists, disconnecting whoever still uses it. */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await adminQuery(serverUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

/** Drops and creates database `name`, empty; returns its URL. */
export async function recreateDatabase(serverUrl: string, name: string): Promise<string> {
  await dropDatabase(serverUrl, name);
  return createDatabase(serverUrl, name);
}

/** Deletes every key matching `pattern` (e.g. `${prefix}:*`), on every master of a cluster. */
export async function deleteKeys(redis: RedisClient, pattern: string): Promise<void> {
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      // One key per command: on a cluster, keys of one UNLINK must share a slot.
      if (keys.length > 0) await Promise.all(keys.map((key) => node.unlink(key)));
    } while (cursor !== '0');
  }
}

/** Total entries left in the partition streams under `prefix` (sent together). */
export async function streamLength(
  redis: RedisClient,
  prefix: string,
  partitions: number,
): Promise<number> {
  const tagged = hashTagged(redis);
  const lengths = await Promise.all(
    Array.from({ length: partitions }, (_, p) => redis.xlen(streamKey(prefix, p, tagged))),
  );
  return lengths.reduce((sum, n) => sum + n, 0);
}

/** A loopback port that was free a moment ago (bound, then released): nothing listens on it. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
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
