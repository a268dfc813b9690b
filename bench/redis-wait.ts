// What TALLY_REDIS_WAIT_REPLICAS costs the write path: the producer SDK on a local Redis
// Cluster (3 masters, 3 replicas), rounds of WAIT 0 and WAIT 1 alternated in one run so
// machine load hits both alike. Prints reports/s and call latency per setting and their
// ratio, and writes bench/results-redis-wait.json. `npm run bench:redis-wait`.
import { writeFile } from 'node:fs/promises';
import { loadConfig } from '../src/config.js';
import { UsageProducer } from '../src/producer/producer.js';
import { deleteKeys } from '../devkit/services.js';
import { startLocalCluster } from '../devkit/redis-cluster.js';
import { openRedis } from '../src/redis.js';
import { percentile } from './stats.js';

const ROUNDS = 3;
const REPORTS_PER_ROUND = 6_000;
const CALLERS = 32;

interface Sample {
  waitReplicas: number;
  reportsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const cluster = await startLocalCluster(3, 1);
const config = {
  ...loadConfig({}),
  redisClusterNodes: cluster.seeds,
  keyPrefix: `bench-wait-${process.pid}`,
  partitions: 6,
  producerTimeoutMs: 2_000,
};
const admin = openRedis(config, { maxRetriesPerRequest: 3 });

async function round(waitReplicas: number): Promise<Sample> {
  const producer = UsageProducer.fromConfig({ ...config, redisWaitReplicas: waitReplicas });
  await producer.ping();
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < REPORTS_PER_ROUND) {
        next += 1;
        const t = performance.now();
        await producer.report({ model: 'qwen3-8b', model_id: 1, input_token: 3, completed: true });
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await producer.close();
  latencies.sort((a, b) => a - b);
  return {
    waitReplicas,
    reportsPerSecond: Math.round(REPORTS_PER_ROUND / seconds),
    p50Ms: Number(percentile(latencies, 0.5).toFixed(2)),
    p99Ms: Number(percentile(latencies, 0.99).toFixed(2)),
  };
}

const samples: Sample[] = [];
try {
  for (let r = 0; r < ROUNDS; r += 1) {
    for (const wait of r % 2 === 0 ? [0, 1] : [1, 0]) samples.push(await round(wait));
  }
} finally {
  await deleteKeys(admin, `${config.keyPrefix}:*`);
  admin.disconnect();
  await cluster.cleanup();
}

const median = (wait: number, field: keyof Omit<Sample, 'waitReplicas'>) => {
  const values = samples
    .filter((s) => s.waitReplicas === wait)
    .map((s) => s[field])
    .sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)] as number;
};
const summary = {
  measuredAt: new Date().toISOString(),
  reportsPerRound: REPORTS_PER_ROUND,
  callers: CALLERS,
  rounds: samples,
  medianReportsPerSecond: {
    wait0: median(0, 'reportsPerSecond'),
    wait1: median(1, 'reportsPerSecond'),
  },
  medianP50Ms: { wait0: median(0, 'p50Ms'), wait1: median(1, 'p50Ms') },
  medianP99Ms: { wait0: median(0, 'p99Ms'), wait1: median(1, 'p99Ms') },
  throughputRatioWait1ToWait0: Number(
    (median(1, 'reportsPerSecond') / median(0, 'reportsPerSecond')).toFixed(2),
  ),
};
await writeFile('bench/results-redis-wait.json', `${JSON.stringify(summary, null, 2)}\n`);
console.log(JSON.stringify(summary, null, 2));
