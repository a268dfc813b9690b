// A connection to a Redis Cluster through a master's failure. One whose state is fail (a
// master gone, no replica to take over: what every failover passes through) still finishes
// connecting. With ioredis's ready check on, connect() never settled there, and a BullMQ
// worker that awaited it to restore its blocking connection took no job again. And a
// master that freezes rather than dies is left for the replica that takes over within one
// slot refresh, not when it thaws (src/redis.ts).
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { hashSlot } from '../../src/contract/keys.js';
import { openRedis, type RedisClient } from '../../src/redis.js';
import { withTimeout } from '../../src/readiness.js';
import { startLocalCluster, type LocalCluster } from '../../devkit/redis-cluster.js';
import { waitFor } from '../support/services.js';

let cluster: LocalCluster | undefined;
let redis: RedisClient | undefined;

afterEach(async () => {
  redis?.disconnect();
  await cluster?.cleanup();
  redis = undefined;
  cluster = undefined;
});

it('finishes connecting while the cluster state is fail', async () => {
  cluster = await startLocalCluster(3, 0);
  const [victim, ...live] = cluster.nodes;
  if (victim === undefined || live[0] === undefined) throw new Error('the cluster has no nodes');
  await cluster.kill(victim);
  const survivor = new Redis(live[0].port, '127.0.0.1');
  try {
    await waitFor(
      'the cluster to declare itself failed',
      async () =>
        String(await survivor.call('CLUSTER', 'INFO')).includes('cluster_state:fail')
          ? true
          : undefined,
      30_000,
      100,
    );
  } finally {
    survivor.disconnect();
  }

  redis = openRedis(
    { ...loadConfig({}), redisClusterNodes: live.map(({ host, port }) => ({ host, port })) },
    { lazyConnect: true, maxRetriesPerRequest: null },
  );
  await withTimeout(redis.connect(), 10_000, 'the cluster connection');
  expect(redis.status).toBe('ready');
});

it("reaches a frozen master's slots through the replica that took over, while it stays frozen", async () => {
  cluster = await startLocalCluster(3, 1);
  redis = openRedis(
    { ...loadConfig({}), redisClusterNodes: cluster.seeds },
    { maxRetriesPerRequest: 3 },
  );
  const key = '{frozen}key';
  const slot = hashSlot(key);
  const victim = await cluster.masterOfSlot(slot);
  // A frozen master keeps its connections open and answers nothing: no error, no MOVED,
  // no closed socket tells the client that its replica has taken the slots over.
  cluster.freeze(victim);
  try {
    const c = cluster;
    await waitFor(
      "the victim's replica to take over its slots",
      async () => ((await c.masterOfSlot(slot)).port === victim.port ? undefined : true),
      30_000,
      100,
    );
    const client = redis;
    await waitFor(
      'the connection to write to the new master',
      async () =>
        withTimeout(client.set(key, 'after'), 1_000, 'SET').then(
          (reply) => (reply === 'OK' ? true : undefined),
          () => undefined,
        ),
      20_000,
      100,
    );
    expect(await withTimeout(redis.get(key), 1_000, 'GET')).toBe('after');
  } finally {
    cluster.thaw(victim);
  }
});
