// Fault 8: sustained load through HTTP (aimed at 3,000 reports/s for 60 s, in arrays of
// 100) into a real ingest process, while two worker processes run and one of them is
// killed with SIGKILL and restarted twice. Nothing lost, nothing doubled. The achieved
// rate is measured and printed: on a 2-core machine the load generator, ingest, two
// workers, Redis and PostgreSQL share the cores.
import { describe, expect, it } from 'vitest';
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

    // Kill the victim mid-work twice, restarting it each time.
    const started = Date.now();
    const at = (ms: number) =>
      waitFor(`t+${ms} ms`, () => (Date.now() - started >= ms ? true : undefined), ms + 5_000, 100);
    const kills: number[] = [];
    for (const killAt of [15_000, 35_000]) {
      await at(killAt);
      expect(victim.exited(), victim.output()).toBe(false);
      await victim.stop('SIGKILL');
      kills.push(await t.db.prisma.modelUsageDetail.count());
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
      `achieved ${result.achievedPerSecond}/s over ${(result.elapsedMs / 1000).toFixed(1)} s, backlog drained ${(drainMs / 1000).toFixed(1)} s after the load, kills at ${kills.join(' and ')} committed, refused requests ${refused.length}`,
    );
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
