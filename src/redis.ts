// Every Redis connection a role opens comes from here: a single Redis (REDIS_URL) or a
// Redis Cluster (TALLY_REDIS_CLUSTER_NODES), with the caller's policy (timeouts, retries,
// offline queue) applied to either. Also the few operations that differ on a cluster:
// SCAN over every master, the node that owns a key, and a connection's key layout.
// Must never pick key names (src/contract/keys.ts does) or construct ioredis elsewhere.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';
import { hashSlot } from './contract/keys.js';

/** A connection to a single Redis or to a Redis Cluster; both take the same commands. */
export type RedisClient = Redis | Cluster;

export type RedisTarget = Pick<Config, 'redisUrl' | 'redisClusterNodes'>;

/**
 * Options for one connection, as for a single Redis. On a cluster, `retryStrategy` becomes
 * the cluster's retry strategy and the offline-queue, lazy-connect and auto-pipelining
 * choices apply to the cluster as a whole.
 */
export type ConnectionPolicy = Omit<RedisOptions, 'host' | 'port' | 'path' | 'sentinels'>;

/** Opens a connection to the configured Redis or Redis Cluster. */
export function openRedis(target: RedisTarget, policy: ConnectionPolicy = {}): RedisClient {
  if (target.redisClusterNodes === undefined) return new Redis(target.redisUrl, policy);
  const { retryStrategy, enableOfflineQueue, lazyConnect, enableAutoPipelining, ...redisOptions } =
    policy;
  return new Cluster(target.redisClusterNodes, {
    redisOptions,
    ...(typeof retryStrategy === 'function'
      ? { clusterRetryStrategy: (times: number) => retryStrategy(times) }
      : {}),
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    ...(enableAutoPipelining === undefined ? {} : { enableAutoPipelining }),
    // A failed-over slot is served by its new master within a few seconds.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    // A master that freezes (a hung host, a network that drops packets) closes nothing and
    // answers nothing, so no MOVED or lost socket tells the client that a replica took its
    // slots over: commands for them would wait until it thawed. The slot map is asked for
    // again this often; a node that no longer serves slots is then disconnected, which
    // fails what waits on it (callers retry) and sends later commands to the new master.
    slotsRefreshInterval: 5_000,
    // ioredis's ready check (CLUSTER INFO says ok) is off: when it fails, as it does while a
    // failover is under way, ioredis reconnects and the promise of that connect() never
    // settles. BullMQ awaits that promise to restore a worker's blocking connection, and the
    // worker then takes no job again (seen: a sealer tick left waiting for good). A command
    // sent while the cluster is down is answered CLUSTERDOWN and retried (the delay above).
    enableReadyCheck: false,
  });
}

/** Where the connection points, for messages: the variable and its value (no password). */
export function describeRedis(target: RedisTarget): string {
  if (target.redisClusterNodes !== undefined) {
    const nodes = target.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',');
    return `the Redis Cluster at TALLY_REDIS_CLUSTER_NODES (${nodes})`;
  }
  return `Redis at REDIS_URL (${redactUrl(target.redisUrl)})`;
}

/** Whether keys on this connection must carry hash tags (true on a cluster). */
export function hashTagged(redis: RedisClient): boolean {
  return redis.isCluster;
}

/** The single Redis itself, or each master of the cluster. */
export function masters(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/**
 * The connection that serves `key`: the single Redis, or the cluster's node for the key's
 * slot (the very connection the cluster sends that key's commands on, so a WAIT there
 * covers them). Undefined while the cluster knows no node for the slot.
 */
export function nodeForKey(redis: RedisClient, key: string): Redis | undefined {
  if (!(redis instanceof Cluster)) return redis;
  const nodeKey = redis.slots[hashSlot(key)]?.[0];
  if (nodeKey === undefined) return undefined;
  return redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
}

/** Every key matching `pattern` (of `type`), on the single Redis or on every master. */
export async function scanKeys(
  redis: RedisClient,
  pattern: string,
  type: string,
): Promise<string[]> {
  const keys: string[] = [];
  for (const node of masters(redis)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000, 'TYPE', type);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  return keys;
}

/** A Redis or PostgreSQL URL without its password, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
