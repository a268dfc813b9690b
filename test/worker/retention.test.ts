// Retention against an attached GPUStack database (devkit/gpustack.ts + attach mode):
// which rows move (GPUStack's cutoff), that they move whole, that a process killed
// mid-move leaves every row in exactly one table, and that several workers run each
// scheduled slot once.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import { buildGpustackDatabase } from '../../devkit/gpustack.js';
import { createPrisma, type PrismaClient } from '../../src/db/client.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/logger.js';
import { ARCHIVE_SCHEDULER_ID, archiveExpired } from '../../src/worker/archiver.js';
import { startTestWorker } from '../support/pipeline.js';
import {
  adminQuery,
  createTestRedis,
  databaseUrl,
  uniqueName,
  waitFor,
} from '../support/services.js';

const name = uniqueName('tally_ret');
const url = databaseUrl(name);
let client: pg.Client;
let prisma: PrismaClient;

beforeAll(async () => {
  await adminQuery(`CREATE DATABASE "${name}"`);
  await buildGpustackDatabase(url, { seed: false });
  await migrateDatabase(url);
  client = new pg.Client({ connectionString: url });
  await client.connect();
  prisma = createPrisma(url, { max: 2 });
});

afterAll(async () => {
  await prisma.$disconnect();
  await client.end();
  await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
});

beforeEach(async () => {
  await client.query('TRUNCATE model_usage_details, model_usage_details_archive RESTART IDENTITY');
});

/** Inserts `n` audit rows; row i completed `completedAt` + i seconds (naive UTC). */
async function insertRows(n: number, completedAt: string | null, createdAt: string): Promise<void> {
  await client.query(
    `INSERT INTO model_usage_details (report_id, request_count, model_id, model_name, date,
       prompt_token_count, completion_token_count, completed, operation, completed_at,
       created_at, updated_at)
     SELECT 'r-' || $4 || '-' || i, 1 + i % 3, 1, 'qwen3-8b', $3::timestamp::date, i, 2 * i,
            i % 2 = 0, 'CHAT_COMPLETION',
            $1::timestamp + i * interval '1 second', $3::timestamp, $3::timestamp
     FROM generate_series(1, $2::int) i`,
    [completedAt, n, createdAt, `${completedAt ?? 'null'}-${createdAt}`],
  );
}

const config = (batch: number) => ({
  usageDetailsRetentionMonths: 13,
  usageDetailsArchiveBatchSize: batch,
  usageDetailsArchiveCron: '0 3 * * *',
});

async function counts(): Promise<{ hot: number; archived: number; both: number; ids: number }> {
  const { rows } = await client.query<{
    hot: number;
    archived: number;
    both: number;
    ids: number;
  }>(`
    SELECT (SELECT count(*) FROM model_usage_details)::int AS hot,
           (SELECT count(*) FROM model_usage_details_archive)::int AS archived,
           (SELECT count(*) FROM model_usage_details h
              JOIN model_usage_details_archive a USING (id))::int AS both,
           (SELECT count(DISTINCT report_id) FROM (
              SELECT report_id FROM model_usage_details
              UNION ALL SELECT report_id FROM model_usage_details_archive) u)::int AS ids`);
  const row = rows[0];
  if (row === undefined) throw new Error('no counts');
  return row;
}

describe('retention', () => {
  it('moves rows past the cutoff (completed_at, else created_at), whole, in batches', async () => {
    const now = Date.parse('2026-11-28T03:00:00Z');
    // cutoff = 2025-10-28 03:00:00 UTC
    await insertRows(5, '2025-10-28 02:59:50', '2025-10-28 02:59:50'); // 02:59:51..55: past
    await insertRows(5, '2025-10-28 02:59:57', '2025-09-01 00:00:00'); // completed 02:59:58..03:00:02: 2 past
    await insertRows(3, null, '2025-10-28 02:59:59'); // created before the cutoff: past
    await insertRows(3, null, '2025-10-28 03:00:00'); // created at the cutoff: stays
    await insertRows(4, '2026-11-27 00:00:00', '2020-01-01 00:00:00'); // recent completion: stays
    const columns =
      'id, report_id, request_count, model_name, date, prompt_token_count, completion_token_count, completed, operation, completed_at, created_at';
    const before = await client.query(`SELECT ${columns} FROM model_usage_details ORDER BY id`);

    const result = await archiveExpired({
      prisma,
      logger: silentLogger,
      config: config(2),
      now: () => now,
    });
    expect(result).toEqual({ cutoff: '2025-10-28T03:00:00.000Z', moved: 10, batches: 5 });

    const archived = await client.query(
      `SELECT ${columns} FROM model_usage_details_archive ORDER BY id`,
    );
    const expectedIds = [1, 2, 3, 4, 5, 6, 7, 11, 12, 13];
    expect(archived.rows).toEqual(
      before.rows.filter((r: { id: number }) => expectedIds.includes(r.id)),
    );
    const hot = await client.query<{ id: number }>(
      'SELECT id FROM model_usage_details ORDER BY id',
    );
    expect(hot.rows.map((r) => r.id)).toEqual([8, 9, 10, 14, 15, 16, 17, 18, 19, 20]);

    // Nothing more to move: a second run moves nothing.
    expect(
      await archiveExpired({ prisma, logger: silentLogger, config: config(2), now: () => now }),
    ).toMatchObject({ moved: 0, batches: 0 });
  });

  it('leaves every row in exactly one table when the mover is SIGKILLed mid-move', async () => {
    const total = 20_000;
    await insertRows(total, '2020-01-01 00:00:00', '2020-01-01 00:00:00');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/worker/fixtures/archive-child.ts', url, '7'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on('exit', (code, signal) => resolve(signal ?? code)),
    );
    try {
      await waitFor(
        'the mover to be part-way',
        async () => ((await counts()).archived >= 2_000 ? true : undefined),
        60_000,
        10,
      );
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }
    // The server finishes or rolls back the statement in flight; wait for its connection to go.
    await waitFor('the killed mover’s session to end', async () => {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name NOT LIKE 'vitest%' AND state = 'active'`,
      );
      return rows[0]?.n === 0 ? true : undefined;
    });
    const killed = await counts();
    expect(killed.hot).toBeGreaterThan(0); // really stopped part-way
    expect(killed.archived).toBeGreaterThan(0);
    expect(killed).toMatchObject({ both: 0, ids: total });
    expect(killed.hot + killed.archived).toBe(total);

    // The next run finishes the job.
    const rest = await archiveExpired({ prisma, logger: silentLogger, config: config(1_000) });
    expect(rest.moved).toBe(killed.hot);
    expect(await counts()).toEqual({ hot: 0, archived: total, both: 0, ids: total });
  });

  it('runs each scheduled slot once across several workers', async () => {
    const r = await createTestRedis();
    const runs: { job: string; worker: number; moved: number }[] = [];
    const workers = await Promise.all(
      [0, 1, 2].map(() =>
        startTestWorker(
          prisma,
          r.prefix,
          // Every second (6 fields: seconds first), so several slots pass in a test.
          { usageDetailsArchiveCron: '* * * * * *', usageDetailsArchiveBatchSize: 50 },
          { seal: false, process: false },
        ),
      ),
    );
    try {
      await insertRows(500, '2020-01-01 00:00:00', '2020-01-01 00:00:00');
      workers.forEach((w, i) =>
        w.archiver?.worker.on('completed', (job: Job, result: { moved: number }) => {
          runs.push({ job: String(job.id), worker: i, moved: result.moved });
        }),
      );
      await waitFor('four scheduled runs', () => (runs.length >= 4 ? true : undefined), 30_000);
      const schedulers = await workers[0]?.archiver?.queue.getJobSchedulers();
      expect(schedulers?.map((s) => s.key)).toEqual([ARCHIVE_SCHEDULER_ID]);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
      await r.cleanup();
    }
    const jobs = runs.map((run) => run.job);
    expect(new Set(jobs).size).toBe(jobs.length); // no slot ran twice
    for (const job of jobs)
      expect(job).toMatch(new RegExp(`^repeat:${ARCHIVE_SCHEDULER_ID}:\\d+$`));
    expect(runs.reduce((sum, run) => sum + run.moved, 0)).toBe(500);
    expect(await counts()).toEqual({ hot: 0, archived: 500, both: 0, ids: 500 });
  });
});
