// Section "latency": report() at a steady rate into a worker with its own sealer, and
// the time from report()'s acknowledgement until a fresh query sees the audit row. A call
// that times out is resent later with the same report_id, as the SDK's error tells
// callers to; one never acknowledged may still have been stored, so it is neither sent
// nor lost.
import { RedisUnavailableError } from '../../src/producer/errors.js';
import { UsageProducer } from '../../src/producer/producer.js';
import type { UsageReportInput } from '../../src/contract/report.js';
import { reportInput, rng } from '../data.js';
import type { Harness } from '../harness.js';
import { PARTITIONS, type Section } from '../section.js';
import { fmt, percentile } from '../stats.js';
import type { WorkerChildOptions } from '../worker-child.js';
import { forkTs, nextMessage, WORKER_EXEC_ARGV, workerConfig } from '../workers.js';

const RATE = 5_000;
const SECONDS = 15;
const FLUSH_MS = 5_000;
/** Resends of one timed-out call, each after a doubling pause, before its outcome is left unknown. */
const RESENDS = 3;
const FIRST_RESEND_PAUSE_MS = 1_000;

/** Polls audit rows and reports when each id in `sentAt` is first seen committed. */
function observeCommits(h: Harness, sentAt: Map<string, number>, latencies: number[]) {
  // Ids are taken from a sequence before commit, so it looks back 3 s of ids for rows
  // that committed late.
  const marks: { at: number; id: number }[] = [{ at: 0, id: 0 }];
  let observing = true;
  const done = (async () => {
    while (observing) {
      const now = performance.now();
      const low = [...marks].reverse().find((m) => now - m.at >= 3_000)?.id ?? 0;
      const { rows } = await h.pool.query<{ id: string; report_id: string }>(
        'SELECT id, report_id FROM model_usage_details WHERE id > $1',
        [low],
      );
      const seenAt = performance.now();
      let high = marks[marks.length - 1]?.id ?? 0;
      for (const row of rows) {
        high = Math.max(high, Number(row.id));
        const at = sentAt.get(row.report_id);
        if (at === undefined) continue;
        sentAt.delete(row.report_id);
        latencies.push(seenAt - at);
      }
      marks.push({ at: seenAt, id: high });
      if (marks.length > 200) marks.shift();
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return async () => {
    observing = false;
    await done;
  };
}

async function run(h: Harness): Promise<void> {
  h.rec.heading(
    `Latency at ${fmt(RATE)} reports/s for ${SECONDS} s ` +
      `(TALLY_FLUSH_INTERVAL_MS=${FLUSH_MS}, grace ${h.config.sealGraceMs} ms)`,
  );
  await h.truncateResults();
  const prefix = h.prefix('lat');
  const options: WorkerChildOptions = {
    config: workerConfig(h, prefix, PARTITIONS, FLUSH_MS),
    databaseUrl: h.benchUrl,
    seal: true,
  };
  const worker = forkTs('worker-child.ts', options, WORKER_EXEC_ARGV);
  await nextMessage(worker, 'ready');
  const producer = new UsageProducer({
    redis: h.config.redisUrl,
    partitions: PARTITIONS,
    keyPrefix: prefix,
  });
  await producer.ping();
  const random = rng(11);
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const acknowledged = new Set<string>();
  let calls = 0;
  let resends = 0;
  let unknown = 0;
  let rejectedExpected = 0;
  const inFlight = new Set<Promise<void>>();
  const stopObserving = observeCommits(h, sentAt, latencies);

  const send = async (input: UsageReportInput, willReject: boolean): Promise<void> => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const id = await producer.report(input);
        acknowledged.add(id);
        if (!willReject) sentAt.set(id, performance.now());
        return;
      } catch (error) {
        const id = error instanceof RedisUnavailableError ? error.reportIds[0] : undefined;
        if (id === undefined || attempt === RESENDS) {
          unknown += 1;
          return;
        }
        resends += 1;
        input = { ...input, report_id: id };
        // Later, as the error asks: an immediate resend only adds to what made Redis slow.
        await new Promise((r) => setTimeout(r, FIRST_RESEND_PAUSE_MS * 2 ** attempt));
      }
    }
  };

  const started = performance.now();
  while (performance.now() - started < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    for (; calls < due; calls += 1) {
      const input = reportInput(random);
      const willReject = input.model_id === 9_999 || input.user_id === 99_999;
      if (willReject) rejectedExpected += 1;
      const tracked: Promise<void> = send(input, willReject).finally(() =>
        inFlight.delete(tracked),
      );
      inFlight.add(tracked);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const actualRate = calls / ((performance.now() - started) / 1000);
  await Promise.all(inFlight);
  const deadline = performance.now() + 2 * FLUSH_MS + 15_000;
  while (sentAt.size > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopObserving();
  await producer.close();
  const stopped = nextMessage(worker, 'stopped');
  worker.send({ type: 'stop' });
  await stopped;
  if (resends > 0) h.rec.say(`  ${resends} timed-out report() calls resent with the same id`);
  if (unknown > 0)
    h.rec.fail(`${unknown} report() calls never acknowledged after ${RESENDS} resends`);
  if (sentAt.size > 0) h.rec.fail(`${sentAt.size} acknowledged reports not observed committed`);
  // A call that was never acknowledged may or may not have been stored: it is neither
  // counted as sent nor as lost.
  await h.verify('latency', acknowledged.size, unknown);
  await h.clearPrefix(prefix);
  latencies.sort((a, b) => a - b);
  const targetMs = FLUSH_MS + 2_000;
  h.rec.figure({
    id: 'latency.offered',
    name: 'offered rate',
    value: actualRate,
    unit: 'reports/s',
    note: `${rejectedExpected} rejections expected`,
  });
  h.rec.figure({
    id: 'latency.p50',
    name: 'report() → committed p50',
    value: percentile(latencies, 0.5),
    unit: 'ms',
    baselineName: 'flush interval',
    baseline: FLUSH_MS,
  });
  const p99 = percentile(latencies, 0.99);
  h.rec.figure({
    id: 'latency.p99',
    name: 'report() → committed p99',
    value: p99,
    unit: 'ms',
    baselineName: 'flush interval',
    baseline: FLUSH_MS,
    target: `≤ flush interval + 2 s = ${fmt(targetMs)} ms`,
    met: p99 <= targetMs,
  });
}

const section: Section = { run };
export default section;
