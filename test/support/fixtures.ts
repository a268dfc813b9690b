// Entities and reports for worker tests: the development kit's small GPUStack world, and
// a way to put reports (or anything at all) into a partition stream as the producer does.
import type { Redis } from 'ioredis';
import { REPORT_FIELD, streamKey } from '../../src/contract/keys.js';
import {
  reportSchema,
  type StoredReport,
  type UsageReportInput,
} from '../../src/contract/report.js';

export { WORLD, seedWorld } from '../../devkit/world.js';

/** Adds raw entries to a partition stream; returns the stream entry ids. */
export async function xaddRaw(
  redis: Redis,
  prefix: string,
  partition: number,
  payloads: string[],
): Promise<string[]> {
  return xaddAt(
    redis,
    prefix,
    partition,
    payloads.map((payload) => ({ id: '*', payload })),
  );
}

let counter = 0;
/** A unique report id for a test. */
export function rid(label = 'r'): string {
  counter += 1;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/** Adds reports (given an id if they have none) to a partition stream, as the producer does. */
export async function enqueue(
  redis: Redis,
  prefix: string,
  reports: UsageReportInput[],
  partition = 0,
): Promise<string[]> {
  const withIds = reports.map((r) => ({ ...r, report_id: r.report_id ?? rid() }));
  await xaddRaw(
    redis,
    prefix,
    partition,
    withIds.map((r) => JSON.stringify(r)),
  );
  return withIds.map((r) => r.report_id);
}

/** A report as the worker holds it after parsing: contract defaults applied, id given. */
export function storedReport(input: UsageReportInput): StoredReport {
  const report = reportSchema.parse(input);
  return { ...report, report_id: report.report_id ?? rid() };
}

/**
 * Adds entries with explicit stream ids (e.g. `${ms}-${seq}`, or `*` for Redis' time), to
 * place reports in a chosen window. Ids must increase within a stream; returns them.
 */
export async function xaddAt(
  redis: Redis,
  prefix: string,
  partition: number,
  entries: { id: string; payload: string }[],
): Promise<string[]> {
  const pipeline = redis.pipeline();
  for (const e of entries)
    pipeline.xadd(streamKey(prefix, partition), e.id, REPORT_FIELD, e.payload);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, id]) => {
    if (error) throw error;
    return String(id);
  });
}

/** Fills one past window of a partition with `count` reports, ids `<windowStart>-1…count`. */
export async function fillWindow(
  redis: Redis,
  prefix: string,
  windowStart: number,
  count: number,
  report: (i: number) => UsageReportInput,
  partition = 0,
): Promise<void> {
  const entries = Array.from({ length: count }, (_, i) => ({
    id: `${windowStart}-${i + 1}`,
    payload: JSON.stringify({ report_id: rid('w'), ...report(i) }),
  }));
  await xaddAt(redis, prefix, partition, entries);
}
