// Fault 5: poison entries written straight into a stream, next to valid reports in the
// same window: not JSON, JSON failing the contract, an entry without the report field,
// and 5 MB entries. Each is rejected with its reason; the rest of the window commits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageProducer } from '../../src/producer/index.js';
import { MAX_RAW_LENGTH } from '../../src/worker/core/page.js';
import { seedWorld, xaddRaw } from '../support/fixtures.js';
import {
  REDIS_URL,
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
} from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { printLine, tallyOf, waitSettled } from './support/accounting.js';
import { spawnWorker, type Child } from './support/processes.js';

const pick = (c: Child) => ({ exited: () => c.exited(), output: () => c.output() });

let db: TestDatabase;
let r: TestRedis;
let worker: Child | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createTestRedis();
  await seedWorld(db.prisma);
});
afterAll(async () => {
  await worker?.stop('SIGKILL');
  await r?.cleanup();
  await db?.drop();
});

describe('fault 5: poison entries in a stream', () => {
  it('rejects each with its reason and commits the rest of the window', async () => {
    const producer = new UsageProducer({ redis: r.redis, keyPrefix: r.prefix, partitions: 1 });
    const huge = 'x'.repeat(5 * 1024 * 1024);
    const poison = [
      { payload: '{"model": "qwen3-8b", "input_token": 1', why: /not JSON/ },
      { payload: 'DROP TABLE model_usages; --', why: /not JSON/ },
      {
        payload: JSON.stringify({ report_id: 'p-neg', model: 'm', input_token: -1 }),
        why: /input_token/,
      },
      {
        payload: JSON.stringify({ report_id: 'p-big', model: 'm', input_token: 2 ** 53 + 2 }),
        why: /input_token/,
      },
      {
        payload: JSON.stringify({ report_id: 'p-nan', model: 'm', output_token: 'NaN' }),
        why: /output_token/,
      },
      { payload: JSON.stringify([1, 2, 3]), why: /report|expected object/i },
      { payload: JSON.stringify({ report_id: 'p-huge', model: huge }), why: /model/ },
      { payload: `{"model":"${huge}`, why: /not JSON/ },
      { payload: '', why: /not JSON/ },
    ];
    const good = async (n: number) =>
      producer.reportMany(
        Array.from({ length: n }, (_, i) => ({
          model: 'llama-3-70b',
          model_id: 2,
          user_id: 1 + (i % 3),
          input_token: i,
          completed: true,
        })),
      );
    const ids = await good(500);
    const entryIds = await xaddRaw(
      r.redis,
      r.prefix,
      0,
      poison.map((p) => p.payload),
    );
    // An entry without the report field at all.
    const bare = await r.redis.xadd(`${r.prefix}:0:reports`, '*', 'x', '1');
    ids.push(...(await good(500)));
    const poisonIds = poison.map((p, i) => {
      const parsed = (() => {
        try {
          return JSON.parse(p.payload) as { report_id?: unknown };
        } catch {
          return undefined;
        }
      })();
      return typeof parsed?.report_id === 'string' ? parsed.report_id : `stream:0:${entryIds[i]}`;
    });
    poisonIds.push(`stream:0:${String(bare)}`);

    worker = spawnWorker({
      DATABASE_URL: db.url,
      REDIS_URL,
      TALLY_KEY_PREFIX: r.prefix,
      TALLY_PARTITIONS: '1',
      TALLY_FLUSH_INTERVAL_MS: '1000',
      TALLY_SEAL_GRACE_MS: '100',
      TALLY_ENTITY_CACHE_MS: '0',
    });
    const sent = [...ids, ...poisonIds];
    await waitSettled({
      prisma: db.prisma,
      redis: r.redis,
      prefix: r.prefix,
      partitions: 1,
      ids: sent,
      timeoutMs: 60_000,
      watch: [{ name: 'worker', ...pick(worker) }],
    });

    const tally = await tallyOf(db.prisma, sent);
    printLine('poison entries', tally, `${poison.length + 1} poison incl. two of 5 MB`);
    expect(tally).toEqual({ sent: 1_010, committed: 1_000, duplicates: 0, rejected: 10, lost: 0 });
    await assertRollupsMatchAudit(db.prisma);

    const rows = await db.prisma.rejectedUsageReport.findMany({
      where: { reportId: { in: poisonIds } },
    });
    const byId = new Map(rows.map((row) => [row.reportId, row]));
    poison.forEach((p, i) => {
      const row = byId.get(poisonIds[i] as string);
      expect(row?.reason).toBe('invalid_report');
      expect(row?.message).toMatch(p.why);
      // A 5 MB entry is kept cut to the limit, never whole.
      expect(row?.rawReport.length).toBeLessThanOrEqual(MAX_RAW_LENGTH + 10);
    });
    expect(byId.get(poisonIds[poison.length] as string)?.reason).toBe('invalid_report');
    // The worker survived the poison and is still running.
    expect(worker.exited()).toBe(false);
  });
});
