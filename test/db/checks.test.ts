// The invariant oracle itself (src/db/checks.ts): it must flag each way invariant 2 can
// break, or every "invariant 2 holds" in tests, the demo and the bench proves nothing. Audit
// rows count live or archived (retention moves them; the rollups keep them).
// Each case commits real reports through a worker, corrupts the tables by SQL, and
// expects the corruption reported; the tables are emptied before the file's own check.
import { describe, expect, it } from 'vitest';
import { rollupMismatches } from '../../src/db/checks.js';
import { silentLogger } from '../../src/logger.js';
import { archiveExpired } from '../../src/worker/archiver.js';
import { enqueue } from '../support/fixtures.js';
import { useWorkerTestEnv, waitForOutcome } from '../support/pipeline.js';

const env = useWorkerTestEnv();
const day = Date.UTC(2026, 10, 20, 12);

async function commitTwoKeys(): Promise<void> {
  const ids = await enqueue(env.r.redis, env.r.prefix, [
    {
      model: 'qwen3-8b',
      model_id: 1,
      user_id: 1,
      input_token: 10,
      completed: true,
      completed_at: day,
    },
    {
      model: 'qwen3-8b',
      model_id: 1,
      user_id: 1,
      input_token: 20,
      completed: true,
      completed_at: day,
    },
    {
      model: 'qwen3-8b',
      model_id: 1,
      user_id: 2,
      input_token: 5,
      completed: true,
      completed_at: day,
    },
  ]);
  await env.startWorker();
  expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 3, rejected: 0 });
  expect(await rollupMismatches(env.db.prisma)).toEqual([]);
  env.defer(() => env.db.reset()); // leave no corruption for the after-test check
}

describe('rollupMismatches', () => {
  it('flags a rollup whose counts differ from its audit rows', async () => {
    await commitTwoKeys();
    await env.db.prisma.$executeRaw`
      UPDATE model_usages SET prompt_token_count = prompt_token_count + 1 WHERE user_id = 1`;
    const found = await rollupMismatches(env.db.prisma);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ rollup: '31/0/0/2', audit: '30/0/0/2' });
    expect(found[0]?.key).toContain('qwen3-8b');
  });

  it('flags a rollup that lost one of its audit rows', async () => {
    await commitTwoKeys();
    await env.db.prisma.$executeRaw`
      DELETE FROM model_usage_details
      WHERE id = (SELECT min(id) FROM model_usage_details WHERE user_id = 1)`;
    const found = await rollupMismatches(env.db.prisma);
    expect(found).toHaveLength(1);
    expect(found[0]?.rollup).toBe('30/0/0/2');
    expect(found[0]?.audit).toMatch(/^(10|20)\/0\/0\/1$/);
  });

  it('flags a rollup with no audit rows at all, and audit rows with no rollup', async () => {
    await commitTwoKeys();
    await env.db.prisma.$executeRaw`
      INSERT INTO model_usages (date, model_id, model_name, user_id, prompt_token_count,
        completion_token_count, prompt_cached_token_count, request_count)
      VALUES ('2026-11-21', 1, 'qwen3-8b', 3, 7, 0, 0, 1)`;
    await env.db.prisma.$executeRaw`DELETE FROM model_usages WHERE user_id = 2`;
    const found = await rollupMismatches(env.db.prisma);
    expect(found.map((m) => [m.rollup, m.audit]).sort()).toEqual([
      ['', '5/0/0/1'],
      ['7/0/0/1', ''],
    ]);
  });

  it('compares the new key columns: a rollup moved to another route or consumer is flagged', async () => {
    await commitTwoKeys();
    await env.db.prisma.$executeRaw`
      UPDATE model_usages SET consumer_principal_id = 99 WHERE user_id = 2`;
    await env.db.prisma.$executeRaw`UPDATE model_usages SET model_route_id = 7 WHERE user_id = 1`;
    const found = await rollupMismatches(env.db.prisma);
    expect(found.map((m) => [m.rollup, m.audit]).sort()).toEqual([
      ['', '30/0/0/2'],
      ['', '5/0/0/1'],
      ['30/0/0/2', ''],
      ['5/0/0/1', ''],
    ]);
    expect(found.map((m) => m.key).join(' ')).toContain('consumer=99');
  });

  it('counts archived audit rows with the live ones, and flags a lost archived row', async () => {
    await commitTwoKeys();
    // As retention moves it: the same row, same id, in the archive.
    await env.db.prisma.$executeRaw`
      WITH moved AS (
        DELETE FROM model_usage_details
        WHERE id = (SELECT min(id) FROM model_usage_details WHERE user_id = 1)
        RETURNING *)
      INSERT INTO model_usage_details_archive (id, report_id, date, model_id, model_name,
        provider_id, provider_name,
        provider_type, model_route_id, user_id, access_key, operation, consumer_principal_id,
        prompt_token_count, completion_token_count, prompt_cached_token_count, request_count,
        created_at, updated_at)
      SELECT id, report_id, date, model_id, model_name, provider_id, provider_name,
        provider_type, model_route_id, user_id, access_key, operation, consumer_principal_id,
        prompt_token_count, completion_token_count, prompt_cached_token_count, request_count,
        created_at, updated_at
      FROM moved`;
    expect(await env.db.prisma.modelUsageDetailArchive.count()).toBe(1);
    expect(await rollupMismatches(env.db.prisma)).toEqual([]);
    await env.db.prisma.$executeRaw`DELETE FROM model_usage_details_archive`;
    const found = await rollupMismatches(env.db.prisma);
    expect(found).toHaveLength(1);
    expect(found[0]?.rollup).toBe('30/0/0/2');
  });

  it('holds across a real retention run: a rollup equals its live plus archived rows', async () => {
    await commitTwoKeys();
    // Retention (cutoff 2026-12-01) moves the two rows completed on 2026-11-20, and keeps
    // the one marked as completed later.
    await env.db.prisma.$executeRaw`
      UPDATE model_usage_details SET completed_at = '2027-06-01'
      WHERE id = (SELECT max(id) FROM model_usage_details)`;
    const moved = await archiveExpired({
      prisma: env.db.prisma,
      logger: silentLogger,
      config: {
        usageDetailsRetentionMonths: 13,
        usageDetailsArchiveBatchSize: 1,
        usageDetailsArchiveCron: '0 3 * * *',
      },
      now: () => Date.UTC(2028, 0, 1),
    });
    expect(moved).toMatchObject({ cutoff: '2026-12-01T00:00:00.000Z', moved: 2, batches: 2 });
    const [split] = await env.db.prisma.$queryRaw<{ live: number; archived: number }[]>`
      SELECT (SELECT count(*) FROM model_usage_details)::int AS live,
             (SELECT count(*) FROM model_usage_details_archive)::int AS archived`;
    expect(split).toEqual({ live: 1, archived: 2 });
    expect(await rollupMismatches(env.db.prisma)).toEqual([]);

    // An archived row lost is a mismatch like a live one.
    await env.db.prisma.$executeRaw`
      DELETE FROM model_usage_details_archive
      WHERE id = (SELECT min(id) FROM model_usage_details_archive)`;
    const found = await rollupMismatches(env.db.prisma);
    expect(found).toHaveLength(1);
    expect(found[0]?.rollup).toBe('30/0/0/2');
  });
});
