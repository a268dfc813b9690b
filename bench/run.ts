// `npm run bench`: Tally's performance benchmark against the local Redis and PostgreSQL.
// Creates its own database (tally_bench) and key prefix, measures the producer SDK, HTTP
// ingest, worker drain, end-to-end latency, memory and scaling, each next to a baseline
// from the same run, prints a table and writes bench/results.json. Exits non-zero when
// invariant 2 fails or a report is unaccounted for. Options: --only=<section,...>,
// --cpu-prof (worker profiles into bench/profiles/).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { streamKey } from '../src/contract/keys.js';
import { reportSchema, type UsageReportInput } from '../src/contract/report.js';
import { rollupMismatches } from '../src/db/checks.js';
import { createPrisma, type PrismaClient } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import { createUuidV7 } from '../src/producer/ids.js';
import { UsageProducer } from '../src/producer/producer.js';
import { INGEST_PATH, TOKEN_HEADER } from '../src/producer/server.js';
import type { WorkerConfig } from '../src/worker/worker.js';
import {
  deleteKeys,
  dropDatabase,
  LOCAL_DATABASE_URL,
  recreateDatabase,
  streamLength,
} from '../devkit/services.js';
import { fillBacklog, reportInput, rng, seedWorld } from './data.js';
import type { IngestChildOptions } from './ingest-child.js';
import type { LoadOptions, LoadResult } from './http-load.js';
import { drainLikeTheSeed } from './seed-baseline.js';
import { fmt, median, percentile } from './stats.js';
import { benchSpool } from './spool.js';
import type { FromWorker, WorkerChildOptions } from './worker-child.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH_DATABASE = 'tally_bench';
const PARTITIONS = 8;
const TOKEN = 'bench-token';
/** Longest a drain may take before the run gives up on it (the whole bench must fit 5 min). */
const DRAIN_TIMEOUT_MS = 120_000;

const args = process.argv.slice(2);
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const cpuProf = args.includes('--cpu-prof');
const wants = (section: string) => only === undefined || only.includes(section);

const config = loadConfig();
const serverUrl = config.databaseUrl ?? LOCAL_DATABASE_URL;
const benchUrl = (() => {
  const url = new URL(serverUrl);
  url.pathname = `/${BENCH_DATABASE}`;
  return url.toString();
})();
const runId = Date.now().toString(36);
const basePrefix = `tallybench-${runId}`;

interface Figure {
  section: string;
  name: string;
  value: number;
  unit: string;
  baselineName?: string;
  baseline?: number;
  /** value ÷ baseline (or the inverse where lower is better, see `lowerIsBetter`). */
  ratio?: number;
  target?: string;
  met?: boolean;
  note?: string;
}

const figures: Figure[] = [];
const checks: { run: string; sent: number; committed: number; rejected: number; ok: boolean }[] =
  [];
const notes: string[] = [];
let failed = false;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function figure(f: Figure): void {
  if (f.baseline !== undefined && f.ratio === undefined) f.ratio = f.value / f.baseline;
  figures.push(f);
  const base =
    f.baseline === undefined ? '' : ` | ${f.baselineName ?? 'baseline'} ${fmt(f.baseline)}`;
  const ratio = f.ratio === undefined ? '' : ` | ratio ${fmt(f.ratio, 2)}`;
  say(`  ${f.name}: ${fmt(f.value, f.unit === 'ms' ? 1 : 0)} ${f.unit}${base}${ratio}`);
}

// ---------------------------------------------------------------- services

const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3 });
let pool: pg.Pool;
let prisma: PrismaClient;

async function setUp(): Promise<void> {
  await recreateDatabase(serverUrl, BENCH_DATABASE);
  await migrate(benchUrl);
  prisma = createPrisma(benchUrl, { max: 4 });
  pool = new pg.Pool({ connectionString: benchUrl, max: 4 });
  await seedWorld(prisma);
}

async function truncateResults(): Promise<void> {
  await pool.query(
    'TRUNCATE model_usages, model_usage_details, rejected_usage_reports RESTART IDENTITY',
  );
}

/** Every report sent is committed or rejected, and invariant 2 holds; a failure fails the run. */
async function verify(run: string, sent: number): Promise<void> {
  const { rows } = await pool.query<{ committed: number; rejected: number }>(
    `SELECT (SELECT count(*) FROM model_usage_details)::int AS committed,
            (SELECT count(*) FROM rejected_usage_reports)::int AS rejected`,
  );
  const { committed, rejected } = rows[0] ?? { committed: 0, rejected: 0 };
  const mismatches = await rollupMismatches(prisma);
  const ok = committed + rejected === sent && mismatches.length === 0;
  checks.push({ run, sent, committed, rejected, ok });
  if (!ok) {
    failed = true;
    say(
      `  CHECK FAILED (${run}): sent ${sent}, committed ${committed}, rejected ${rejected}, ` +
        `rollup mismatches ${mismatches.length} ${JSON.stringify(mismatches.slice(0, 3))}`,
    );
  } else {
    say(
      `  check ${run}: ${committed} committed + ${rejected} rejected = ${sent} sent; invariant 2 holds`,
    );
  }
}

// ---------------------------------------------------------------- child processes

/** Worker processes run with the V8 heap cap `npm run worker` and docker-compose give them. */
const WORKER_EXEC_ARGV = ['--max-old-space-size=160'];

function forkTs(file: string, arg: unknown, extraExecArgv: string[] = []): ChildProcess {
  return fork(join(HERE, file), [JSON.stringify(arg)], {
    execArgv: ['--import', 'tsx', ...extraExecArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ChildProcess, type?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: T & { type?: string }) => {
      if (type !== undefined && message.type !== type) return;
      cleanup();
      resolve(message);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child ${child.pid} exited (${code}) before answering`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function workerConfig(prefix: string, partitions: number, flushIntervalMs: number): WorkerConfig {
  return { ...config, keyPrefix: prefix, partitions, flushIntervalMs };
}

interface WorkerRun {
  seconds: number;
  peakRssBytes: number;
  cpuMs: number;
}

/** Seconds from `started` until the streams are empty (a timeout fails the run). */
async function waitDrained(
  prefix: string,
  partitions: number,
  started: number,
  check: () => void = () => undefined,
): Promise<number> {
  for (;;) {
    check();
    if ((await streamLength(redis, prefix, partitions)) === 0) break;
    if (performance.now() - started > DRAIN_TIMEOUT_MS) {
      failed = true;
      say(`  drain timed out after ${DRAIN_TIMEOUT_MS} ms`);
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return (performance.now() - started) / 1000;
}

/** Starts `workers` processes, seals the backlog, waits until the streams are empty. */
async function drainWith(
  prefix: string,
  partitions: number,
  workers: number,
  flushIntervalMs = config.flushIntervalMs,
): Promise<WorkerRun> {
  const options: WorkerChildOptions = {
    config: workerConfig(prefix, partitions, flushIntervalMs),
    databaseUrl: benchUrl,
    seal: false,
  };
  const profArgs = cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(HERE, 'profiles')}`] : [];
  const children = Array.from({ length: workers }, () =>
    forkTs('worker-child.ts', options, [...WORKER_EXEC_ARGV, ...profArgs]),
  );
  await Promise.all(children.map((c) => nextMessage(c, 'ready')));
  const started = performance.now();
  const first = children[0];
  if (first === undefined) throw new Error('no worker');
  first.send({ type: 'seal' });
  await nextMessage(first, 'sealed');
  const seconds = await waitDrained(prefix, partitions, started);
  const stopped = await Promise.all(
    children.map((c) => {
      const answer = nextMessage<Extract<FromWorker, { type: 'stopped' }>>(c, 'stopped');
      c.send({ type: 'stop' });
      return answer;
    }),
  );
  return {
    seconds,
    peakRssBytes: Math.max(...stopped.map((s) => s.peakRssBytes)),
    cpuMs: stopped.reduce((sum, s) => sum + s.cpuMs, 0),
  };
}

/**
 * Drains with the worker exactly as deployed: the compiled entry point (`npm run build`,
 * what the Docker image runs) under the heap cap docker-compose gives it, its own sealer
 * scheduler, and the peak RSS read from /proc before it is stopped.
 */
async function drainWithDeployedWorker(prefix: string, partitions: number): Promise<WorkerRun> {
  const child = spawn(
    process.execPath,
    [...WORKER_EXEC_ARGV, join(HERE, '..', 'dist', 'src', 'worker', 'main.js')],
    {
      env: {
        ...process.env,
        DATABASE_URL: benchUrl,
        REDIS_URL: config.redisUrl,
        TALLY_KEY_PREFIX: prefix,
        TALLY_PARTITIONS: String(partitions),
        // Short windows, so the first sealer tick comes at once; the backlog's windows are closed.
        TALLY_FLUSH_INTERVAL_MS: '1000',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const started = performance.now();
  const status = () => readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const seconds = await waitDrained(prefix, partitions, started, () => {
    if (child.exitCode !== null)
      throw new Error(`worker exited (${child.exitCode}) while draining`);
  });
  const peak = /VmHWM:\s+(\d+) kB/.exec(status())?.[1];
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
  return { seconds, peakRssBytes: Number(peak ?? 0) * 1024, cpuMs: 0 };
}

async function streamBytes(prefix: string, partitions: number): Promise<number> {
  let total = 0;
  for (let p = 0; p < partitions; p += 1) {
    total += Number(
      (await redis.call('MEMORY', 'USAGE', streamKey(prefix, p), 'SAMPLES', '0')) ?? 0,
    );
  }
  return total;
}

async function usedMemory(): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

// ---------------------------------------------------------------- 1. producer SDK

function templates(count: number): UsageReportInput[] {
  const random = rng(7);
  return Array.from({ length: count }, () => reportInput(random));
}

async function timeIt(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

async function benchProducer(): Promise<void> {
  say('\n1. Producer SDK (one process, 8 partitions)');
  const prefix = `${basePrefix}:prod`;
  const inputs = templates(1_000);
  const nextId = createUuidV7();
  const stored = inputs.map((i) => ({ ...reportSchema.parse(i), report_id: nextId() }));
  const producer = new UsageProducer({
    redis: config.redisUrl,
    partitions: PARTITIONS,
    keyPrefix: prefix,
  });
  await producer.ping();
  const plain = new Redis(config.redisUrl, { enableAutoPipelining: true });
  const N = 40_000;
  const callers = 256;
  const batchCallers = 8;
  const batch = 100;

  /** `workers` callers, each taking the next `step` reports until N are sent. */
  const concurrently = async (
    workers: number,
    step: number,
    each: (i: number) => Promise<unknown>,
  ) => {
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
  };
  const plainXadd = (i: number) => {
    const report = stored[i % stored.length];
    const key = streamKey(prefix, i % PARTITIONS);
    return plain.xadd(key, '*', 'r', JSON.stringify(report));
  };
  const modes = {
    sdkSingle: () =>
      concurrently(callers, 1, (i) => producer.report(inputs[i % inputs.length] ?? { model: 'm' })),
    plainSingle: () => concurrently(callers, 1, (i) => plainXadd(i)),
    sdkBatch: () =>
      concurrently(batchCallers, batch, (i) =>
        producer.reportMany(
          Array.from({ length: batch }, (_, k) => inputs[(i + k) % 1000] ?? { model: 'm' }),
        ),
      ),
    plainBatch: () =>
      concurrently(batchCallers, batch, (i) =>
        Promise.all(Array.from({ length: batch }, (_, k) => plainXadd(i + k))),
      ),
  };
  const rates: Record<keyof typeof modes, number[]> = {
    sdkSingle: [],
    plainSingle: [],
    sdkBatch: [],
    plainBatch: [],
  };
  for (let rep = 0; rep < 3; rep += 1) {
    for (const mode of Object.keys(modes) as (keyof typeof modes)[]) {
      const seconds = await timeIt(modes[mode]);
      rates[mode].push(N / seconds);
      await deleteKeys(redis, `${prefix}:*`);
    }
  }
  await producer.close();
  plain.disconnect();
  const target = (v: number, b: number) => ({ target: '≥ 0.8 × baseline', met: v / b >= 0.8 });
  const single = median(rates.sdkSingle);
  const plainSingle = median(rates.plainSingle);
  figure({
    section: 'producer',
    name: `report() × ${callers} concurrent callers`,
    value: single,
    unit: 'reports/s',
    baselineName: 'plain XADD (auto-pipelined)',
    baseline: plainSingle,
    ...target(single, plainSingle),
  });
  const many = median(rates.sdkBatch);
  const plainMany = median(rates.plainBatch);
  figure({
    section: 'producer',
    name: `reportMany(${batch}) × ${batchCallers} concurrent callers`,
    value: many,
    unit: 'reports/s',
    baselineName: 'plain XADD (auto-pipelined)',
    baseline: plainMany,
    ...target(many, plainMany),
  });
}

// ---------------------------------------------------------------- 2. HTTP ingest

async function benchHttp(): Promise<void> {
  say(
    '\n2. HTTP ingest (server and load generator in separate processes, 32 keep-alive connections)',
  );
  const prefix = `${basePrefix}:http`;
  const ingestOptions: IngestChildOptions = {
    redisUrl: config.redisUrl,
    keyPrefix: prefix,
    partitions: PARTITIONS,
    token: TOKEN,
  };
  const server = forkTs('ingest-child.ts', ingestOptions);
  const { port } = await nextMessage<{ port: number }>(server, 'ready');
  const load = forkTs('http-load.ts', {});
  const inputs = templates(100);
  const headers = { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN };
  const base = { port, connections: 32, durationMs: 1_500, warmupMs: 300 };
  const modes: Record<string, Omit<LoadOptions, keyof typeof base> & { reports: number }> = {
    healthz: { method: 'GET', path: '/healthz', headers: {}, body: undefined, reports: 0 },
    single: {
      method: 'POST',
      path: INGEST_PATH,
      headers,
      body: JSON.stringify(inputs[0]),
      reports: 1,
    },
    array: {
      method: 'POST',
      path: INGEST_PATH,
      headers,
      body: JSON.stringify(inputs),
      reports: 100,
    },
  };
  const results: Record<string, LoadResult[]> = { healthz: [], single: [], array: [] };
  for (let rep = 0; rep < 3; rep += 1) {
    for (const [name, mode] of Object.entries(modes)) {
      const request: Omit<LoadOptions, keyof typeof base> = {
        method: mode.method,
        path: mode.path,
        headers: mode.headers,
        body: mode.body,
      };
      const answer = nextMessage<LoadResult>(load);
      load.send({ ...base, ...request } satisfies LoadOptions);
      const result = await answer;
      if (result.errors > 0) {
        failed = true;
        say(`  ${name}: ${result.errors} non-200 answers`);
      }
      results[name]?.push(result);
      await deleteKeys(redis, `${prefix}:*`);
    }
  }
  load.disconnect();
  server.send({ type: 'stop' });
  await new Promise((r) => server.once('exit', r));
  const rps = (name: string) => median((results[name] ?? []).map((r) => r.requests / r.seconds));
  const p = (name: string, key: 'p50Ms' | 'p99Ms') =>
    median((results[name] ?? []).map((r) => r[key]));
  const health = rps('healthz');
  figure({ section: 'http', name: 'GET /healthz', value: health, unit: 'requests/s' });
  figure({
    section: 'http',
    name: 'POST one report',
    value: rps('single'),
    unit: 'reports/s',
    baselineName: '/healthz requests/s',
    baseline: health,
  });
  figure({
    section: 'http',
    name: 'POST arrays of 100',
    value: rps('array') * 100,
    unit: 'reports/s',
    baselineName: '/healthz requests/s',
    baseline: health,
  });
  for (const name of ['healthz', 'single', 'array']) {
    figure({
      section: 'http',
      name: `${name} latency p50`,
      value: p(name, 'p50Ms'),
      unit: 'ms',
      ...(name === 'healthz'
        ? {}
        : { baselineName: '/healthz p50', baseline: p('healthz', 'p50Ms') }),
    });
    figure({
      section: 'http',
      name: `${name} latency p99`,
      value: p(name, 'p99Ms'),
      unit: 'ms',
      ...(name === 'healthz'
        ? {}
        : { baselineName: '/healthz p99', baseline: p('healthz', 'p99Ms') }),
    });
  }
}

// ---------------------------------------------------------------- 3. worker drain

const DRAIN_REPORTS = 200_000;
const SEED_SUBSET = 20_000;
/** The backlog arrived at this rate: 10 s windows hold 100,000 reports over 8 partitions. */
const ARRIVAL_PER_SECOND = 10_000;
let drainRate = 0;
let drainRss = 0;

async function benchDrain(): Promise<void> {
  say(
    `\n3. Worker drain: ${fmt(DRAIN_REPORTS)} reports, ${PARTITIONS} partitions, one worker process`,
  );
  await truncateResults();
  // (b) the database's own ceiling: the same number of audit rows, generated server-side,
  // into a copy of model_usage_details with its indexes.
  await pool.query('DROP TABLE IF EXISTS bench_ceiling');
  await pool.query('CREATE TABLE bench_ceiling (LIKE model_usage_details INCLUDING ALL)');
  const ceilingSeconds = await timeIt(async () => {
    await pool.query(
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
  await pool.query('DROP TABLE bench_ceiling');

  // (a) the seed's algorithm on a subset of the same data.
  const seedPrefix = `${basePrefix}:seed`;
  const seedFill = await fillBacklog(redis, seedPrefix, PARTITIONS, SEED_SUBSET, {
    seed: 1,
    perSecond: ARRIVAL_PER_SECOND,
    endsAgoMs: 30_000,
  });
  const seedSeconds = await timeIt(async () => {
    await drainLikeTheSeed({
      redis,
      pool,
      prisma,
      prefix: seedPrefix,
      partitions: PARTITIONS,
      pageSize: config.pageSize,
    });
  });
  const seedRate = seedFill.sent / seedSeconds;
  await deleteKeys(redis, `${seedPrefix}:*`);
  await truncateResults();

  // Tally's worker.
  const prefix = `${basePrefix}:drain`;
  const fillStarted = performance.now();
  const backlog = await fillBacklog(redis, prefix, PARTITIONS, DRAIN_REPORTS, {
    seed: 1,
    perSecond: ARRIVAL_PER_SECOND,
    endsAgoMs: 30_000,
  });
  say(`  backlog written in ${fmt((performance.now() - fillStarted) / 1000, 1)} s`);
  const run = await drainWith(prefix, PARTITIONS, 1);
  drainRate = backlog.sent / run.seconds;
  drainRss = run.peakRssBytes;
  await verify('drain 200k', backlog.sent);
  await deleteKeys(redis, `${prefix}:*`);

  figure({
    section: 'drain',
    name: 'drain, 1 worker',
    value: drainRate,
    unit: 'reports/s',
    target: '≥ 30,000 reports/s',
    met: drainRate >= 30_000,
  });
  figure({
    section: 'drain',
    name: `vs (a) seed algorithm (${fmt(SEED_SUBSET)}-report subset)`,
    value: drainRate,
    unit: 'reports/s',
    baselineName: '(a) seed',
    baseline: seedRate,
    target: '≥ 10 × (a)',
    met: drainRate / seedRate >= 10,
  });
  const ceilingRate = DRAIN_REPORTS / ceilingSeconds;
  figure({
    section: 'drain',
    name: 'vs (b) server-side INSERT … SELECT',
    value: drainRate,
    unit: 'reports/s',
    baselineName: '(b) ceiling',
    baseline: ceilingRate,
    target: '≥ 0.15 × (b)',
    met: drainRate / ceilingRate >= 0.15,
  });
  figure({
    section: 'drain',
    name: 'worker peak RSS',
    value: run.peakRssBytes / 1024 / 1024,
    unit: 'MB',
  });
  figure({
    section: 'drain',
    name: 'worker CPU per report',
    value: (run.cpuMs * 1000) / backlog.sent,
    unit: 'µs',
  });
}

// ---------------------------------------------------------------- 4. latency

const LATENCY_RATE = 5_000;
const LATENCY_SECONDS = 15;
const LATENCY_FLUSH_MS = 5_000;

async function benchLatency(): Promise<void> {
  say(
    `\n4. Latency at ${fmt(LATENCY_RATE)} reports/s for ${LATENCY_SECONDS} s ` +
      `(TALLY_FLUSH_INTERVAL_MS=${LATENCY_FLUSH_MS}, grace ${config.sealGraceMs} ms)`,
  );
  await truncateResults();
  const prefix = `${basePrefix}:lat`;
  const worker = forkTs(
    'worker-child.ts',
    {
      config: workerConfig(prefix, PARTITIONS, LATENCY_FLUSH_MS),
      databaseUrl: benchUrl,
      seal: true,
    } satisfies WorkerChildOptions,
    WORKER_EXEC_ARGV,
  );
  await nextMessage(worker, 'ready');
  const producer = new UsageProducer({
    redis: config.redisUrl,
    partitions: PARTITIONS,
    keyPrefix: prefix,
  });
  await producer.ping();
  const random = rng(11);
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let sent = 0;
  let failures = 0;
  let rejectedExpected = 0;
  const inFlight = new Set<Promise<void>>();

  // Observer: audit rows visible to a fresh query are committed. Ids are taken from a
  // sequence before commit, so it looks back 3 s of ids for rows that committed late.
  const marks: { at: number; id: number }[] = [{ at: 0, id: 0 }];
  let observing = true;
  const observe = async () => {
    while (observing) {
      const now = performance.now();
      const low = [...marks].reverse().find((m) => now - m.at >= 3_000)?.id ?? 0;
      const { rows } = await pool.query<{ id: string; report_id: string }>(
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
  };
  const observer = observe();

  const started = performance.now();
  while (performance.now() - started < LATENCY_SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * LATENCY_RATE);
    for (; sent < due; sent += 1) {
      const input = reportInput(random);
      const willReject = input.model_id === 9_999 || input.user_id === 99_999;
      if (willReject) rejectedExpected += 1;
      const call = producer.report(input).then(
        (id) => {
          if (!willReject) sentAt.set(id, performance.now());
        },
        () => {
          failures += 1;
        },
      );
      const tracked = call.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const actualRate = sent / ((performance.now() - started) / 1000);
  await Promise.all(inFlight);
  const deadline = performance.now() + 2 * LATENCY_FLUSH_MS + 15_000;
  while (sentAt.size > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  observing = false;
  await observer;
  await producer.close();
  const stopped = nextMessage(worker, 'stopped');
  worker.send({ type: 'stop' });
  await stopped;
  if (failures > 0 || sentAt.size > 0) {
    failed = true;
    say(`  ${failures} report() calls failed, ${sentAt.size} reports not observed committed`);
  }
  await verify('latency', sent - failures);
  await deleteKeys(redis, `${prefix}:*`);
  latencies.sort((a, b) => a - b);
  const targetMs = LATENCY_FLUSH_MS + 2_000;
  figure({
    section: 'latency',
    name: 'offered rate',
    value: actualRate,
    unit: 'reports/s',
    note: `${rejectedExpected} rejections expected`,
  });
  figure({
    section: 'latency',
    name: 'report() → committed p50',
    value: percentile(latencies, 0.5),
    unit: 'ms',
    baselineName: 'flush interval',
    baseline: LATENCY_FLUSH_MS,
  });
  const p99 = percentile(latencies, 0.99);
  figure({
    section: 'latency',
    name: 'report() → committed p99',
    value: p99,
    unit: 'ms',
    baselineName: 'flush interval',
    baseline: LATENCY_FLUSH_MS,
    target: `≤ flush interval + 2 s = ${fmt(targetMs)} ms`,
    met: p99 <= targetMs,
  });
}

// ---------------------------------------------------------------- 5. memory

const MEMORY_BUDGET_SECONDS = 60;

async function benchMemory(): Promise<void> {
  // 1M reports must fit the 5-minute budget: at the measured drain rate, the backlog is
  // the largest whole 100k that drains in MEMORY_BUDGET_SECONDS, at most 1M.
  const rate = drainRate > 0 ? drainRate : 10_000;
  const size = Math.max(
    DRAIN_REPORTS * 2,
    Math.min(1_000_000, Math.floor((rate * MEMORY_BUDGET_SECONDS) / 100_000) * 100_000),
  );
  say(`\n5. Memory: worker peak RSS draining ${fmt(size)} reports; Redis bytes per queued report`);
  if (size < 1_000_000) {
    notes.push(
      `memory: backlog ${fmt(size)} instead of 1,000,000 (drain rate ${fmt(rate)}/s does not fit 1M into the ${MEMORY_BUDGET_SECONDS} s this section may take)`,
    );
  }
  await truncateResults();
  const prefix = `${basePrefix}-mem`;
  const before = await usedMemory();
  const backlog = await fillBacklog(redis, prefix, PARTITIONS, size, {
    seed: 2,
    perSecond: ARRIVAL_PER_SECOND,
    endsAgoMs: 30_000,
  });
  const infoDelta = (await usedMemory()) - before;
  const bytes = await streamBytes(prefix, PARTITIONS);
  const run = await drainWithDeployedWorker(prefix, PARTITIONS);
  await verify(`memory ${fmt(size)}`, backlog.sent);
  await deleteKeys(redis, `${prefix}:*`);
  await truncateResults();
  const mb = (b: number) => b / 1024 / 1024;
  figure({
    section: 'memory',
    name: `worker peak RSS, ${fmt(size)} backlog (as deployed: dist/, 160 MB heap cap)`,
    value: mb(run.peakRssBytes),
    unit: 'MB',
    ...(drainRss > 0
      ? { baselineName: `peak RSS at ${fmt(DRAIN_REPORTS)}`, baseline: mb(drainRss) }
      : {}),
    target: '≤ 300 MB',
    met: mb(run.peakRssBytes) <= 300,
  });
  figure({
    section: 'memory',
    name: `drain rate, ${fmt(size)} backlog`,
    value: backlog.sent / run.seconds,
    unit: 'reports/s',
  });
  figure({
    section: 'memory',
    name: 'Redis bytes per queued report (MEMORY USAGE)',
    value: bytes / backlog.sent,
    unit: 'B',
    baselineName: 'JSON payload bytes',
    baseline: backlog.payloadBytes / backlog.sent,
  });
  figure({
    section: 'memory',
    name: 'Redis bytes per queued report (INFO used_memory delta)',
    value: infoDelta / backlog.sent,
    unit: 'B',
    note: 'shared Redis: other clients move this figure',
  });
}

// ---------------------------------------------------------------- 6. scaling

const SCALING_REPORTS = 100_000;

async function benchScaling(): Promise<void> {
  say(
    `\n6. Scaling: ${fmt(SCALING_REPORTS)}-report backlog; on ${cpus().length} cores more processes show overhead, not speed-up`,
  );
  const runs: { workers: number; partitions: number }[] = [
    { workers: 1, partitions: 8 },
    { workers: 2, partitions: 8 },
    { workers: 4, partitions: 8 },
    { workers: 1, partitions: 1 },
    { workers: 1, partitions: 4 },
  ];
  let reference = 0;
  for (const [i, r] of runs.entries()) {
    await truncateResults();
    const prefix = `${basePrefix}:scale${i}`;
    const backlog = await fillBacklog(redis, prefix, r.partitions, SCALING_REPORTS, {
      seed: 3,
      perSecond: ARRIVAL_PER_SECOND,
      endsAgoMs: 30_000,
    });
    const run = await drainWith(prefix, r.partitions, r.workers);
    await verify(`scaling w${r.workers} p${r.partitions}`, backlog.sent);
    await deleteKeys(redis, `${prefix}:*`);
    const rate = backlog.sent / run.seconds;
    if (i === 0) reference = rate;
    figure({
      section: 'scaling',
      name: `${r.workers} worker process(es), ${r.partitions} partition(s)`,
      value: rate,
      unit: 'reports/s',
      ...(i === 0 ? {} : { baselineName: '1 worker, 8 partitions', baseline: reference }),
    });
  }
}

// ---------------------------------------------------------------- table and results

function printTable(): void {
  const rows = figures.map((f) => [
    f.section,
    f.name,
    `${fmt(f.value, f.unit === 'ms' || f.unit === 'MB' ? 1 : 0)} ${f.unit}`,
    f.baseline === undefined
      ? ''
      : `${fmt(f.baseline, f.unit === 'ms' || f.unit === 'MB' ? 1 : 0)} (${f.baselineName ?? ''})`,
    f.ratio === undefined ? '' : fmt(f.ratio, 2),
    f.target ?? '',
    f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
  ]);
  const header = ['section', 'figure', 'value', 'baseline (same run)', 'ratio', 'target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join(' | ')
      .trimEnd();
  say('');
  say(line(header));
  say(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) say(line(r));
  for (const n of notes) say(`note: ${n}`);
}

async function main(): Promise<void> {
  const started = performance.now();
  const machine = {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
  };
  say(
    `Tally benchmark ${runId}: ${machine.nproc} × ${machine.cpu}, ${machine.memoryGiB} GiB, Node ${machine.node}`,
  );
  say(
    `worker config: TALLY_PAGE_SIZE=${config.pageSize} TALLY_WORKER_CONCURRENCY=${config.workerConcurrency} ` +
      `TALLY_ENTITY_CACHE_MS=${config.entityCacheMs} TALLY_FLUSH_INTERVAL_MS=${config.flushIntervalMs}`,
  );
  if (cpuProf) await mkdir(join(HERE, 'profiles'), { recursive: true });
  try {
    await setUp();
    if (wants('producer')) await benchProducer();
    if (wants('http')) await benchHttp();
    if (wants('spool')) (await benchSpool(config.redisUrl, `${basePrefix}-spool`)).forEach(figure);
    if (wants('drain')) await benchDrain();
    if (wants('latency')) await benchLatency();
    if (wants('memory')) await benchMemory();
    if (wants('scaling')) await benchScaling();
  } catch (error) {
    failed = true;
    console.error('bench failed:', error);
  } finally {
    await deleteKeys(redis, `${basePrefix}*`).catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await prisma?.$disconnect().catch(() => undefined);
    await dropDatabase(serverUrl, BENCH_DATABASE).catch(() => undefined);
    redis.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;
  printTable();
  say(
    `\n${checks.length} invariant checks, ${checks.filter((c) => !c.ok).length} failed; ${fmt(seconds)} s in all`,
  );
  await writeFile(
    join(HERE, 'results.json'),
    `${JSON.stringify(
      {
        runId,
        at: new Date().toISOString(),
        seconds,
        machine,
        config: {
          pageSize: config.pageSize,
          workerConcurrency: config.workerConcurrency,
          entityCacheMs: config.entityCacheMs,
          flushIntervalMs: config.flushIntervalMs,
        },
        figures,
        checks,
        notes,
        ok: !failed,
      },
      null,
      2,
    )}\n`,
  );
  say(failed ? 'FAILED' : 'ok');
  process.exit(failed ? 1 : 0);
}

await main();
