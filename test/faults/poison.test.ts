// Fault 5: poison entries written straight into a stream, next to valid reports in the
// same window: not JSON, JSON failing the contract, an entry without the report field,
// and 5 MB entries. Each is rejected with its reason; the rest of the window commits.
import { describe, expect, it } from 'vitest';
import { UsageProducer } from '../../src/producer/index.js';
import { MAX_RAW_LENGTH } from '../../src/worker/core/page.js';
import { xaddRaw } from '../support/fixtures.js';
import { REDIS_URL } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { useWorkerTestEnv } from '../support/pipeline.js';
import { printLine, tallyOf, waitSettled } from './support/accounting.js';
import { spawnWorker, type Child } from './support/processes.js';

const pick = (c: Child) => ({ exited: () => c.exited(), output: () => c.output() });

const t = useWorkerTestEnv();

describe('fault 5: poison entries in a stream', () => {
  it('rejects each with its reason and commits the rest of the window', async () => {
    const producer = new UsageProducer({ redis: t.r.redis, keyPrefix: t.r.prefix, partitions: 1 });
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
      t.r.redis,
      t.r.prefix,
      0,
      poison.map((p) => p.payload),
    );
    // An entry without the report field at all.
    const bare = await t.r.redis.xadd(`${t.r.prefix}:0:reports`, '*', 'x', '1');
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

    const worker = spawnWorker({
      DATABASE_URL: t.db.url,
      REDIS_URL,
      TALLY_KEY_PREFIX: t.r.prefix,
      TALLY_PARTITIONS: '1',
      TALLY_FLUSH_INTERVAL_MS: '1000',
      TALLY_SEAL_GRACE_MS: '100',
      TALLY_ENTITY_CACHE_MS: '0',
    });
    t.defer(() => worker.stop('SIGKILL'));
    const sent = [...ids, ...poisonIds];
    await waitSettled({
      prisma: t.db.prisma,
      redis: t.r.redis,
      prefix: t.r.prefix,
      partitions: 1,
      ids: sent,
      timeoutMs: 60_000,
      watch: [{ name: 'worker', ...pick(worker) }],
    });

    const tally = await tallyOf(t.db.prisma, sent);
    printLine('poison entries', tally, `${poison.length + 1} poison incl. two of 5 MB`);
    expect(tally).toEqual({ sent: 1_010, committed: 1_000, duplicates: 0, rejected: 10, lost: 0 });
    await assertRollupsMatchAudit(t.db.prisma);

    const rows = await t.db.prisma.rejectedUsageReport.findMany({
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
