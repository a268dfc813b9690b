// Fault 1: a worker process killed with SIGKILL (a) in the middle of a batch, between two
// pages, and (b) after a page's commit and before its stream deletion. A new worker
// finishes the window; every acknowledged report is committed once.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UsageProducer } from '../../src/producer/index.js';
import { seedWorld } from '../support/fixtures.js';
import { createTestDatabase, uniqueName, waitFor, type TestDatabase } from '../support/services.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { streamLength } from '../support/pipeline.js';
import { printFigure, printLine, waitSettled } from './support/accounting.js';
import { spawnWorker, type Child } from './support/processes.js';
import { startDedicatedRedis, type DedicatedRedis } from '../../devkit/redis-server.js';

let db: TestDatabase;
let redis: DedicatedRedis;
const children: Child[] = [];
const toClose: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  [db, redis] = await Promise.all([createTestDatabase(), startDedicatedRedis()]);
});
afterEach(async () => {
  for (const child of children.splice(0)) await child.stop('SIGKILL');
  for (const c of toClose.splice(0)) await c.close();
  await redis.admin().call('CLIENT', 'UNPAUSE');
});
afterAll(async () => {
  await redis?.cleanup();
  await db?.drop();
});

const report = (i: number) => ({
  model: 'qwen3-8b',
  model_id: 1,
  user_id: 1 + (i % 3),
  input_token: 1 + (i % 50),
  output_token: 2,
  completed: true,
});

/** Sends `n` reports through the SDK in one window-sized burst; returns the acknowledged ids. */
async function send(prefix: string, n: number): Promise<string[]> {
  const producer = new UsageProducer({ redis: redis.url, keyPrefix: prefix, partitions: 1 });
  toClose.push(producer);
  const ids: string[] = [];
  for (let start = 0; start < n; start += 1_000) {
    const size = Math.min(1_000, n - start);
    ids.push(
      ...(await producer.reportMany(Array.from({ length: size }, (_, i) => report(start + i)))),
    );
  }
  return ids;
}

function workerEnv(prefix: string, pageSize: number): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    TALLY_KEY_PREFIX: prefix,
    TALLY_PARTITIONS: '1',
    TALLY_FLUSH_INTERVAL_MS: '1000',
    TALLY_SEAL_GRACE_MS: '100',
    TALLY_PAGE_SIZE: String(pageSize),
    TALLY_ENTITY_CACHE_MS: '0',
    TALLY_BATCH_BACKOFF_MS: '200',
    // TALLY_BATCH_LOCK_MS at its default: a dead worker's batch is taken over within 15 s.
  };
}

async function committed(): Promise<number> {
  return db.prisma.modelUsageDetail.count();
}

async function finishAndCheck(
  scenario: string,
  prefix: string,
  ids: string[],
  extra: string,
): Promise<void> {
  const rescuer = spawnWorker(workerEnv(prefix, 2_000));
  children.push(rescuer);
  const tally = await waitSettled({
    prisma: db.prisma,
    redis: redis.admin(),
    prefix,
    partitions: 1,
    ids,
    timeoutMs: 90_000,
    watch: [{ name: 'rescuer', exited: () => rescuer.exited(), output: () => rescuer.output() }],
  });
  printLine(scenario, tally, extra);
  await assertRollupsMatchAudit(db.prisma);
  expect(tally).toEqual({
    sent: ids.length,
    committed: ids.length,
    duplicates: 0,
    rejected: 0,
    lost: 0,
  });
  expect(await streamLength(redis.admin(), prefix, 1)).toBe(0);
}

describe('fault 1: a worker killed with SIGKILL', () => {
  it('mid-batch, between pages: a new worker finishes the window', async () => {
    await db.reset();
    await seedWorld(db.prisma);
    const prefix = uniqueName('f1a');
    const ids = await send(prefix, 12_000);

    const victim = spawnWorker(workerEnv(prefix, 300));
    children.push(victim);
    await waitFor(
      'the first pages to commit',
      async () => ((await committed()) >= 1_200 ? true : undefined),
      60_000,
      20,
    );
    victim.signal('SIGKILL');
    await victim.stop('SIGKILL');
    const atKill = {
      committed: await committed(),
      inStream: await streamLength(redis.admin(), prefix, 1),
    };
    // Killed in the middle: part of the window committed, the rest still in the stream.
    expect(atKill.committed).toBeGreaterThan(0);
    expect(atKill.committed).toBeLessThan(ids.length);
    expect(atKill.inStream).toBeGreaterThan(0);

    // With the default lock, the dead worker's batch is taken over within 15 s of the kill.
    const killedAt = performance.now();
    const rescue = finishAndCheck(
      'worker SIGKILL mid-batch',
      prefix,
      ids,
      `at kill ${atKill.committed} committed, ${atKill.inStream} still in the stream`,
    );
    await waitFor(
      'the batch taken over (a commit after the kill)',
      async () => ((await committed()) > atKill.committed ? true : undefined),
      15_000,
      50,
    );
    const takeoverMs = performance.now() - killedAt;
    printFigure(
      `worker SIGKILL mid-batch: batch taken over ${Math.round(takeoverMs)} ms after the kill (default TALLY_BATCH_LOCK_MS)`,
    );
    expect(takeoverMs).toBeLessThan(15_000);
    await rescue;
  });

  it('between a page commit and its stream deletion: the rerun adds nothing', async () => {
    await db.reset();
    await seedWorld(db.prisma);
    const prefix = uniqueName('f1b');
    const ids = await send(prefix, 6_000);
    const admin = redis.admin();

    // One page holds the whole window, so the commit is one transaction.
    const victim = spawnWorker(workerEnv(prefix, 10_000));
    children.push(victim);
    await waitFor(
      'the batch to be active',
      async () => ((await admin.llen(`${prefix}:batches:active`)) > 0 ? true : undefined),
      60_000,
      5,
    );
    // From now on Redis refuses writes (XDEL included) but serves reads: the worker reads
    // its page, commits it to PostgreSQL, and then hangs on the XDEL.
    await admin.call('CLIENT', 'PAUSE', '60000', 'WRITE');
    // Whole windows commit in one transaction each (a burst may span two windows).
    const atKill = await waitFor(
      'a window to be committed',
      async () => {
        const n = await committed();
        return n > 0 ? n : undefined;
      },
      60_000,
      20,
    );
    const inStreamAfterCommit = await streamLength(admin, prefix, 1);
    // Committed, yet not one entry deleted: the worker is between commit and XDEL.
    expect(inStreamAfterCommit).toBe(ids.length);
    await victim.stop('SIGKILL');
    await admin.call('CLIENT', 'UNPAUSE');
    // The killed worker's XDEL never ran.
    expect(await streamLength(admin, prefix, 1)).toBe(ids.length);

    await finishAndCheck(
      'worker SIGKILL between commit and XDEL',
      prefix,
      ids,
      `at kill ${atKill} committed and all ${inStreamAfterCommit} still in the stream`,
    );
  });
});
