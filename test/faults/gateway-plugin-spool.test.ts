// Fault 9: GPUStack's gateway plugin as it is (one report per POST, 5 s timeout, never a
// retry, no report_id) at 1,000 reports/s for 90 s, while Redis is SIGKILLed for 30 s and
// the ingest process is SIGKILLed once with reports in its spool and restarted on the same
// spool directory. Every report answered 200 must be committed exactly once. Then: with a
// small spool and Redis down, 503s begin only once the spool is full.
import { readdir } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedWorld } from '../support/fixtures.js';
import { scratchDir } from '../support/scratch.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { createTestDatabase, uniqueName, waitFor, type TestDatabase } from '../support/services.js';
import { printLine, waitSettled } from './support/accounting.js';
import { postOnce, runPluginLoad } from './support/gateway-plugin.js';
import { freePort, spawnIngest, spawnWorker, type Child } from './support/processes.js';
import { startDedicatedRedis, type DedicatedRedis } from '../../devkit/redis-server.js';
import { Agent } from 'node:http';

const TOKEN = 'f9-token';
const PARTITIONS = 2;
const RATE = 1_000;
const DURATION_MS = 90_000;
const REDIS_DOWN_AT_MS = 25_000;
const INGEST_KILL_AT_MS = 40_000;
const REDIS_DOWN_MS = 30_000;

let db: TestDatabase;
let redis: DedicatedRedis;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [db, redis] = await Promise.all([createTestDatabase(), startDedicatedRedis('always')]);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await redis?.cleanup();
  await db?.drop();
});

/** What GPUStack's plugin sends for one proxied request: no report_id, no operation. */
function pluginBody(n: number): Record<string, unknown> {
  const completedAt = Date.now();
  return {
    model: 'qwen3-8b',
    input_token: 10 + (n % 50),
    output_token: 5 + (n % 7),
    total_token: 15 + (n % 50) + (n % 7),
    input_cached_token: 0,
    request_count: 1,
    completed: true,
    output_chunk_count: 5,
    request_content_bytes: 400,
    started_at: completedAt - 1_500,
    completed_at: completedAt,
    model_id: 1,
    user_id: 1 + (n % 3),
  };
}

async function spoolOf(
  base: string,
): Promise<{ reports: number; bytes: number; max_bytes: number }> {
  const ready = (await (await fetch(`${base}/readyz`)).json()) as Record<string, unknown>;
  return ready['spool'] as { reports: number; bytes: number; max_bytes: number };
}

function startWorker(prefix: string): Child {
  const worker = spawnWorker({
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    TALLY_KEY_PREFIX: prefix,
    TALLY_PARTITIONS: String(PARTITIONS),
    TALLY_FLUSH_INTERVAL_MS: '1000',
    TALLY_SEAL_GRACE_MS: '100',
    TALLY_BATCH_BACKOFF_MS: '250',
    TALLY_BATCH_ATTEMPTS: '100',
    TALLY_BATCH_LOCK_MS: '2000',
  });
  cleanups.push(() => worker.stop('SIGKILL'));
  return worker;
}

describe('fault 9: GPUStack plugin, Redis SIGKILLed for 30 s, ingest SIGKILLed with a non-empty spool', () => {
  it('commits every report answered 200 exactly once, and the spool ends empty', async () => {
    await db.reset();
    await seedWorld(db.prisma);
    const prefix = uniqueName('f9');
    const spoolDir = scratchDir('tally-f9-spool-');
    const port = await freePort();
    const ingestEnv = {
      REDIS_URL: redis.url,
      TALLY_KEY_PREFIX: prefix,
      TALLY_PARTITIONS: String(PARTITIONS),
      TALLY_GATEWAY_TOKEN: TOKEN,
      TALLY_SPOOL_DIR: spoolDir,
    };
    let ingest = (await spawnIngest(ingestEnv, port)).child;
    cleanups.push(() => ingest.stop('SIGKILL'));
    const base = `http://127.0.0.1:${port}`;
    const worker = startWorker(prefix);

    const load = runPluginLoad({
      base,
      token: TOKEN,
      ratePerSecond: RATE,
      durationMs: DURATION_MS,
      lanes: 64,
      body: pluginBody,
    });
    const started = Date.now();
    const at = (ms: number) =>
      waitFor(`t+${ms} ms`, () => (Date.now() - started >= ms ? true : undefined), ms + 5_000, 50);

    await at(REDIS_DOWN_AT_MS);
    await redis.kill('SIGKILL');
    const redisDownAt = Date.now();
    const redisAnswered = await redis
      .admin()
      .ping()
      .then(
        () => true,
        () => false,
      );

    await at(INGEST_KILL_AT_MS);
    const spoolAtKill = await spoolOf(base);
    await ingest.stop('SIGKILL');
    const ingestKilledAt = Date.now();
    ingest = (await spawnIngest(ingestEnv, port)).child;
    const ingestDownMs = Date.now() - ingestKilledAt;
    const spoolAfterRestart = await spoolOf(base);

    await at(REDIS_DOWN_AT_MS + REDIS_DOWN_MS);
    await redis.start();
    const redisDownMs = Date.now() - redisDownAt;
    const result = await load;

    const current = ingest;
    await waitFor(
      'the spool to drain',
      async () => ((await spoolOf(base)).reports === 0 ? true : undefined),
      60_000,
      250,
    ).catch(() => undefined);
    const tally = await waitSettled({
      prisma: db.prisma,
      redis: redis.admin(),
      prefix,
      partitions: PARTITIONS,
      ids: result.acknowledged,
      timeoutMs: 120_000,
      watch: [
        { name: 'worker', exited: () => worker.exited(), output: () => worker.output() },
        { name: 'ingest', exited: () => current.exited(), output: () => current.output() },
      ],
    });
    const spoolAtEnd = await spoolOf(base);
    const segmentsLeft = (await readdir(spoolDir)).filter((f) => f.endsWith('.spool'));
    await assertRollupsMatchAudit(db.prisma);
    const outcomes = [...result.outcomes].map(([k, v]) => `${k}: ${v}`).join(', ');
    printLine(
      `GPUStack plugin at ${RATE}/s for ${DURATION_MS / 1000} s, Redis SIGKILLed ${Math.round(redisDownMs / 1000)} s, ingest SIGKILLed once`,
      tally,
      `attempted ${result.attemptedPerSecond}/s, answered 200 ${result.acknowledgedPerSecond}/s (${outcomes}); spool held ${spoolAtKill.reports} reports (${spoolAtKill.bytes} bytes) when ingest was killed, ${spoolAfterRestart.reports} after its restart (${(ingestDownMs / 1000).toFixed(1)} s down), ${spoolAtEnd.reports} at the end`,
    );
    expect(redisAnswered).toBe(false);
    expect(spoolAtKill.reports).toBeGreaterThan(0);
    expect(spoolAfterRestart.reports).toBeGreaterThanOrEqual(spoolAtKill.reports);
    expect(current.output()).toContain('spool holds reports from an earlier run');
    expect(tally).toEqual({
      sent: result.acknowledged.length,
      committed: result.acknowledged.length,
      duplicates: 0,
      rejected: 0,
      lost: 0,
    });
    expect(spoolAtEnd).toMatchObject({ reports: 0, bytes: 0 });
    expect(segmentsLeft).toEqual([]);
    // Nothing but a dead ingest process may leave a request unanswered with 200.
    expect(result.outcomes.get('503') ?? 0).toBe(0);
  });
});

describe('fault 10: a small spool while Redis is down', () => {
  it('answers 200 until the spool is full, 503 only from then on', async () => {
    await db.reset();
    await seedWorld(db.prisma);
    const prefix = uniqueName('f10');
    const maxBytes = 64 * 1024;
    await redis.kill('SIGKILL');
    const { child: ingest, base } = await spawnIngest({
      REDIS_URL: redis.url,
      TALLY_KEY_PREFIX: prefix,
      TALLY_PARTITIONS: String(PARTITIONS),
      TALLY_GATEWAY_TOKEN: TOKEN,
      TALLY_SPOOL_MAX_BYTES: String(maxBytes),
    });
    cleanups.push(() => ingest.stop('SIGKILL'));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => Promise.resolve(agent.destroy()));
    const url = new URL(`${base}/v2/usage/gateway-metrics`);

    const acknowledged: string[] = [];
    const outcomes: string[] = [];
    let spoolAtFirst503: { reports: number; bytes: number } | undefined;
    let largestRecord = 0;
    for (let n = 0; n < 400; n += 1) {
      const before = await spoolOf(base);
      const { outcome, body } = await postOnce(
        agent,
        url,
        TOKEN,
        JSON.stringify(pluginBody(n)),
        5_000,
      );
      outcomes.push(outcome);
      if (outcome === '200') {
        acknowledged.push(...(JSON.parse(body) as { report_ids: string[] }).report_ids);
        largestRecord = Math.max(largestRecord, (await spoolOf(base)).bytes - before.bytes);
      } else if (spoolAtFirst503 === undefined) {
        spoolAtFirst503 = before;
        expect(JSON.parse(body)).toMatchObject({ error: 'spool_full' });
      }
    }
    const first503 = outcomes.indexOf('503');
    expect(first503).toBeGreaterThan(0);
    // No 503 before the spool reached its bound: the refused record did not fit.
    expect(outcomes.slice(0, first503).every((o) => o === '200')).toBe(true);
    expect(spoolAtFirst503!.bytes + largestRecord).toBeGreaterThan(maxBytes);
    expect(spoolAtFirst503!.bytes).toBeLessThanOrEqual(maxBytes);
    // And every request after it, while Redis stays down, is refused the same way.
    expect(outcomes.slice(first503).every((o) => o === '503')).toBe(true);
    expect(ingest.output()).toContain('the spool is full');

    await redis.start();
    const worker = startWorker(prefix);
    const tally = await waitSettled({
      prisma: db.prisma,
      redis: redis.admin(),
      prefix,
      partitions: PARTITIONS,
      ids: acknowledged,
      timeoutMs: 60_000,
      watch: [{ name: 'worker', exited: () => worker.exited(), output: () => worker.output() }],
    });
    printLine(
      `small spool (${maxBytes} bytes) while Redis is down`,
      tally,
      `first 503 at request ${first503 + 1} with the spool at ${spoolAtFirst503!.bytes} bytes (${spoolAtFirst503!.reports} reports, largest record ${largestRecord} bytes), ${outcomes.length - first503} requests refused with spool_full`,
    );
    expect(tally).toEqual({
      sent: acknowledged.length,
      committed: acknowledged.length,
      duplicates: 0,
      rejected: 0,
      lost: 0,
    });
  });
});
