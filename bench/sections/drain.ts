// Section "drain": one worker process drains a 200,000-report backlog; against (a) the
// seed's write algorithm on a subset of the same data and (b) the database's own ceiling,
// a server-side INSERT … SELECT of as many audit rows. Rates exclude process start-up.
// Three rounds of all three, each figure the median of its rounds: a single drain moved
// its ratios by a tenth from run to run.
import { fillBacklog } from '../data.js';
import type { Harness } from '../harness.js';
import { ARRIVAL_PER_SECOND, ENDS_AGO_MS, PARTITIONS, type Section } from '../section.js';
import { drainLikeTheSeed } from '../seed-baseline.js';
import { fmt, median, timeIt } from '../stats.js';
import type { StartUp } from '../recorder.js';
import { drainWith } from '../workers.js';

export const DRAIN_REPORTS = 200_000;
const SEED_SUBSET = 20_000;
const ROUNDS = 3;

/** Seconds PostgreSQL takes to insert DRAIN_REPORTS audit rows generated server-side. */
async function ceilingSeconds(h: Harness): Promise<number> {
  await h.pool.query('DROP TABLE IF EXISTS bench_ceiling');
  await h.pool.query('CREATE TABLE bench_ceiling (LIKE model_usage_details INCLUDING ALL)');
  const seconds = await timeIt(async () => {
    await h.pool.query(
      `INSERT INTO bench_ceiling (report_id, date, model_id, model_name, model_route_id,
         model_route_name, cluster_id, cluster_name, user_id, user_name, api_key_id, api_key_name,
         access_key, api_key_is_custom, operation, prompt_token_count, completion_token_count,
         prompt_cached_token_count, request_count, started_at, completed_at, created_at, updated_at)
       SELECT gen_random_uuid()::text, current_date, g % 8 + 1, 'model-' || (g % 8 + 1), 1,
         'chat-default', 1, 'gpu-east', g % 40 + 1, 'user-' || (g % 40 + 1), g % 40 + 1,
         'key-' || (g % 40 + 1), 'gpustack_ak_' || (g % 40 + 1), false, 'chat_completion',
         g % 2000, g % 800, g % 100, 1, now(), now(), now(), now()
       FROM generate_series(1, $1::int) AS g`,
      [DRAIN_REPORTS],
    );
  });
  await h.pool.query('DROP TABLE bench_ceiling');
  return seconds;
}

/** Reports/s of the seed's algorithm on the first SEED_SUBSET reports of the same mix. */
async function seedRate(h: Harness): Promise<number> {
  const prefix = h.prefix('seed');
  const fill = await fillBacklog(h.redis, prefix, PARTITIONS, SEED_SUBSET, {
    seed: 1,
    perSecond: ARRIVAL_PER_SECOND,
    endsAgoMs: ENDS_AGO_MS,
  });
  const seconds = await timeIt(() =>
    drainLikeTheSeed({
      redis: h.redis,
      pool: h.pool,
      prisma: h.prisma,
      prefix,
      partitions: PARTITIONS,
      pageSize: h.config.pageSize,
    }),
  );
  await h.clearPrefix(prefix);
  await h.truncateResults();
  return fill.sent / seconds;
}

async function run(h: Harness): Promise<void> {
  h.rec.heading(
    `Worker drain: ${fmt(DRAIN_REPORTS)} reports, ${PARTITIONS} partitions, one worker process`,
  );
  await h.truncateResults();
  const ceilingRates: number[] = [];
  const seedRates: number[] = [];
  const rates: number[] = [];
  const cpuPerReport: number[] = [];
  let peakRssBytes = 0;
  let startUp: StartUp = 'excluded';
  for (let round = 1; round <= ROUNDS; round += 1) {
    ceilingRates.push(DRAIN_REPORTS / (await ceilingSeconds(h)));
    seedRates.push(await seedRate(h));
    const prefix = h.prefix(`drain${round}`);
    const fillStarted = performance.now();
    const backlog = await fillBacklog(h.redis, prefix, PARTITIONS, DRAIN_REPORTS, {
      seed: 1,
      perSecond: ARRIVAL_PER_SECOND,
      endsAgoMs: ENDS_AGO_MS,
    });
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    const run = await drainWith(h, prefix, PARTITIONS, 1);
    rates.push(backlog.sent / run.seconds);
    cpuPerReport.push(((run.cpuMs ?? Number.NaN) * 1000) / backlog.sent);
    peakRssBytes = Math.max(peakRssBytes, run.peakRssBytes);
    startUp = run.startUp;
    await h.verify(`drain ${fmt(DRAIN_REPORTS)}, round ${round}`, backlog.sent);
    await h.clearPrefix(prefix);
    await h.truncateResults();
    h.rec.say(
      `  round ${round}: ceiling ${fmt(ceilingRates.at(-1) ?? 0)} rows/s, seed ${fmt(seedRates.at(-1) ?? 0)} reports/s, drain ${fmt(rates.at(-1) ?? 0)} reports/s (backlog written in ${fmt(fillSeconds, 1)} s)`,
    );
  }
  const rate = median(rates);
  const seed = median(seedRates);
  const ceilingRate = median(ceilingRates);

  h.rec.figure({
    id: 'drain.rate',
    name: 'drain, 1 worker',
    value: rate,
    unit: 'reports/s',
    startUp,
    target: '≥ 30,000 reports/s',
    met: rate >= 30_000,
  });
  h.rec.figure({
    id: 'drain.vsSeed',
    name: `vs (a) seed algorithm (${fmt(SEED_SUBSET)}-report subset)`,
    value: rate,
    unit: 'reports/s',
    startUp,
    baselineName: '(a) seed, reports/s',
    baseline: seed,
    target: '≥ 12 × (a)',
    met: rate / seed >= 12,
  });
  h.rec.figure({
    id: 'drain.vsCeiling',
    name: 'vs (b) server-side INSERT … SELECT',
    value: rate,
    unit: 'reports/s',
    startUp,
    baselineName: '(b) ceiling, audit rows/s',
    baseline: ceilingRate,
    target: '≥ 0.5 × (b)',
    met: rate / ceilingRate >= 0.5,
  });
  h.rec.figure({
    id: 'drain.peakRss',
    name: 'worker peak RSS (highest round)',
    value: peakRssBytes / 1024 / 1024,
    unit: 'MB',
  });
  h.rec.figure({
    id: 'drain.cpuPerReport',
    name: 'worker CPU per report (from ready to stop)',
    value: median(cpuPerReport),
    unit: 'µs',
  });
}

const section: Section = { run };
export default section;
