// The ingest server with its spool, against a dedicated redis-server that is killed and
// restarted: while Redis is down, reports are answered 200 and kept on disk; when it comes
// back, the drainer moves them into the streams with their report_ids and empties the
// spool. The spool's depth shows in /readyz; a full or unwritable spool answers 503.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { UsageProducer } from '../../src/producer/producer.js';
import {
  buildIngestServer,
  INGEST_PATH,
  TOKEN_HEADER,
  producerRedis,
} from '../../src/producer/server.js';
import { openIngestSpool, type IngestSpool } from '../../src/producer/spool/ingest-spool.js';
import { startDedicatedRedis, type DedicatedRedis } from '../../devkit/redis-server.js';
import { spawnIngest, spawnTs, type Child } from '../faults/support/processes.js';
import { uniqueName, waitFor } from '../support/services.js';
import { readStreams, sampleReport } from './support.js';

const TOKEN = 'spool-test-token';
let redis: DedicatedRedis;
let dir: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startDedicatedRedis('everysec');
});
afterAll(async () => {
  await redis.cleanup();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  if (
    !(await redis
      .admin()
      .ping()
      .catch(() => undefined))
  )
    await redis.start();
});

async function startServer(env: Record<string, string> = {}) {
  dir = await mkdtemp(join(tmpdir(), 'tally-spool-server-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const prefix = uniqueName('sp');
  const config = loadConfig({
    REDIS_URL: redis.url,
    TALLY_KEY_PREFIX: prefix,
    TALLY_PARTITIONS: '2',
    TALLY_PRODUCER_TIMEOUT_MS: '300',
    TALLY_SPOOL_DIR: dir,
    ...env,
  });
  const producer = UsageProducer.fromConfig(config);
  const spool = (await openIngestSpool(config, producer, silentLogger)) as IngestSpool;
  const server = buildIngestServer({
    producer: spool.producer,
    gatewayToken: TOKEN,
    logger: silentLogger,
    dependencies: [producerRedis(producer), spool.dependency],
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    await server.close();
    await spool.close();
    await producer.close();
  });
  const address = server.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const post = async (body: unknown) => {
    const response = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
      body: JSON.stringify(body),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  const readyz = async () =>
    (await (await fetch(`${base}/readyz`)).json()) as Record<string, Record<string, unknown>>;
  return { prefix, spool, post, readyz };
}

describe('ingest server with a spool', () => {
  it('answers 200 while Redis is down, then drains every report into the streams', async () => {
    const s = await startServer();
    const before = await s.post(sampleReport());
    expect(before.status).toBe(200);
    await redis.kill('SIGKILL');

    const spooledIds: string[] = [];
    for (let i = 0; i < 40; i += 1) {
      const reply = await s.post(i % 2 === 0 ? sampleReport() : [sampleReport(), sampleReport()]);
      expect(reply.status).toBe(200);
      spooledIds.push(...(reply.json['report_ids'] as string[]));
    }
    expect(s.spool.spool.stats().reports).toBe(60);
    const ready = await s.readyz();
    expect(ready['redis']?.['status']).toBe('unavailable');
    expect(ready['spool']).toMatchObject({ status: 'ok', reports: 60 });
    expect(ready['spool']?.['bytes']).toBeGreaterThan(0);
    expect(ready['spool']?.['oldest_age_seconds']).toBeGreaterThanOrEqual(0);
    expect((await readdir(dir)).filter((f) => f.endsWith('.spool')).length).toBeGreaterThan(0);

    await redis.start();
    await waitFor(
      'the spool to drain',
      async () => {
        const files = (await readdir(dir)).filter((f) => f.endsWith('.spool'));
        return s.spool.spool.stats().bytes === 0 && files.length === 0 ? true : undefined;
      },
      20_000,
      50,
    );
    const entries = await readStreams(redis.admin(), s.prefix, 2);
    const inStreams = entries.map((e) => e.report['report_id'] as string);
    for (const id of spooledIds) expect(inStreams).toContain(id);
    expect(new Set(inStreams).size).toBe(inStreams.length);
    expect((await readdir(dir)).filter((f) => f.endsWith('.spool'))).toEqual([]);
    expect((await s.readyz())['spool']).toMatchObject({ status: 'ok', reports: 0, bytes: 0 });
  });

  it('answers 503 spool_full only once the spool is at its bound', async () => {
    const s = await startServer({ TALLY_SPOOL_MAX_BYTES: '4096' });
    await redis.kill('SIGKILL');
    const statuses: number[] = [];
    let refused: Record<string, unknown> | undefined;
    for (let i = 0; i < 30 && refused === undefined; i += 1) {
      const reply = await s.post(sampleReport());
      statuses.push(reply.status);
      if (reply.status === 503) refused = reply.json;
    }
    expect(statuses.slice(0, -1).every((status) => status === 200)).toBe(true);
    expect(refused).toMatchObject({ error: 'spool_full' });
    expect((refused?.['report_ids'] as string[]).length).toBe(1);
    const stats = s.spool.spool.stats();
    expect(stats.bytes).toBeLessThanOrEqual(4096);
    expect(stats.bytes + 300).toBeGreaterThan(4096); // a report's record is about 250 bytes here
    expect((await s.readyz())['spool']?.['status']).toBe('unavailable');
  });

  it('answers 503 spool_unwritable when the spool cannot be written', async () => {
    const s = await startServer();
    await redis.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    const reply = await s.post(sampleReport());
    expect(reply.status).toBe(503);
    expect(reply.json).toMatchObject({ error: 'spool_unwritable' });
    expect((await s.readyz())['spool']).toMatchObject({ status: 'unavailable' });
  });
});

describe('ingest process with a spool', () => {
  it('starts while Redis is down, and a second process on the same spool dir is refused', async () => {
    await redis.kill('SIGKILL');
    dir = await mkdtemp(join(tmpdir(), 'tally-spool-main-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const env = {
      REDIS_URL: redis.url,
      TALLY_GATEWAY_TOKEN: TOKEN,
      TALLY_SPOOL_DIR: dir,
      TALLY_INGEST_HOST: '127.0.0.1',
      TALLY_INGEST_PORT: '0',
      LOG_LEVEL: 'info',
    };
    const first: Child = spawnTs('src/producer/main.ts', env);
    cleanups.push(() => first.stop('SIGKILL'));
    const base = await waitFor(
      'the listening line',
      () => {
        if (first.exited()) throw new Error(first.output());
        return /"address":"(http:[^"]+)"/.exec(first.output())?.[1];
      },
      30_000,
      50,
    );
    expect(first.output()).toContain('starting anyway, reports go to the spool');
    const reply = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
      body: JSON.stringify(sampleReport()),
    });
    expect(reply.status).toBe(200);

    const second = spawnTs('src/producer/main.ts', env);
    cleanups.push(() => second.stop('SIGKILL'));
    await waitFor(
      'the second process to exit',
      () => (second.exited() ? true : undefined),
      30_000,
      50,
    );
    expect(second.process.exitCode).toBe(1);
    expect(second.output()).toContain(
      `the spool directory ${dir} is in use by process ${first.pid}`,
    );
  });

  it('times a spooled request in the spool histogram, not in the Redis write one', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tally-spool-metrics-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const ingest = await spawnIngest({
      REDIS_URL: redis.url,
      TALLY_KEY_PREFIX: uniqueName('spm'),
      TALLY_GATEWAY_TOKEN: TOKEN,
      TALLY_PRODUCER_TIMEOUT_MS: '300',
      TALLY_SPOOL_DIR: dir,
    });
    cleanups.push(() => ingest.child.stop('SIGKILL'));
    const post = async () => {
      const reply = await fetch(`${ingest.base}${INGEST_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
        body: JSON.stringify([sampleReport(), sampleReport()]),
      });
      await reply.arrayBuffer();
      return reply.status;
    };
    const counts = async () => {
      const text = await (await fetch(`${ingest.base}/metrics`)).text();
      const count = (name: string) =>
        Number(new RegExp(`^${name}_count (\\S+)$`, 'm').exec(text)?.[1] ?? 'NaN');
      return {
        redis: count('tally_ingest_redis_write_duration_seconds'),
        spool: count('tally_ingest_spool_append_duration_seconds'),
        spooled: Number(/^tally_ingest_reports_spooled_total (\S+)$/m.exec(text)?.[1] ?? 'NaN'),
      };
    };

    expect(await post()).toBe(200);
    expect(await counts()).toEqual({ redis: 1, spool: 0, spooled: 0 });

    await redis.kill('SIGKILL');
    expect(await post()).toBe(200);
    expect(await counts()).toEqual({ redis: 1, spool: 1, spooled: 2 });
  });
});
