// How the Redis settings parse: a cluster's seed nodes, the refusal of two Redis targets at
// once, and WAIT's timeout kept below the producer's.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { describeRedis } from '../src/redis.js';

describe('Redis configuration', () => {
  it('defaults to one Redis and no WAIT', () => {
    expect(loadConfig({})).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      redisClusterNodes: undefined,
      redisWaitReplicas: 0,
      redisWaitTimeoutMs: 500,
    });
  });

  it('reads the cluster seed nodes, spaces and empty items ignored', () => {
    const c = loadConfig({ TALLY_REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b:7001 ,' });
    expect(c.redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
    ]);
    expect(describeRedis(c)).toBe(
      'the Redis Cluster at TALLY_REDIS_CLUSTER_NODES (10.0.0.1:7000,redis-b:7001)',
    );
  });

  it.each(['redis://a:7000', 'a', 'a:0', 'a:70000', ','])(
    'refuses the node list %j, naming the variable',
    (nodes) => {
      expect(() => loadConfig({ TALLY_REDIS_CLUSTER_NODES: nodes })).toThrow(
        /TALLY_REDIS_CLUSTER_NODES/,
      );
    },
  );

  it('refuses REDIS_URL and TALLY_REDIS_CLUSTER_NODES together', () => {
    expect(() =>
      loadConfig({ REDIS_URL: 'redis://a:6379', TALLY_REDIS_CLUSTER_NODES: 'a:7000' }),
    ).toThrow(ConfigError);
    expect(() =>
      loadConfig({ REDIS_URL: 'redis://a:6379', TALLY_REDIS_CLUSTER_NODES: 'a:7000' }),
    ).toThrow(/set one, not both/);
    // An empty REDIS_URL counts as unset, so a compose file may leave it blank.
    expect(
      loadConfig({ REDIS_URL: '', TALLY_REDIS_CLUSTER_NODES: 'a:7000' }).redisClusterNodes,
    ).toHaveLength(1);
  });

  it('keeps the WAIT timeout below the producer timeout when WAIT is on', () => {
    expect(() =>
      loadConfig({ TALLY_REDIS_WAIT_REPLICAS: '1', TALLY_REDIS_WAIT_TIMEOUT_MS: '1000' }),
    ).toThrow(/TALLY_REDIS_WAIT_TIMEOUT_MS/);
    expect(
      loadConfig({ TALLY_REDIS_WAIT_REPLICAS: '1', TALLY_REDIS_WAIT_TIMEOUT_MS: '200' }),
    ).toMatchObject({ redisWaitReplicas: 1, redisWaitTimeoutMs: 200 });
  });
});
