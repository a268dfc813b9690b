// The queues the dashboard process lists: the batch queue, and the retention queue
// (src/worker/archiver.ts) so a failed retention run is visible and retried from there.
// Against the real `npm run dashboard` process and the real retention worker.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_PATH } from '../../src/dashboard/dashboard.js';
import { createPrisma } from '../../src/db/client.js';
import { startArchiver } from '../../src/worker/archiver.js';
import { openRedis } from '../../src/redis.js';
import { loadConfig } from '../../src/config.js';
import { queuePrefix } from '../../src/contract/keys.js';
import { freePort, spawnTs, type Child } from '../faults/support/processes.js';
import {
  REDIS_URL,
  createTestRedis,
  databaseUrl,
  uniqueName,
  waitFor,
  type TestRedis,
} from '../support/services.js';

let r: TestRedis;
let dashboard: Child;
let base: string;

beforeAll(async () => {
  r = await createTestRedis();
  const port = await freePort();
  dashboard = spawnTs('src/dashboard/main.ts', {
    REDIS_URL,
    TALLY_KEY_PREFIX: r.prefix,
    TALLY_DASHBOARD_HOST: '127.0.0.1',
    TALLY_DASHBOARD_PORT: String(port),
    LOG_LEVEL: 'warn',
  });
  base = `http://127.0.0.1:${port}`;
  await waitFor(
    'the dashboard to answer /healthz',
    async () => {
      if (dashboard.exited()) throw new Error(`dashboard exited: ${dashboard.output()}`);
      return (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true
        ? true
        : undefined;
    },
    30_000,
    100,
  );
}, 60_000);

afterAll(async () => {
  await dashboard?.stop('SIGTERM');
  await r?.cleanup();
});

interface Listed {
  queues: { name: string; counts: Record<string, number> }[];
}

async function listQueues(query = ''): Promise<Listed> {
  const response = await fetch(`${base}${DASHBOARD_PATH}/api/queues${query}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Listed;
}

describe('dashboard queues', () => {
  it('lists the batch and retention queues, and a retention run that spent its attempts as failed (logged once as an error)', async () => {
    expect((await listQueues()).queues.map((q) => q.name).sort()).toEqual(['batches', 'retention']);

    // A retention worker whose database does not exist: every run fails.
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const prisma = createPrisma(databaseUrl(uniqueName('tally_missing')), { max: 1 });
    const connection = openRedis(loadConfig({ REDIS_URL }), { maxRetriesPerRequest: null });
    const archiver = await startArchiver({
      prisma,
      logger,
      config: {
        usageDetailsRetentionMonths: 13,
        usageDetailsArchiveBatchSize: 10,
        usageDetailsArchiveCron: '0 3 1 1 *',
      },
      isClosing: () => false,
      connection,
      prefix: queuePrefix(r.prefix),
    });
    try {
      const job = await archiver.queue.add('archive', {}, { attempts: 2 });
      await waitFor(
        'the run to fail after its two attempts',
        async () => ((await job.isFailed()) ? true : undefined),
        30_000,
        50,
      );
      const shown = await waitFor(
        'the dashboard to show the failed retention run',
        async () => {
          const listed = await listQueues('?activeQueue=retention&status=failed');
          const retention = listed.queues.find((q) => q.name === 'retention');
          return (retention?.counts['failed'] ?? 0) === 1 ? retention : undefined;
        },
        10_000,
        100,
      );
      expect(JSON.stringify(shown)).toContain(String(job.id));
      const failedLines = lines.filter((l) => String(l['msg']).startsWith('moving audit rows'));
      expect(failedLines.map((l) => [l['level'], l['attempt']])).toEqual([
        [40, 1],
        [50, 2],
      ]);
      expect(failedLines[1]).toMatchObject({ job: job.id, attempts: 2 });
    } finally {
      await archiver.close();
      connection.disconnect();
      await prisma.$disconnect();
    }
  });
});
