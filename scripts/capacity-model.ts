// `npm run capacity-model [-- results.json]`: turns a capacity measurement
// (bench/results-capacity.json, from `npm run bench:capacity`) into the table of
// docs/scaling.md: per-report costs, then what 10k, 100k and 1M reports/s need. The
// planning assumptions are the constants below; change them here, not in the doc.
import { readFileSync } from 'node:fs';

/** Share of a core a process is planned to use, leaving headroom for bursts and failover. */
const NODE_CORE_UTILISATION = 0.7;
/** Redis runs commands on one core; half of it, so a shard can absorb a neighbour's failover. */
const REDIS_CORE_UTILISATION = 0.5;
/** Backlog Redis must hold through a PostgreSQL outage before anything is at risk. */
const OUTAGE_MINUTES = 10;
/** Memory planned per Redis shard for that backlog. */
const REDIS_SHARD_MEMORY_GB = 16;
/** WAL a single PostgreSQL primary is planned to sustain (fast NVMe, streaming replica). */
const PG_WAL_MB_PER_SECOND = 150;
/** Batches one worker process runs at once (TALLY_WORKER_CONCURRENCY). */
const WORKER_CONCURRENCY = 2;
const RATES = [10_000, 100_000, 1_000_000];

interface Phase {
  seconds: number;
  workerCpuMs: number;
  redis: { cpuMs: number; commands: number };
  pgCpuMs: number;
  walBytes: number;
  rollupKeys: number;
  committed: number;
}

interface Results {
  measuredAt: string;
  ingest: {
    reports: number;
    cpuMs: number;
    redisCpuMs: number;
    redisCommands: number;
    streamBytes: number;
  };
  auditRowBytes: number;
  mix: Phase;
  oneKey: Phase;
  keyed: Phase;
}

const file = process.argv[2] ?? 'bench/results-capacity.json';
const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
const n = r.ingest.reports;
const extraKeys = r.keyed.rollupKeys - r.oneKey.rollupKeys;
const perKey = (field: (p: Phase) => number) =>
  Math.max(0, (field(r.keyed) - field(r.oneKey)) / extraKeys);

const cost = {
  ingestCpuMs: r.ingest.cpuMs / n,
  workerCpuMs: r.mix.workerCpuMs / n,
  redisCpuMs: (r.ingest.redisCpuMs + r.mix.redis.cpuMs) / n,
  redisCommands: (r.ingest.redisCommands + r.mix.redis.commands) / n,
  redisBytes: r.ingest.streamBytes / n,
  pgCpuMs: r.mix.pgCpuMs / n,
  walBytes: r.mix.walBytes / n,
  auditRowBytes: r.auditRowBytes,
};
const keyCost = {
  workerCpuMs: perKey((p) => p.workerCpuMs),
  pgCpuMs: perKey((p) => p.pgCpuMs),
  walBytes: perKey((p) => p.walBytes),
};

const f = (v: number, digits = 0) =>
  v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

console.log(`Measured ${r.measuredAt} (${file}); ${f(n)} reports of the bench mix,`);
console.log(
  `${f(r.mix.rollupKeys)} rollup keys; per-key figures from ${f(extraKeys)} extra keys.\n`,
);
console.log('| cost per report                 | measured |');
console.log('| ------------------------------- | -------: |');
console.log(`| ingest CPU (HTTP, 1 per request) | ${f(cost.ingestCpuMs * 1000)} µs |`);
console.log(`| worker CPU                      | ${f(cost.workerCpuMs * 1000)} µs |`);
console.log(`| Redis CPU (write + read + delete) | ${f(cost.redisCpuMs * 1000, 1)} µs |`);
console.log(`| Redis commands                  | ${f(cost.redisCommands, 2)} |`);
console.log(`| Redis memory while queued       | ${f(cost.redisBytes)} B |`);
console.log(`| PostgreSQL backend CPU          | ${f(cost.pgCpuMs * 1000)} µs |`);
console.log(`| PostgreSQL WAL                  | ${f(cost.walBytes)} B |`);
console.log(`| audit row on disk (with indexes) | ${f(cost.auditRowBytes)} B |`);
console.log(`| per extra rollup key: worker CPU | ${f(keyCost.workerCpuMs * 1000)} µs |`);
console.log(`| per extra rollup key: PG CPU    | ${f(keyCost.pgCpuMs * 1000)} µs |`);
console.log(`| per extra rollup key: WAL       | ${f(keyCost.walBytes)} B |`);
console.log('');

console.log(
  '| reports/s | ingest processes | worker processes | partitions | Redis shards (CPU / memory) | PostgreSQL CPU | WAL | audit rows per day | PostgreSQL |',
);
console.log('| --: | --: | --: | --: | --: | --: | --: | --: | --- |');
for (const rate of RATES) {
  const ingest = Math.ceil((rate * cost.ingestCpuMs) / 1000 / NODE_CORE_UTILISATION);
  const workers = Math.ceil((rate * cost.workerCpuMs) / 1000 / NODE_CORE_UTILISATION);
  const shardsCpu = Math.ceil((rate * cost.redisCpuMs) / 1000 / REDIS_CORE_UTILISATION);
  const backlogGb = (rate * OUTAGE_MINUTES * 60 * cost.redisBytes) / 1e9;
  const shardsMemory = Math.ceil(backlogGb / REDIS_SHARD_MEMORY_GB);
  const shards = Math.max(shardsCpu, shardsMemory);
  const partitions = Math.max(4, workers * WORKER_CONCURRENCY, shards * 4);
  const pgCores = (rate * cost.pgCpuMs) / 1000;
  const walMb = (rate * cost.walBytes) / 1e6;
  const auditTbPerDay = (rate * 86_400 * cost.auditRowBytes) / 1e12;
  const primaries = Math.ceil(walMb / PG_WAL_MB_PER_SECOND);
  const pg =
    primaries <= 1
      ? `one primary, ${f((walMb / PG_WAL_MB_PER_SECOND) * 100)}% of its planned WAL`
      : `${primaries}× one primary's planned WAL: audit rows elsewhere`;
  console.log(
    `| ${f(rate)} | ${f(ingest)} | ${f(workers)} | ${f(partitions)} | ${f(shards)} (${f(shardsCpu)} / ${f(shardsMemory)}) | ${f(pgCores, 1)} cores | ${f(walMb)} MB/s | ${f(auditTbPerDay, 2)} TB | ${pg} |`,
  );
}
console.log('');
console.log(
  `Assumptions: ${NODE_CORE_UTILISATION * 100}% of a core per Node process; Redis ${REDIS_CORE_UTILISATION * 100}% of its core per shard;`,
);
console.log(
  `${OUTAGE_MINUTES} min of PostgreSQL outage buffered in ${REDIS_SHARD_MEMORY_GB} GB per shard; ${PG_WAL_MB_PER_SECOND} MB/s of WAL per primary;`,
);
console.log(`partitions ≥ worker processes × ${WORKER_CONCURRENCY} and ≥ 4 per shard.`);
