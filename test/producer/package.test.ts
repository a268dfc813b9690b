// The SDK as a gateway depends on it: imported by package name (`tally/producer`, see
// package.json "exports"), it reports into a real Redis stream and carries its typed errors.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  InvalidReportError,
  OPERATIONS,
  UsageProducer,
  type UsageReportInput,
} from 'tally/producer';
import { UsageProducer as SourceProducer } from '../../src/producer/index.js';
import { createTestRedis, type TestRedis } from '../support/services.js';
import { readStreams, sampleReport } from './support.js';

let t: TestRedis;
beforeEach(async () => {
  t = await createTestRedis();
});
afterEach(async () => {
  await t.cleanup();
});

describe("import { UsageProducer } from 'tally/producer'", () => {
  it('is the SDK itself, not a copy', () => {
    expect(UsageProducer).toBe(SourceProducer);
    expect(OPERATIONS).toContain('chat_completion');
  });

  it('reports into the partition streams and refuses an invalid report with a typed error', async () => {
    const producer = new UsageProducer({ redis: t.redis, keyPrefix: t.prefix, partitions: 2 });
    const report: UsageReportInput = sampleReport({ report_id: 'by-name-1' });
    expect(await producer.report(report)).toBe('by-name-1');
    await expect(producer.report({ model: 'm', input_token: -1 })).rejects.toBeInstanceOf(
      InvalidReportError,
    );
    const entries = await readStreams(t.redis, t.prefix, 2);
    expect(entries.map((e) => e.report['report_id'])).toEqual(['by-name-1']);
    await producer.close();
  });
});
