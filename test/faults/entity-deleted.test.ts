// Fault 6: an entity deleted between a report's arrival and its processing. The report is
// rejected with the reason; once the entity is restored, `npm run replay-rejected` puts it
// back on its stream and it commits once; replaying again adds nothing; a rejection whose
// raw report is not a report is counted and left in place.
import { describe, expect, it } from 'vitest';
import { UsageProducer } from '../../src/producer/index.js';
import { WORLD, xaddRaw } from '../support/fixtures.js';
import { REDIS_URL } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { useWorkerTestEnv } from '../support/pipeline.js';
import { printLine, waitSettled } from './support/accounting.js';
import { runTs, spawnWorker } from './support/processes.js';

const t = useWorkerTestEnv();

describe('fault 6: an entity deleted before its reports are processed', () => {
  it('rejects them, and replay-rejected commits them once after the entity is restored', async () => {
    const env = {
      DATABASE_URL: t.db.url,
      REDIS_URL,
      TALLY_KEY_PREFIX: t.r.prefix,
      TALLY_PARTITIONS: '2',
      TALLY_FLUSH_INTERVAL_MS: '1000',
      TALLY_SEAL_GRACE_MS: '100',
      TALLY_ENTITY_CACHE_MS: '0',
    };
    const producer = new UsageProducer({ redis: t.r.redis, keyPrefix: t.r.prefix, partitions: 2 });
    const ids = await producer.reportMany(
      Array.from({ length: 300 }, (_, i) => ({
        model: 'qwen3-8b',
        model_id: 1,
        user_id: 1 + (i % 3), // every third report is carol's (user 3)
        input_token: 10,
        output_token: 1,
        completed: true,
      })),
    );
    const carols = ids.filter((_, i) => i % 3 === 2);
    const [poisonEntry] = await xaddRaw(t.r.redis, t.r.prefix, 0, ['{"model": "not closed"']);
    const poisonId = `stream:0:${poisonEntry}`;

    // Carol's account is deleted after her reports arrived, before any worker ran.
    // Her API keys go with her (api_keys.user_id cascades); none of these reports uses one.
    const carol = WORLD.principals.find((u) => u.id === 3);
    await t.db.prisma.principal.delete({ where: { id: 3 } });
    const worker = spawnWorker(env);
    t.defer(() => worker.stop('SIGKILL'));
    const watch = [
      { name: 'worker', exited: () => worker.exited(), output: () => worker.output() },
    ];
    const sent = [...ids, poisonId];
    const settle = () =>
      waitSettled({
        prisma: t.db.prisma,
        redis: t.r.redis,
        prefix: t.r.prefix,
        partitions: 2,
        ids: sent,
        timeoutMs: 60_000,
        watch,
      });

    const before = await settle();
    expect(before).toMatchObject({ committed: 200, rejected: 101, lost: 0 });
    const reasons = await t.db.prisma.rejectedUsageReport.groupBy({ by: ['reason'], _count: true });
    expect(Object.fromEntries(reasons.map((g) => [g.reason, g._count]))).toEqual({
      unknown_user: 100,
      invalid_report: 1,
    });

    const replay = (args: string[]) => runTs('src/replay/main.ts', env, args);
    // A time filter that matches nothing replays nothing.
    const none = await replay(['--reason', 'unknown_user', '--since', '2999-01-01T00:00:00Z']);
    expect(none.code).toBe(0);
    expect(none.output).toMatch(/matched 0, replayed 0, not replayable 0/);

    await t.db.prisma.principal.create({ data: carol! });
    const first = await replay(['--reason', 'unknown_user']);
    expect(first.code, first.output).toBe(0);
    expect(first.output).toMatch(/matched 100, replayed 100, not replayable 0/);
    const after = await settle();
    expect(after).toMatchObject({ committed: 300, rejected: 1, duplicates: 0, lost: 0 });

    // Again: nothing left to replay, nothing added.
    const second = await replay(['--reason', 'unknown_user']);
    expect(second.output).toMatch(/matched 0, replayed 0/);
    // A crash between XADD and DELETE leaves a row whose report is committed: replaying
    // it is a duplicate the worker adds nothing for.
    const raw = JSON.stringify({
      report_id: carols[0],
      model: 'qwen3-8b',
      model_id: 1,
      user_id: 3,
      input_token: 10,
      output_token: 1,
      completed: true,
    });
    await t.db.prisma.rejectedUsageReport.create({
      data: {
        reportId: carols[0]!,
        reason: 'unknown_user',
        message: 'left by a crash',
        rawReport: raw,
        partition: 0,
      },
    });
    const third = await replay(['--reason', 'unknown_user']);
    expect(third.output).toMatch(/matched 1, replayed 1/);
    // The poison entry cannot be replayed: counted, reported, left in place.
    const all = await replay([]);
    expect(all.output).toMatch(/matched 1, replayed 0, not replayable 1/);
    expect(all.output).toMatch(/1 not replayable: raw report is not JSON/);

    const final = await settle();
    await assertRollupsMatchAudit(t.db.prisma);
    printLine(
      'entity deleted, then replay-rejected',
      final,
      '100 rejected unknown_user, then replayed and committed; replayed twice more: nothing added',
    );
    expect(final).toEqual({ sent: 301, committed: 300, duplicates: 0, rejected: 1, lost: 0 });
    const usage = await t.db.prisma.modelUsage.aggregate({
      where: { userId: 3 },
      _sum: { requestCount: true, promptTokenCount: true },
    });
    expect(usage._sum).toEqual({ requestCount: 100n, promptTokenCount: 1_000n });
    expect(await t.db.prisma.rejectedUsageReport.count({ where: { reason: 'unknown_user' } })).toBe(
      0,
    );
    await producer.close();
  });
});
