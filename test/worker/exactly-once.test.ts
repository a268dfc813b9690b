// Exactly once under repetition and failure: duplicate report ids, a batch run again
// after its commit, concurrent sealers, and a database outage mid-batch.
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { archiveColumns, archiveExpired } from '../../src/worker/archiver.js';
import { ARCHIVE_LOCK_KEYS } from '../../src/worker/writer.js';
import { enqueue } from '../support/fixtures.js';
import { outcomeOf } from '../support/invariants.js';
import {
  cuttableDatabase,
  processBatchesOn,
  startTestWorker,
  streamLength,
  waitForOutcome,
  useWorkerTestEnv,
} from '../support/pipeline.js';
import { REDIS_URL, waitFor } from '../support/services.js';
import type { RunningWorker } from '../../src/worker/worker.js';

const env = useWorkerTestEnv();

const report = (i: number) => ({
  model: 'qwen3-8b',
  model_id: 1,
  user_id: 1 + (i % 3),
  input_token: 10 + i,
  output_token: 5,
  completed: true,
});

async function rollupTotals() {
  return env.db.prisma.modelUsage.aggregate({
    _sum: { promptTokenCount: true, completionTokenCount: true, requestCount: true },
  });
}

/** Retention as the scheduler runs it: audit rows older than 13 months move to the archive. */
const archiveOld = () =>
  archiveExpired({
    prisma: env.db.prisma,
    logger: silentLogger,
    config: {
      usageDetailsRetentionMonths: 13,
      usageDetailsArchiveBatchSize: 100,
      usageDetailsArchiveCron: '0 3 * * *',
    },
  });

/** Once the resent copy's window is done: it was a duplicate, the row is only in the archive. */
async function expectCountedOnceInArchive(worker: RunningWorker) {
  await waitFor('the stream drained', async () =>
    (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
  );
  await waitFor('jobs done', async () =>
    (await worker.batches.getActiveCount()) === 0 ? true : undefined,
  );
  const results = (await worker.batches.getJobs(['completed'])).map((j) => j.returnvalue);
  expect(results.reduce((n, x) => n + x.duplicates, 0)).toBe(1);
  const [rows] = await env.db.prisma.$queryRaw<{ live: number; archived: number }[]>`
    SELECT (SELECT count(*) FROM model_usage_details)::int AS live,
           (SELECT count(*) FROM model_usage_details_archive)::int AS archived`;
  expect(rows).toEqual({ live: 0, archived: 1 });
  expect((await rollupTotals())._sum.requestCount).toBe(1n);
}

describe('exactly once', () => {
  it('counts a report_id sent twice once, within a window and across windows', async () => {
    const first = await enqueue(env.r.redis, env.r.prefix, [report(1), report(2)]);
    await enqueue(env.r.redis, env.r.prefix, [{ ...report(1), report_id: first[0] }]);
    const worker = await env.startWorker();
    await waitForOutcome(env.db.prisma, first);
    await waitFor('stream drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
    // The same id again, in a later window of another partition.
    await enqueue(env.r.redis, env.r.prefix, [{ ...report(1), report_id: first[0] }], 1);
    await waitFor('second window drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
    await waitFor('jobs done', async () =>
      (await worker.batches.getActiveCount()) === 0 ? true : undefined,
    );

    expect(await outcomeOf(env.db.prisma, first)).toEqual({ committed: 2, rejected: 0 });
    const totals = await rollupTotals();
    expect(totals._sum).toEqual({
      promptTokenCount: 23n,
      completionTokenCount: 10n,
      requestCount: 2n,
    });
    const results = (await worker.batches.getJobs(['completed'])).map((j) => j.returnvalue);
    const sum = (k: 'committed' | 'duplicates') => results.reduce((n, x) => n + x[k], 0);
    expect({ committed: sum('committed'), duplicates: sum('duplicates') }).toEqual({
      committed: 2,
      duplicates: 2,
    });
  });

  it('counts a report_id whose audit row was archived once when it comes back', async () => {
    const old = { ...report(1), completed_at: Date.UTC(2024, 0, 15) };
    const [id] = await enqueue(env.r.redis, env.r.prefix, [old]);
    const worker = await env.startWorker();
    await waitForOutcome(env.db.prisma, [id!]);
    const archived = await archiveOld();
    expect(archived).toMatchObject({ moved: 1 });

    // A replay, or a batch retried after retention ran: the same id again.
    await enqueue(env.r.redis, env.r.prefix, [{ ...old, report_id: id }], 1);
    await expectCountedOnceInArchive(worker);
  });

  it('counts a report_id once when it comes back while the archive batch moving it runs', async () => {
    const old = { ...report(1), completed_at: Date.UTC(2024, 0, 15) };
    const [id] = await enqueue(env.r.redis, env.r.prefix, [old]);
    const worker = await env.startWorker();
    await waitForOutcome(env.db.prisma, [id!]);

    // Hold the archive batch open after its DELETE: an uncommitted archive row with the same
    // id makes its INSERT … ON CONFLICT (id) wait for this transaction.
    const blocker = new pg.Client({ connectionString: env.db.url });
    await blocker.connect();
    env.defer(() => blocker.end());
    const list = (await archiveColumns(env.db.prisma)).map((c) => `"${c}"`).join(', ');
    await blocker.query('BEGIN');
    await blocker.query(
      `INSERT INTO model_usage_details_archive (${list})
       SELECT ${list} FROM model_usage_details WHERE report_id = $1`,
      [id],
    );
    const archiving = archiveOld();
    // Polled from another session: inside its transaction the blocker sees pg_stat_activity
    // as it was at its first read there.
    const waiting = async (n: number) => {
      const [row] = await env.db.prisma.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'`;
      return (row?.n ?? 0) >= n ? true : undefined;
    };
    await waitFor('the archive batch waits, its DELETE done', () => waiting(1));

    // The same id again: its page commit runs while the move is in flight.
    await enqueue(env.r.redis, env.r.prefix, [{ ...old, report_id: id }], 1);
    await waitFor('the page commit waits too', () => waiting(2));
    await blocker.query('ROLLBACK');
    expect(await archiving).toMatchObject({ moved: 1 });

    await expectCountedOnceInArchive(worker);
  });

  it('adds nothing when a batch runs again after its commit (stream delete failed)', async () => {
    const ids = await enqueue(
      env.r.redis,
      env.r.prefix,
      Array.from({ length: 50 }, (_, i) => report(i)),
    );
    // A real connection whose first XDEL fails, as if Redis dropped after the commit.
    const streams = new Redis(REDIS_URL);
    let xdelFailures = 1;
    const realXdel = streams.xdel.bind(streams);
    streams.xdel = ((...args: Parameters<typeof realXdel>) => {
      if (xdelFailures-- > 0) return Promise.reject(new Error('connection lost after commit'));
      return realXdel(...args);
    }) as typeof streams.xdel;
    const sealer = await processBatchesOn(env, streams);

    const job = await waitFor('the batch to complete on its retry', async () => {
      const [done] = await sealer.batches.getJobs(['completed']);
      return done;
    });
    expect(job.attemptsMade).toBe(2);
    expect(job.returnvalue).toEqual({ committed: 0, duplicates: 50, rejected: {}, pages: 1 });
    expect(await outcomeOf(env.db.prisma, ids)).toEqual({ committed: 50, rejected: 0 });
    expect((await rollupTotals())._sum.requestCount).toBe(50n);
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(0);
  });

  it('adds each window once however many sealers tick at the same time', async () => {
    const ids = await enqueue(
      env.r.redis,
      env.r.prefix,
      Array.from({ length: 20 }, (_, i) => report(i)),
    );
    await enqueue(env.r.redis, env.r.prefix, [report(99)], 1);
    const a = await env.startWorker({ flushIntervalMs: 100 });
    const b = await env.startWorker({ flushIntervalMs: 100 });
    await Promise.all([a.sealNow(), b.sealNow(), a.sealNow(), b.sealNow()]);
    await waitForOutcome(env.db.prisma, ids);
    await waitFor('stream drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
    const jobs = await waitFor('both batches done', async () => {
      const done = await a.batches.getJobs(['completed']);
      return done.length === 2 ? done : undefined;
    });
    expect(jobs.map((j) => j.data.partition).sort()).toEqual([0, 1]);
    expect((await rollupTotals())._sum.requestCount).toBe(21n);
  });

  it('fails the batch, not the process, when the connection is lost mid-commit', async () => {
    // Hold the archive lock exclusively: the page commit takes it shared after BEGIN and waits
    // there, holding its pooled connection, until that connection is terminated.
    const blocker = new pg.Client({ connectionString: env.db.url });
    await blocker.connect();
    env.defer(() => blocker.end());
    await blocker.query('BEGIN');
    await blocker.query(`SELECT pg_advisory_xact_lock(${ARCHIVE_LOCK_KEYS})`);
    const ids = await enqueue(
      env.r.redis,
      env.r.prefix,
      Array.from({ length: 20 }, (_, i) => report(i)),
    );
    const worker = await env.startWorker({ batchBackoffMs: 200, batchAttempts: 20 });
    env.defer(() => blocker.query('ROLLBACK')); // before the worker closes: it waits for the commit
    // Polled from another session: one inside a transaction sees pg_stat_activity frozen.
    const committing = await waitFor('the page commit waits on the archive lock', async () => {
      const [waiter] = await env.db.prisma.$queryRaw<{ pid: number }[]>`
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event = 'advisory'`;
      return waiter?.pid;
    });
    await env.db.prisma.$queryRaw`SELECT pg_terminate_backend(${committing}::int)`;
    const failed = await waitFor('the batch to fail once', async () => {
      const [job] = await worker.batches.getJobs(['delayed', 'waiting', 'active', 'failed']);
      return job !== undefined && job.attemptsMade >= 1 ? job : undefined;
    });
    expect(failed.failedReason).toMatch(/terminat/i);
    await blocker.query('ROLLBACK');

    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 20, rejected: 0 });
    expect((await rollupTotals())._sum.requestCount).toBe(20n);
  });

  it('leaves a page in the stream while the database is down and commits it once after', async () => {
    const { prisma, proxy } = await cuttableDatabase(env);
    proxy.cut();
    const ids = await enqueue(
      env.r.redis,
      env.r.prefix,
      Array.from({ length: 30 }, (_, i) => report(i)),
    );
    const worker = await startTestWorker(prisma, env.r.prefix, {
      batchBackoffMs: 200,
      batchAttempts: 50,
    });
    env.defer(() => worker.close());

    const failing = await waitFor('the batch to fail at least twice', async () => {
      const [job] = await worker.batches.getJobs(['delayed', 'waiting', 'active', 'failed']);
      return job !== undefined && job.attemptsMade >= 2 ? job : undefined;
    });
    expect(failing.failedReason).toMatch(/\S/);
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(30);
    expect(await outcomeOf(env.db.prisma, ids)).toEqual({ committed: 0, rejected: 0 });

    proxy.restore();
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 30, rejected: 0 });
    await waitFor('stream drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
    expect((await rollupTotals())._sum.requestCount).toBe(30n);
  });
});
