// Fault 7: a gateway that retries. Every report is sent three times with the same
// report_id, by three concurrent HTTP clients in different orders and batch sizes, to a
// real ingest process; workers count each report once.
import { describe, expect, it } from 'vitest';
import { REDIS_URL } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { useWorkerTestEnv } from '../support/pipeline.js';
import { printLine, waitSettled } from './support/accounting.js';
import { post } from './support/load.js';
import { spawnIngest, spawnWorker } from './support/processes.js';

const TOKEN = 'f7-token';
const N = 3_000;

const t = useWorkerTestEnv();

describe('fault 7: a gateway that sends every report three times', () => {
  it('counts each report once', async () => {
    const env = { REDIS_URL, TALLY_KEY_PREFIX: t.r.prefix, TALLY_PARTITIONS: '4' };
    const { child: ingest, base } = await spawnIngest({ ...env, TALLY_GATEWAY_TOKEN: TOKEN });
    t.defer(() => ingest.stop('SIGKILL'));
    const workerEnv = {
      ...env,
      DATABASE_URL: t.db.url,
      TALLY_FLUSH_INTERVAL_MS: '1000',
      TALLY_SEAL_GRACE_MS: '100',
      TALLY_ENTITY_CACHE_MS: '0',
    };
    const workers = [spawnWorker(workerEnv), spawnWorker(workerEnv)];
    for (const w of workers) t.defer(() => w.stop('SIGKILL'));

    const reports = Array.from({ length: N }, (_, i) => ({
      report_id: `f7-${t.r.prefix}-${i}`,
      model: 'llama-3-70b',
      model_id: 2,
      user_id: 1 + (i % 3),
      input_token: 7,
      output_token: 3,
      completed: true,
    }));
    // Three clients: in order by 100, in reverse by 37, interleaved by 250.
    const orders = [
      { items: reports, size: 100 },
      { items: [...reports].reverse(), size: 37 },
      {
        items: reports.filter((_, i) => i % 2 === 0).concat(reports.filter((_, i) => i % 2 === 1)),
        size: 250,
      },
    ];
    const statuses: number[] = [];
    await Promise.all(
      orders.map(async ({ items, size }) => {
        for (let start = 0; start < items.length; start += size) {
          const reply = await post(base, TOKEN, items.slice(start, start + size));
          statuses.push(reply.status);
        }
      }),
    );
    expect(new Set(statuses)).toEqual(new Set([200]));
    const ids = reports.map((x) => x.report_id);

    const tally = await waitSettled({
      prisma: t.db.prisma,
      redis: t.r.redis,
      prefix: t.r.prefix,
      partitions: 4,
      ids,
      timeoutMs: 60_000,
      watch: workers.map((w, i) => ({
        name: `worker ${i}`,
        exited: () => w.exited(),
        output: () => w.output(),
      })),
    });
    await assertRollupsMatchAudit(t.db.prisma);
    printLine(
      'gateway retries (3 concurrent clients, same report_ids)',
      tally,
      `${3 * N} deliveries`,
    );
    expect(tally).toEqual({ sent: N, committed: N, duplicates: 0, rejected: 0, lost: 0 });
    const sums = await t.db.prisma.modelUsage.aggregate({
      _sum: { requestCount: true, promptTokenCount: true },
    });
    expect(sums._sum).toEqual({ requestCount: BigInt(N), promptTokenCount: BigInt(7 * N) });
  });
});
