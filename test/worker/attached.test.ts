// Tally writing into GPUStack's own database: after attach mode, the usage tables have
// the columns a fresh Tally database has, and a real worker commits GPUStack-shaped rows
// that GPUStack's own rows and rollups sit next to, with invariant 2 holding over both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGpustackDatabase } from '../../devkit/gpustack.js';
import { createPrisma, type PrismaClient } from '../../src/db/client.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { enqueue } from '../support/fixtures.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { startTestWorker, waitForOutcome } from '../support/pipeline.js';
import {
  adminQuery,
  createTestDatabase,
  createTestRedis,
  databaseUrl,
  uniqueName,
  type TestDatabase,
} from '../support/services.js';

const name = uniqueName('tally_att');
let prisma: PrismaClient;
let fresh: TestDatabase;

beforeAll(async () => {
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = databaseUrl(name);
  await buildGpustackDatabase(url);
  await migrateDatabase(url);
  prisma = createPrisma(url, { max: 4 });
  fresh = await createTestDatabase();
});

afterAll(async () => {
  await prisma.$disconnect();
  await fresh.drop();
  await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
});

async function usageColumns(db: PrismaClient): Promise<string[]> {
  const rows = await db.$queryRaw<{ c: string }[]>`
    SELECT format('%s.%s %s %s', table_name, column_name,
                  CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END,
                  is_nullable) AS c
    FROM information_schema.columns
    WHERE table_schema = 'public'
      AND table_name IN ('model_usages', 'model_usage_details', 'model_usage_details_archive',
                         'rejected_usage_reports')
    ORDER BY 1`;
  return rows.map((r) => r.c);
}

describe('an attached GPUStack database', () => {
  it('has the usage columns, types and nullability of a fresh Tally database', async () => {
    expect(await usageColumns(prisma)).toEqual(await usageColumns(fresh.prisma));
  });

  it('takes commits from a real worker next to GPUStack’s own usage', async () => {
    const r = await createTestRedis();
    const worker = await startTestWorker(prisma, r.prefix);
    try {
      const day = Date.UTC(2026, 10, 20, 12);
      const ids = await enqueue(r.redis, r.prefix, [
        // The key GPUStack's own rollup (id 1) holds: Tally adds to that row.
        {
          model: 'qwen3-8b',
          model_id: 1,
          model_route_id: 1,
          user_id: 3,
          access_key: 'ak_alice',
          operation: 'chat_completion',
          input_token: 5,
          output_token: 3,
          completed: true,
          completed_at: day,
        },
        // The admin's "All"-mode key (no owner): the caller's own USER principal consumes.
        {
          model: 'qwen3-8b',
          model_id: 1,
          model_route_id: 1,
          user_id: 2,
          access_key: 'ak_admin',
          input_token: 7,
          completed: false,
          completed_at: day,
        },
      ]);
      expect(await waitForOutcome(prisma, ids)).toEqual({ committed: 2, rejected: 0 });
    } finally {
      await worker.close();
      await r.cleanup();
    }
    const rollups = await prisma.$queryRaw<Record<string, unknown>[]>`
      SELECT id, user_id, operation::text, consumer_principal_id, consumer_name,
             consumer_principal_kind, prompt_token_count::int AS p,
             completion_token_count::int AS c, request_count::int AS n
      FROM model_usages ORDER BY id`;
    expect(rollups).toEqual([
      {
        id: 1,
        user_id: 3,
        operation: 'CHAT_COMPLETION',
        consumer_principal_id: 1,
        consumer_name: 'default',
        consumer_principal_kind: 'org',
        p: 35,
        c: 15,
        n: 3,
      },
      {
        id: 2,
        user_id: 2,
        operation: null,
        consumer_principal_id: 2,
        consumer_name: 'admin',
        consumer_principal_kind: 'user',
        p: 7,
        c: 0,
        n: 1,
      },
    ]);
    const audit = await prisma.$queryRaw<{ report_id: string | null; completed: boolean }[]>`
      SELECT report_id, completed FROM model_usage_details ORDER BY id`;
    expect(audit.map((a) => [a.report_id === null, a.completed])).toEqual([
      [true, true],
      [true, true],
      [false, true],
      [false, false],
    ]);
    await assertRollupsMatchAudit(prisma);
  });
});
