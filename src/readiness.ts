// What each long-running role depends on, checked twice: once at start (a role whose
// dependency is missing exits with one line naming the variable to fix) and on every
// GET /readyz (one entry per dependency, each with a `status`). Redis only here, so the
// ingest role can use it without loading Prisma; PostgreSQL's check is in db/readiness.ts.
// Must never print a password or hang longer than a check's timeout.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { errorLine, type Logger } from './logger.js';
import { describeRedis, openRedis, type RedisTarget } from './redis.js';

export type DependencyState =
  | { status: 'ok'; [detail: string]: unknown }
  | { status: 'unavailable'; message: string; [detail: string]: unknown };

export interface Dependency {
  name: string;
  check(): Promise<DependencyState>;
}

export interface Readiness {
  status: 'ok' | 'unavailable';
  [dependency: string]: DependencyState | string;
}

/** A dependency missing at start: its message is one line that says what to fix. */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
}

/** Runs every check; `status` is ok only when all are. */
export async function readiness(dependencies: readonly Dependency[]): Promise<Readiness> {
  const states = await Promise.all(dependencies.map(async (d) => [d.name, await d.check()]));
  const result: Readiness = { status: 'ok' };
  for (const [name, state] of states as [string, DependencyState][]) {
    result[name] = state;
    if (state.status !== 'ok') result.status = 'unavailable';
  }
  return result;
}

/** At start: throws DependencyError with the first unavailable dependency's message. */
export async function requireDependencies(dependencies: readonly Dependency[]): Promise<void> {
  for (const dependency of dependencies) {
    const state = await dependency.check();
    if (state.status !== 'ok') throw new DependencyError(state.message);
  }
}

/** GET /readyz: 200 with every dependency ok, else 503; both carry `status`. */
export function registerReadyz(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>,
  dependencies: readonly Dependency[],
): void {
  app.get('/readyz', async (_request, reply) => {
    const result = await readiness(dependencies);
    return reply.code(result.status === 'ok' ? 200 : 503).send(result);
  });
}

/** A URL as it may be printed: the password replaced. */
export { redactUrl } from './redis.js';

const CHECK_TIMEOUT_MS = 2_000;

/** Rejects after `ms` so a frozen server cannot hang a check. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Redis, pinged on a connection of the check's own that never queues a command, so an
 * unreachable server answers `unavailable` at once. `close()` it with the role.
 */
export function redisDependency(target: RedisTarget): Dependency & { close(): void } {
  const redis = openRedis(target, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: CHECK_TIMEOUT_MS,
  });
  redis.on('error', () => undefined); // reported through check(), not as an unhandled event
  return {
    name: 'redis',
    async check() {
      try {
        if (redis.status === 'wait' || redis.status === 'end') {
          await withTimeout(redis.connect(), CHECK_TIMEOUT_MS, 'Redis');
        }
        await withTimeout(redis.ping(), CHECK_TIMEOUT_MS, 'Redis');
        return { status: 'ok' };
      } catch (error) {
        return {
          status: 'unavailable',
          message: `${describeRedis(target)} does not answer: ${errorLine(error)}; start it or fix ${target.redisClusterNodes === undefined ? 'REDIS_URL' : 'TALLY_REDIS_CLUSTER_NODES'}`,
        };
      }
    },
    close: () => redis.disconnect(),
  };
}
