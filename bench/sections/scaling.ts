// Section "scaling": the same 100,000-report backlog drained by 1, 2 and 4 worker
// processes and over 1, 4 and 8 partitions, each against one worker on 8 partitions.
// Rates exclude process start-up.
import { cpus } from 'node:os';
import { fillBacklog } from '../data.js';
import type { Harness } from '../harness.js';
import { ARRIVAL_PER_SECOND, ENDS_AGO_MS, type Section } from '../section.js';
import { fmt } from '../stats.js';
import { drainWith } from '../workers.js';

const REPORTS = 100_000;
const RUNS = [
  { workers: 1, partitions: 8 },
  { workers: 2, partitions: 8 },
  { workers: 4, partitions: 8 },
  { workers: 1, partitions: 1 },
  { workers: 1, partitions: 4 },
] as const;

async function run(h: Harness): Promise<void> {
  h.rec.heading(
    `Scaling: ${fmt(REPORTS)}-report backlog; on ${cpus().length} cores more processes show overhead, not speed-up`,
  );
  let reference: number | undefined;
  for (const [i, r] of RUNS.entries()) {
    await h.truncateResults();
    const prefix = h.prefix(`scale${i}`);
    const backlog = await fillBacklog(h.redis, prefix, r.partitions, REPORTS, {
      seed: 3,
      perSecond: ARRIVAL_PER_SECOND,
      endsAgoMs: ENDS_AGO_MS,
    });
    const drained = await drainWith(h, prefix, r.partitions, r.workers);
    await h.verify(`scaling w${r.workers} p${r.partitions}`, backlog.sent);
    await h.clearPrefix(prefix);
    const rate = backlog.sent / drained.seconds;
    h.rec.figure({
      id: `scaling.w${r.workers}p${r.partitions}`,
      name: `${r.workers} worker process(es), ${r.partitions} partition(s)`,
      value: rate,
      unit: 'reports/s',
      startUp: drained.startUp,
      ...(reference === undefined
        ? {}
        : { baselineName: '1 worker, 8 partitions, reports/s', baseline: reference }),
    });
    reference ??= rate;
  }
}

const section: Section = { run };
export default section;
