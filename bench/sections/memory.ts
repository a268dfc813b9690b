// Section "memory": the worker as deployed drains a large backlog (1,000,000 reports when
// the drain section's rate fits it into the time budget) while its peak RSS is read; and
// what Redis holds per queued report.
import { fillBacklog } from '../data.js';
import type { Harness } from '../harness.js';
import { ARRIVAL_PER_SECOND, ENDS_AGO_MS, PARTITIONS, type Section } from '../section.js';
import { fmt } from '../stats.js';
import { drainWithDeployedWorker, WORKER_EXEC_ARGV } from '../workers.js';
import { DRAIN_REPORTS } from './drain.js';

const BUDGET_SECONDS = 60;
/** Drain rate assumed when the drain section did not run. */
const ASSUMED_RATE = 10_000;

async function run(h: Harness): Promise<void> {
  // At the measured drain rate, the backlog is the largest whole 100k that drains in
  // BUDGET_SECONDS, at most 1M.
  const rate = h.rec.value('drain.rate') ?? ASSUMED_RATE;
  const size = Math.max(
    DRAIN_REPORTS * 2,
    Math.min(1_000_000, Math.floor((rate * BUDGET_SECONDS) / 100_000) * 100_000),
  );
  h.rec.heading(
    `Memory: worker peak RSS draining ${fmt(size)} reports; Redis bytes per queued report`,
  );
  if (size < 1_000_000) {
    h.rec.note(
      `memory: backlog ${fmt(size)} instead of 1,000,000 (drain rate ${fmt(rate)}/s does not fit 1M into the ${BUDGET_SECONDS} s this section may take)`,
    );
  }
  await h.truncateResults();
  const prefix = h.prefix('mem');
  const before = await h.usedMemory();
  const backlog = await fillBacklog(h.redis, prefix, PARTITIONS, size, {
    seed: 2,
    perSecond: ARRIVAL_PER_SECOND,
    endsAgoMs: ENDS_AGO_MS,
  });
  const infoDelta = (await h.usedMemory()) - before;
  const bytes = await h.streamBytes(prefix, PARTITIONS);
  const run = await drainWithDeployedWorker(h, prefix, PARTITIONS);
  await h.verify(`memory ${fmt(size)}`, backlog.sent);
  await h.clearPrefix(prefix);
  await h.truncateResults();
  const mb = (b: number) => b / 1024 / 1024;
  const drainRss = h.rec.value('drain.peakRss');
  h.rec.figure({
    id: 'memory.peakRss',
    name: `worker peak RSS, ${fmt(size)} backlog (as deployed: dist/, ${WORKER_EXEC_ARGV.join(' ')})`,
    value: mb(run.peakRssBytes),
    unit: 'MB',
    ...(drainRss === undefined
      ? {}
      : { baselineName: `peak RSS at ${fmt(DRAIN_REPORTS)}, under tsx`, baseline: drainRss }),
    target: '≤ 250 MB',
    met: mb(run.peakRssBytes) <= 250,
  });
  h.rec.figure({
    id: 'memory.drainRate',
    // Timed from the spawn: not comparable with the drain section's rate, timed from ready.
    name: `drain rate, ${fmt(size)} backlog, timed from the worker's spawn`,
    value: backlog.sent / run.seconds,
    unit: 'reports/s',
    startUp: run.startUp,
  });
  h.rec.figure({
    id: 'memory.redisBytes',
    name: 'Redis bytes per queued report (MEMORY USAGE)',
    value: bytes / backlog.sent,
    unit: 'B',
    baselineName: 'JSON payload bytes',
    baseline: backlog.payloadBytes / backlog.sent,
  });
  h.rec.figure({
    id: 'memory.redisInfoBytes',
    name: 'Redis bytes per queued report (INFO used_memory delta)',
    value: infoDelta / backlog.sent,
    unit: 'B',
    note: 'shared Redis: other clients move this figure',
  });
}

const section: Section = { run };
export default section;
