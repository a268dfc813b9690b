// Helpers for the producer tests: sample reports, a port nothing listens on, a TCP proxy
// to Redis that can delay replies or drop every connection, and stream read-back.
import type { Redis } from 'ioredis';
import { REPORT_FIELD, streamKey, type UsageReportInput } from '../../src/contract/index.js';
import { REDIS_URL } from '../support/services.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

export function sampleReport(overrides: Record<string, unknown> = {}): UsageReportInput {
  return {
    model: 'qwen3-8b',
    input_token: 120,
    output_token: 48,
    total_token: 168,
    completed: true,
    user_id: 3,
    model_id: 7,
    operation: 'chat_completion',
    ...overrides,
  };
}

/** A local port that refuses connections (it was bound, then released). */
export { freePort as closedPort } from '../../devkit/services.js';

export interface RedisProxy extends TcpProxy {
  url: string;
}

/** A TCP proxy to the test Redis (see test/support/tcp-proxy.ts). */
export async function startRedisProxy(): Promise<RedisProxy> {
  const target = new URL(REDIS_URL);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 6379));
  return Object.assign(proxy, { url: `redis://127.0.0.1:${proxy.port}` });
}

/** A stream entry read back with its partition and its report decoded. */
export interface EnqueuedReport {
  partition: number;
  entryId: string;
  report: Record<string, unknown>;
}

/** Every entry of every partition stream under `prefix`, parsed. */
export async function readStreams(
  redis: Redis,
  prefix: string,
  partitions: number,
): Promise<EnqueuedReport[]> {
  const entries: EnqueuedReport[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    const rows = await redis.xrange(streamKey(prefix, partition), '-', '+');
    for (const [entryId, fields] of rows) {
      expectFields(fields);
      entries.push({
        partition,
        entryId,
        report: JSON.parse(fields[1] as string) as Record<string, unknown>,
      });
    }
  }
  return entries;
}

function expectFields(fields: string[]): void {
  if (fields.length !== 2 || fields[0] !== REPORT_FIELD) {
    throw new Error(`unexpected stream entry fields: ${fields.join(',')}`);
  }
}

/** Every key under `prefix` (to prove nothing was written). */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  return redis.keys(`${prefix}:*`);
}
