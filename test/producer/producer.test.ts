import net, { type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { streamKey } from '../../src/contract/index.js';
import {
  InvalidReportError,
  RedisUnavailableError,
  UsageProducer,
} from '../../src/producer/index.js';
import { partitionOf } from '../../src/producer/ids.js';
import { REDIS_URL, createTestRedis, waitFor, type TestRedis } from '../support/services.js';
import {
  closedPort,
  keysUnder,
  readStreams,
  sampleReport,
  startRedisProxy,
  type RedisProxy,
} from './support.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let t: TestRedis;
const toClose: { close(): Promise<void> }[] = [];

beforeEach(async () => {
  t = await createTestRedis();
});

afterEach(async () => {
  for (const c of toClose.splice(0).reverse()) await c.close();
  await t.cleanup();
});

function producer(options: Partial<ConstructorParameters<typeof UsageProducer>[0]> = {}) {
  const p = new UsageProducer({ redis: t.redis, keyPrefix: t.prefix, ...options });
  toClose.push(p);
  return p;
}

/** Waits until `p` stores again, then checks the reports before and after the outage landed. */
async function expectStoresAgain(p: UsageProducer): Promise<void> {
  await waitFor('the producer to reconnect', async () => {
    try {
      return await p.report(sampleReport({ report_id: 'after' }));
    } catch (error) {
      if (error instanceof RedisUnavailableError) return undefined;
      throw error;
    }
  });
  const ids = (await readStreams(t.redis, t.prefix, 4)).map((e) => e.report['report_id']);
  expect(ids).toContain('before');
  expect(ids).toContain('after');
}

async function expectRejection<E extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return error as E;
}

describe('UsageProducer.report', () => {
  it('stores the parsed report (defaults applied, unknown keys dropped) under a new UUIDv7', async () => {
    const id = await producer().report({ model: 'qwen3-8b', input_token: 5, extra: 'x' } as never);
    expect(id).toMatch(UUID_V7);
    const entries = await readStreams(t.redis, t.prefix, 4);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.partition).toBe(partitionOf(id, 4));
    expect(entries[0]?.report).toEqual({
      report_id: id,
      model: 'qwen3-8b',
      input_token: 5,
      output_token: 0,
      total_token: 0,
      input_cached_token: 0,
      request_count: 1,
      completed: false,
      output_chunk_count: 0,
      request_content_bytes: 0,
      started_at: null,
      completed_at: null,
      user_id: null,
      model_id: null,
      model_route_id: null,
      cluster_id: null,
      provider_id: null,
      provider_name: null,
      provider_type: null,
      access_key: null,
      operation: null,
      organization_id: null,
    });
  });

  it("keeps the gateway's report_id and lands it in its hash partition", async () => {
    const id = await producer({ partitions: 8 }).report(sampleReport({ report_id: 'gw-42' }));
    expect(id).toBe('gw-42');
    expect(await t.redis.xlen(streamKey(t.prefix, partitionOf('gw-42', 8)))).toBe(1);
  });

  it('rejects an invalid report with every problem and writes nothing', async () => {
    const error = await expectRejection(
      producer().report({ model: 'x'.repeat(256), input_token: -1, output_token: 1.5 }),
      InvalidReportError,
    );
    expect(error.problems.map((p) => p.path).sort()).toEqual([
      'input_token',
      'model',
      'output_token',
    ]);
    expect(error.invalidIndexes).toEqual([0]);
    expect(await keysUnder(t.redis, t.prefix)).toEqual([]);
  });

  it('leaves a connection it was given open on close()', async () => {
    const p = new UsageProducer({ redis: t.redis, keyPrefix: t.prefix });
    await p.report(sampleReport());
    await p.close();
    expect(await t.redis.ping()).toBe('PONG');
    await expectRejection(p.report(sampleReport()), RedisUnavailableError);
  });
});

describe('UsageProducer.reportMany', () => {
  it('returns ids in order and spreads the reports over the partitions', async () => {
    const inputs = Array.from({ length: 200 }, (_, i) => sampleReport({ input_token: i }));
    inputs[7] = sampleReport({ report_id: 'own-id-7', input_token: 7 });
    const ids = await producer().reportMany(inputs);
    expect(ids).toHaveLength(200);
    expect(ids[7]).toBe('own-id-7');
    const entries = await readStreams(t.redis, t.prefix, 4);
    const byId = new Map(entries.map((e) => [e.report['report_id'], e]));
    ids.forEach((id, i) => {
      expect(byId.get(id)?.report['input_token']).toBe(i);
      expect(byId.get(id)?.partition).toBe(partitionOf(id, 4));
    });
    expect(new Set(entries.map((e) => e.partition))).toEqual(new Set([0, 1, 2, 3]));
  });

  it('validates everything first: one bad item rejects the call and nothing is written', async () => {
    const inputs = [
      sampleReport(),
      sampleReport(),
      sampleReport({ input_token: -1 }),
      sampleReport(),
      { output_token: 'many', operation: 'dance' },
      'not a report',
    ] as never[];
    const error = await expectRejection(producer().reportMany(inputs), InvalidReportError);
    expect(error.invalidIndexes).toEqual([2, 4, 5]);
    expect(error.problems.map((p) => p.path).sort()).toEqual([
      '2.input_token',
      '4.model',
      '4.operation',
      '4.output_token',
      '5',
    ]);
    expect(await keysUnder(t.redis, t.prefix)).toEqual([]);
  });

  it('accepts an empty array without touching Redis', async () => {
    expect(await producer().reportMany([])).toEqual([]);
  });
});

describe('one round trip', () => {
  let proxy: RedisProxy;
  const replyDelayMs = 5_000;

  beforeEach(async () => {
    proxy = await startRedisProxy();
    toClose.push(proxy);
  });

  // The proxy holds back every reply from Redis for five seconds: a call that waits for
  // Redis twice cannot finish in under ten, however fast the machine; the call's own work
  // (10,000 validations and ids, about a second even on a loaded machine) fits well within.
  it('stores 10,000 reports in one reportMany call, in a single round trip', async () => {
    const p = new UsageProducer({ redis: proxy.url, keyPrefix: t.prefix, timeoutMs: 30_000 });
    toClose.push(p);
    await p.ping(); // connection set up before the delay and the measurement
    proxy.delayReplies(replyDelayMs);
    const inputs = Array.from({ length: 10_000 }, (_, i) => sampleReport({ input_token: i }));
    const started = performance.now();
    const ids = await p.reportMany(inputs);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(replyDelayMs - 5); // the proxy really was in the path
    expect(elapsed).toBeLessThan(2 * replyDelayMs);
    expect(new Set(ids).size).toBe(10_000);
    const lengths = await Promise.all(
      [0, 1, 2, 3].map((partition) => t.redis.xlen(streamKey(t.prefix, partition))),
    );
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(10_000);
    for (const length of lengths) expect(length).toBeGreaterThan(2_000);
  });
});

describe('fail fast', () => {
  it('rejects within its timeout when nothing listens on the Redis port', async () => {
    const p = producer({ redis: `redis://127.0.0.1:${await closedPort()}`, timeoutMs: 500 });
    const started = performance.now();
    const error = await expectRejection(
      p.reportMany([sampleReport(), sampleReport({ report_id: 'mine' })]),
      RedisUnavailableError,
    );
    expect(performance.now() - started).toBeLessThan(500 + 1_000);
    expect(error.reportIds).toHaveLength(2);
    expect(error.reportIds[1]).toBe('mine');
    await expectRejection(p.ping(), RedisUnavailableError);
  });

  it('rejects within its timeout when Redis accepts the connection but never answers', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => void sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    toClose.push({
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      },
    });
    const { port } = silent.address() as AddressInfo;
    const p = producer({ redis: `redis://127.0.0.1:${port}`, timeoutMs: 500 });
    const started = performance.now();
    await expectRejection(p.report(sampleReport()), RedisUnavailableError);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(490);
    expect(elapsed).toBeLessThan(500 + 1_000);
  });

  it('shares one pair of listeners among every call waiting on a connection attempt', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => void sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const redis = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    toClose.push({
      close: async () => {
        redis.disconnect();
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      },
    });
    const p = producer({ redis, timeoutMs: 500 });
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const calls = Array.from({ length: 50 }, () => p.report(sampleReport()));
      // ioredis's own connect() listens for 'ready' and 'close' too; the fifty calls add
      // one of each between them, and take it away when they end.
      await waitFor('the connection to reach the ready check', () => redis.status === 'connect');
      expect(redis.listenerCount('ready')).toBeLessThanOrEqual(2);
      expect(redis.listenerCount('close')).toBeLessThanOrEqual(2);
      for (const call of calls) await expectRejection(call, RedisUnavailableError);
      expect(redis.listenerCount('ready')).toBeLessThanOrEqual(1);
      expect(redis.listenerCount('close')).toBeLessThanOrEqual(1);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('recovers by itself when Redis comes back', async () => {
    const proxy = await startRedisProxy();
    toClose.push(proxy);
    const p = producer({ redis: proxy.url, timeoutMs: 500 });
    await p.report(sampleReport({ report_id: 'before' }));
    proxy.cut();
    const started = performance.now();
    await expectRejection(p.report(sampleReport({ report_id: 'during' })), RedisUnavailableError);
    expect(performance.now() - started).toBeLessThan(500 + 1_000);
    proxy.restore();
    await expectStoresAgain(p);
  });

  it('refuses calls on a ready connection that stops answering, then rebuilds it and keeps it', async () => {
    const proxy = await startRedisProxy();
    toClose.push(proxy);
    const p = producer({ redis: proxy.url, timeoutMs: 500 });
    await p.report(sampleReport({ report_id: 'before' }));
    // The connection stays open; Redis's replies stop arriving for 5 s.
    proxy.delayReplies(5_000);
    const started = performance.now();
    const stalled = await Promise.allSettled([
      p.report(sampleReport({ report_id: 'stalled-1' })),
      p.reportMany([sampleReport({ report_id: 'stalled-2' })]),
      p.ping(),
    ]);
    const waited = performance.now() - started;
    for (const outcome of stalled) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(RedisUnavailableError);
    }
    // timeoutMs, then at most one check period (timeoutMs / 5) and the drop itself.
    expect(waited).toBeGreaterThanOrEqual(500);
    expect(waited).toBeLessThan(500 + 100 + 250);
    proxy.delayReplies(0);
    await expectStoresAgain(p);
    const opened = proxy.accepted();
    // The stalled commands armed the client's socket timeout (2 × timeoutMs) on the
    // connection that was then dropped; it must not reach the rebuilt one. That fails only
    // once the deadline passes, so the rebuilt connection is kept busy until well after it.
    while (performance.now() - started < 2 * 1_000 + 500) {
      await p.report(sampleReport());
    }
    expect(proxy.accepted()).toBe(opened);
  });

  it('owns and closes a connection it opened from a URL', async () => {
    const p = new UsageProducer({ redis: REDIS_URL, keyPrefix: t.prefix });
    await p.report(sampleReport());
    await p.close();
    await expectRejection(p.report(sampleReport()), RedisUnavailableError);
  });
});
