// Section "producer": the SDK's report() and reportMany() in one process against plain,
// auto-pipelined XADD of the same JSON; both in reports/s, no process start-up inside.
import { Redis } from 'ioredis';
import { streamKey } from '../../src/contract/keys.js';
import { reportSchema, type UsageReportInput } from '../../src/contract/report.js';
import { createUuidV7 } from '../../src/producer/ids.js';
import { UsageProducer } from '../../src/producer/producer.js';
import { reportInput, rng } from '../data.js';
import type { Harness } from '../harness.js';
import { PARTITIONS, type Section } from '../section.js';
import { median, timeIt } from '../stats.js';

const N = 100_000;
const CALLERS = 256;
const BATCH_CALLERS = 8;
const BATCH = 100;
const REPETITIONS = 5;

export function templates(count: number): UsageReportInput[] {
  const random = rng(7);
  return Array.from({ length: count }, () => reportInput(random));
}

/** `workers` callers, each taking the next `step` indexes until N are sent. */
async function concurrently(
  workers: number,
  step: number,
  each: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < N) {
        const i = next;
        next += step;
        await each(i);
      }
    }),
  );
}

async function run(h: Harness): Promise<void> {
  h.rec.heading(`Producer SDK (one process, ${PARTITIONS} partitions)`);
  const prefix = h.prefix('prod');
  const inputs = templates(1_000);
  const nextId = createUuidV7();
  const stored = inputs.map((i) => ({ ...reportSchema.parse(i), report_id: nextId() }));
  const producer = new UsageProducer({
    redis: h.config.redisUrl,
    partitions: PARTITIONS,
    keyPrefix: prefix,
  });
  await producer.ping();
  const plain = new Redis(h.config.redisUrl, { enableAutoPipelining: true });
  const input = (i: number) => inputs[i % inputs.length] ?? { model: 'm' };
  const plainXadd = (i: number) => {
    const key = streamKey(prefix, i % PARTITIONS);
    return plain.xadd(key, '*', 'r', JSON.stringify(stored[i % stored.length]));
  };
  const modes = {
    sdkSingle: () => concurrently(CALLERS, 1, (i) => producer.report(input(i))),
    plainSingle: () => concurrently(CALLERS, 1, (i) => plainXadd(i)),
    sdkBatch: () =>
      concurrently(BATCH_CALLERS, BATCH, (i) =>
        producer.reportMany(Array.from({ length: BATCH }, (_, k) => input(i + k))),
      ),
    plainBatch: () =>
      concurrently(BATCH_CALLERS, BATCH, (i) =>
        Promise.all(Array.from({ length: BATCH }, (_, k) => plainXadd(i + k))),
      ),
  };
  const rates: Record<keyof typeof modes, number[]> = {
    sdkSingle: [],
    plainSingle: [],
    sdkBatch: [],
    plainBatch: [],
  };
  for (let rep = 0; rep < REPETITIONS; rep += 1) {
    for (const mode of Object.keys(modes) as (keyof typeof modes)[]) {
      const seconds = await timeIt(modes[mode]);
      rates[mode].push(N / seconds);
      await h.clearPrefix(prefix);
    }
  }
  await producer.close();
  plain.disconnect();
  const against = (id: string, name: string, value: number, baseline: number) =>
    h.rec.figure({
      id,
      name,
      value,
      unit: 'reports/s',
      startUp: 'excluded',
      baselineName: 'plain XADD (auto-pipelined), reports/s',
      baseline,
      target: '≥ 0.8 × baseline',
      met: value / baseline >= 0.8,
    });
  against(
    'producer.report',
    `report() × ${CALLERS} concurrent callers`,
    median(rates.sdkSingle),
    median(rates.plainSingle),
  );
  against(
    'producer.reportMany',
    `reportMany(${BATCH}) × ${BATCH_CALLERS} concurrent callers`,
    median(rates.sdkBatch),
    median(rates.plainBatch),
  );
}

const section: Section = { run };
export default section;
