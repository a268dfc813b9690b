// Fault 8: sustained load through HTTP (aimed at 3,000 reports/s for 60 s, in arrays of
// 100) into a real ingest process, while two worker processes run and one of them is
// killed with SIGKILL and restarted twice, each time while it holds a batch (seen in
// Redis: an active, locked batch job processed by its pid). Nothing lost, nothing
// doubled. The achieved rate is measured and printed: on a 2-core machine the load
// generator, ingest, two workers, Redis and PostgreSQL share the cores.
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { BATCH_QUEUE } from '../../src/contract/keys.js';
import { REDIS_URL, waitFor } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { useWorkerTestEnv } from '../support/pipeline.js';
import { printLine, waitSettled } from './support/accounting.js';
import { runLoad } from './support/load.js';
import { spawnIngest, spawnWorker } from './support/processes.js';

const TOKEN = 'f8-token';
const RATE = 3_000;
const DURATION_MS = 60_000;
const PARTITIONS = 4;

const t = useWorkerTestEnv();

/**
 * Ids of the batches `pid`'s worker holds now: in BullMQ's active list, locked, and
 * processed by it (the worker names itself `<hostname>:<pid>`). A SIGKILLed worker's lock
 * outlives it until it expires, so right after the kill this still shows what it held.
 */
async function batchesHeldBy(redis: Redis, prefix: string, pid: number): Promise<string[]> {
  const queue = `${prefix}:${BATCH_QUEUE}`;
  const name = `${hostname()}:${pid}`;
  const held: string[] = [];
  for (const id of await redis.lrange(`${queue}:active`, 0, -1)) {
    const [processedBy, locked] = await Promise.all([
      redis.hget(`${queue}:${id}`, 'pb'),
      redis.exists(`${queue}:${id}:lock`),
    ]);
    if (processedBy === name && locked === 1) held.push(id);
  }
  return held;
}

describe('fault 8: sustained load while a worker is killed and restarted twice', () => {
  it('loses nothing and doubles nothing', async () => {
    const env = { REDIS_URL, TALLY_KEY_PREFIX: t.r.prefix, TALLY_PARTITIONS: String(PARTITIONS) };
    const { child: ingest, base } = await spawnIngest({ ...env, TALLY_GATEWAY_TOKEN: TOKEN });
    t.defer(() => ingest.stop('SIGKILL'));
    const workerEnv = {
      ...env,
      DATABASE_URL: t.db.url,
      TALLY_FLUSH_INTERVAL_MS: '2000',
      TALLY_SEAL_GRACE_MS: '200',
      TALLY_BATCH_LOCK_MS: '3000',
      TALLY_BATCH_BACKOFF_MS: '250',
      TALLY_BATCH_ATTEMPTS: '100',
    };
    const steady = spawnWorker(workerEnv);
    let victim = spawnWorker(workerEnv);
    t.defer(() => steady.stop('SIGKILL'));
    // Stops whichever victim is current when the test ends.
    t.defer(() => victim.stop('SIGKILL'));

    const load = runLoad({
      base,
      token: TOKEN,
      ratePerSecond: RATE,
      reportsPerRequest: 100,
      durationMs: DURATION_MS,
      concurrency: 6,
      deadlineMs: DURATION_MS + 30_000,
      body: (n) =>
        Array.from({ length: 100 }, (_, i) => ({
          model: i % 5 === 0 ? 'gpt-4o' : 'qwen3-8b',
          ...(i % 5 === 0 ? { provider_id: 1 } : { model_id: 1 }),
          user_id: 1 + ((n + i) % 3),
          access_key: i % 2 === 0 ? 'ak_alice' : null,
          input_token: 1 + (i % 17),
          output_token: 2,
          input_cached_token: i % 3,
          completed: true,
        })),
    });

    // Twice: from a point in the load on, wait until the victim holds a batch, kill it
    // at once, check that it died holding it, restart it.
    const started = Date.now();
    const at = (ms: number) =>
      waitFor(`t+${ms} ms`, () => (Date.now() - started >= ms ? true : undefined), ms + 5_000, 100);
    const kills: { committed: number; held: string[] }[] = [];
    for (const killAt of [15_000, 35_000]) {
      await at(killAt);
      expect(victim.exited(), victim.output()).toBe(false);
      const pid = victim.pid;
      await waitFor(
        `worker ${pid} to hold a batch`,
        async () =>
          (await batchesHeldBy(t.r.redis, t.r.prefix, pid)).length > 0 ? true : undefined,
        // A restarted worker under tsx on a loaded 2-core machine can take long to start.
        60_000,
        10,
      );
      await victim.stop('SIGKILL');
      const held = await batchesHeldBy(t.r.redis, t.r.prefix, pid);
      kills.push({ committed: await t.db.prisma.modelUsageDetail.count(), held });
      await at(killAt + 3_000);
      victim = spawnWorker(workerEnv);
    }
    const result = await load;
    const refused = [...result.statuses].filter(([status]) => status !== 200);

    const current = victim;
    const tally = await waitSettled({
      prisma: t.db.prisma,
      redis: t.r.redis,
      prefix: t.r.prefix,
      partitions: PARTITIONS,
      ids: result.acknowledged,
      timeoutMs: 180_000,
      watch: [
        { name: 'steady worker', exited: () => steady.exited(), output: () => steady.output() },
        {
          name: 'restarted worker',
          exited: () => current.exited(),
          output: () => current.output(),
        },
        { name: 'ingest', exited: () => ingest.exited(), output: () => ingest.output() },
      ],
    });
    const drainMs = Date.now() - started - result.elapsedMs;
    await assertRollupsMatchAudit(t.db.prisma);
    printLine(
      `sustained load, aimed at ${RATE}/s for ${DURATION_MS / 1000} s, worker SIGKILLed twice`,
      tally,
      `achieved ${result.achievedPerSecond}/s over ${(result.elapsedMs / 1000).toFixed(1)} s, backlog drained ${(drainMs / 1000).toFixed(1)} s after the load, kills at ${kills.map((k) => `${k.committed} committed holding batch ${k.held.join(', ')}`).join(' and ')}, refused requests ${refused.length}`,
    );
    // Each kill hit a batch in flight: the dead worker's lock was still on it.
    expect(kills.map((k) => k.held.length > 0)).toEqual([true, true]);
    expect(refused).toEqual([]);
    expect(tally).toEqual({
      sent: result.acknowledged.length,
      committed: result.acknowledged.length,
      duplicates: 0,
      rejected: 0,
      lost: 0,
    });
    expect(result.acknowledged.length).toBe((RATE * DURATION_MS) / 1000);
  });
});
