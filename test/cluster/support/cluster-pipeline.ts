// The whole pipeline on a local Redis Cluster: a seeded test database, a worker, the SDK and
// the real HTTP ingest server, all configured the way an operator would configure them
// (TALLY_REDIS_CLUSTER_NODES), plus the accounting the cluster tests share.
import { loadConfig, type Config } from '../../../src/config.js';
import { hashSlot, streamKey } from '../../../src/contract/keys.js';
import { pino } from 'pino';
import { openSealerQueue } from '../../../src/worker/queues.js';
import { silentLogger } from '../../../src/logger.js';
import { UsageProducer } from '../../../src/producer/producer.js';
import { buildIngestServer } from '../../../src/producer/server.js';
import { openRedis, type RedisClient } from '../../../src/redis.js';
import { startWorker, type RunningWorker } from '../../../src/worker/worker.js';
import { seedWorld } from '../../../devkit/world.js';
import { deleteKeys, streamLength } from '../../../devkit/services.js';
import { assertRollupsMatchAudit } from '../../support/invariants.js';
import {
  createTestDatabase,
  uniqueName,
  waitFor,
  type TestDatabase,
} from '../../support/services.js';
import type { LocalCluster } from '../../../devkit/redis-cluster.js';

export const PARTITIONS = 6;

export interface ClusterPipeline {
  config: Config;
  db: TestDatabase;
  redis: RedisClient;
  worker: RunningWorker;
  producer(overrides?: Partial<Config>): UsageProducer;
  /** The real ingest server on its own producer; returns its base URL. */
  ingest(token: string): Promise<string>;
  /** Waits until the streams are empty and no batch is waiting or running. */
  drained(timeoutMs?: number): Promise<void>;
  /** Audit rows per report id among `ids` (a report committed twice shows 2). */
  auditCounts(ids: string[]): Promise<Map<string, number>>;
  /** Distinct masters serving the partition streams. */
  mastersOfStreams(): Promise<number>;
  close(): Promise<void>;
}

export async function startClusterPipeline(cluster: LocalCluster): Promise<ClusterPipeline> {
  const config: Config = {
    ...loadConfig({}),
    redisClusterNodes: cluster.seeds,
    keyPrefix: uniqueName('tc'),
    partitions: PARTITIONS,
    flushIntervalMs: 300,
    sealGraceMs: 30,
    entityCacheMs: 0,
    batchBackoffMs: 100,
    producerTimeoutMs: 2_000,
  };
  const db = await createTestDatabase();
  await seedWorld(db.prisma);
  const redis = openRedis(config, { maxRetriesPerRequest: 3 });
  // The worker's warnings and errors, kept (bounded) for a drain that times out to show.
  const said: string[] = [];
  const logger = pino(
    { level: 'warn' },
    {
      write: (line: string) => {
        if (said.push(line) > 50) said.shift();
      },
    },
  );
  const worker = await startWorker({ config, prisma: db.prisma, logger });
  const sealer = openSealerQueue(redis, config.keyPrefix);
  const closers: (() => Promise<unknown>)[] = [];

  return {
    config,
    db,
    redis,
    worker,
    producer(overrides = {}) {
      const producer = UsageProducer.fromConfig({ ...config, ...overrides });
      closers.push(() => producer.close());
      return producer;
    },
    async ingest(token) {
      const producer = UsageProducer.fromConfig(config);
      const server = buildIngestServer({ producer, gatewayToken: token, logger: silentLogger });
      closers.push(async () => {
        await server.close();
        await producer.close();
      });
      return server.listen({ host: '127.0.0.1', port: 0 });
    },
    async drained(timeoutMs = 40_000) {
      let seen = '';
      await waitFor(
        'the streams to drain and the batch queue to empty',
        async () => {
          const left = await streamLength(redis, config.keyPrefix, PARTITIONS);
          const counts = await worker.batches.getJobCounts('waiting', 'active', 'delayed');
          const busy =
            (counts['waiting'] ?? 0) + (counts['active'] ?? 0) + (counts['delayed'] ?? 0);
          const active = await worker.batches.getJobs(['active']);
          const next = (await sealer.getJobScheduler('seal'))?.next;
          const ticks = await sealer.getJobCounts(
            'wait',
            'active',
            'delayed',
            'failed',
            'completed',
          );
          seen = `${left} entries left, jobs ${JSON.stringify(counts)}; active: ${
            active.map((j) => `${j.id} ${JSON.stringify(j.progress)}`).join(', ') || 'none'
          }; next sealer tick ${next === undefined ? 'none' : `${next - Date.now()} ms from now`}; sealer jobs ${JSON.stringify(ticks)}`;
          return left === 0 && busy === 0 ? true : undefined;
        },
        timeoutMs,
        100,
      ).catch((error: unknown) => {
        throw new Error(
          `${(error as Error).message}\n${seen}\nthe worker said:\n${said.join('') || '(nothing)'}`,
        );
      });
    },
    async auditCounts(ids) {
      const rows = await db.prisma.$queryRawUnsafe<{ report_id: string; n: bigint }[]>(
        'SELECT report_id, count(*) AS n FROM model_usage_details WHERE report_id = ANY($1) GROUP BY report_id',
        ids,
      );
      return new Map(rows.map((r) => [r.report_id, Number(r.n)]));
    },
    async mastersOfStreams() {
      const ports = new Set<number>();
      for (let p = 0; p < PARTITIONS; p += 1) {
        const node = await cluster.masterOfSlot(hashSlot(streamKey(config.keyPrefix, p, true)));
        ports.add(node.port);
      }
      return ports.size;
    },
    async close() {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      await sealer.close();
      await worker.close();
      await assertRollupsMatchAudit(db.prisma);
      await deleteKeys(redis, `${config.keyPrefix}:*`).catch(() => undefined);
      await deleteKeys(redis, `{${config.keyPrefix}}:*`).catch(() => undefined);
      redis.disconnect();
      await db.drop();
    },
  };
}
