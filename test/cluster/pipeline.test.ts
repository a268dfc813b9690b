// Tally unchanged on a real 3-master Redis Cluster: reports sent through the SDK and the
// HTTP ingest server are committed once each, the streams end empty, the rollups match the
// audit rows, and the partition streams spread over more than one master.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSlot, streamKey } from '../../src/contract/keys.js';
import { INGEST_PATH } from '../../src/producer/server.js';
import { startLocalCluster, type LocalCluster } from '../../devkit/redis-cluster.js';
import {
  PARTITIONS,
  startClusterPipeline,
  type ClusterPipeline,
} from './support/cluster-pipeline.js';

let cluster: LocalCluster | undefined;
let pipeline: ClusterPipeline | undefined;

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  pipeline = await startClusterPipeline(cluster);
});

afterAll(async () => {
  await pipeline?.close();
  await cluster?.cleanup();
});

function report(i: number) {
  return {
    model: 'qwen3-8b',
    model_id: 1,
    user_id: 1 + (i % 2),
    access_key: 'ak_alice',
    operation: 'chat_completion' as const,
    input_token: 1 + (i % 7),
    output_token: 2,
    completed: true,
    completed_at: Date.now(),
  };
}

describe('on a Redis Cluster', () => {
  it('hash-tags keys so that CLUSTER KEYSLOT agrees with the slot Tally routes by', async () => {
    const p = pipeline as ClusterPipeline;
    const node = (cluster as LocalCluster).nodes[0];
    const { Redis } = await import('ioredis');
    const admin = new Redis((node as { port: number }).port, '127.0.0.1');
    try {
      for (const key of [
        streamKey(p.config.keyPrefix, 0, true),
        streamKey(p.config.keyPrefix, 5, true),
        `{${p.config.keyPrefix}}:batches:wait`,
        'no-tag-at-all',
        'a{}b',
      ]) {
        expect(await admin.call('CLUSTER', 'KEYSLOT', key)).toBe(hashSlot(key));
      }
    } finally {
      admin.disconnect();
    }
    expect(await p.mastersOfStreams()).toBeGreaterThan(1);
  });

  it('commits every report sent through the SDK and the HTTP ingest once, and empties the streams', async () => {
    const p = pipeline as ClusterPipeline;
    const producer = p.producer();
    const viaSdk = [
      ...(await producer.reportMany(Array.from({ length: 300 }, (_, i) => report(i)))),
      ...(await Promise.all(Array.from({ length: 100 }, (_, i) => producer.report(report(i))))),
    ];
    const base = await p.ingest('gw');
    const viaHttp: string[] = [];
    for (let r = 0; r < 10; r += 1) {
      const answer = await fetch(`${base}${INGEST_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': 'gw' },
        body: JSON.stringify(Array.from({ length: 20 }, (_, i) => report(i))),
      });
      expect(answer.status).toBe(200);
      viaHttp.push(...((await answer.json()) as { report_ids: string[] }).report_ids);
    }
    const ids = [...viaSdk, ...viaHttp];
    expect(new Set(ids).size).toBe(600);

    await p.drained();
    const counts = await p.auditCounts(ids);
    expect(counts.size).toBe(ids.length);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(await p.db.prisma.rejectedUsageReport.count()).toBe(0);
    const rollup = await p.db.prisma.modelUsage.aggregate({ _sum: { requestCount: true } });
    expect(rollup._sum.requestCount).toBe(600n);
    for (let i = 0; i < PARTITIONS; i += 1) {
      expect(await p.redis.xlen(streamKey(p.config.keyPrefix, i, true))).toBe(0);
    }
  });
});
