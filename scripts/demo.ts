// `npm run demo`: the whole pipeline on a fresh database, in about 30 seconds. Creates a
// database of its own (`tally_demo_<run>`) on DATABASE_URL's server (default: local
// PostgreSQL) and uses a key prefix of its own (`tally-demo-<run>`), so demos run side by
// side do not collide; migrates and seeds it, runs ingest and a worker in-process, sends a
// realistic mix of reports through the HTTP endpoint, then prints the rollups and the
// counts. Exits 0 only if invariant 2 holds. Must never leave its database or keys behind,
// whether it passes, fails or is interrupted.
import { Redis } from 'ioredis';
import {
  LOCAL_DATABASE_URL,
  createDatabase,
  deleteKeys,
  dropDatabase,
  streamLength,
} from '../devkit/services.js';
import { WORLD, describeWorld, seedWorld } from '../devkit/world.js';
import { loadConfig, type Config } from '../src/config.js';
import type { UsageReportInput } from '../src/contract/report.js';
import { rollupMismatches } from '../src/db/checks.js';
import { createPrisma, type PrismaClient } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import { createLogger, type Logger } from '../src/logger.js';
import { UsageProducer } from '../src/producer/producer.js';
import { buildIngestServer } from '../src/producer/server.js';
import { calendarDate } from '../src/worker/core/when.js';
import { startWorker } from '../src/worker/worker.js';

// Its own names per run (time and pid): two demos on one machine must not share or drop
// each other's database or keys.
const RUN_ID = `${Date.now().toString(36)}${process.pid.toString(36)}`;
const DEMO_DATABASE = `tally_demo_${RUN_ID}`;
const DEMO_PREFIX = `tally-demo-${RUN_ID}`;
const SEND_SECONDS = 20;
const TOKEN = 'demo-gateway-token';
// Aborted by Ctrl-C or SIGTERM: the send and drain loops stop, and the run unwinds through
// its usual clean-up (pipeline closed, then database and keys removed).
const interrupt = new AbortController();

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

const pick = <T>(items: readonly T[], i: number): T => items[i % items.length] as T;
const KEYS = WORLD.apiKeys.map((k) => k.accessKey);

/** The i-th report of the mix, sent at `now`. */
function makeReport(i: number, now: number): UsageReportInput {
  const user = 1 + (i % 3);
  const common = {
    user_id: user,
    access_key: i % 10 === 0 ? 'ak_batch' : pick(KEYS, user - 1),
    started_at: now - 1_500,
    completed_at: now,
  };
  const kind = i % 20;
  if (kind < 9) {
    // Every third chat goes to the LoRA adapter's route: booked under qwen3-8b.
    const lora = kind % 3 === 0;
    return {
      ...common,
      model: lora ? 'qwen3-8b:sql-lora' : 'qwen3-8b',
      model_id: 1,
      model_route_id: lora ? 3 : 1,
      cluster_id: 1,
      operation: 'chat_completion',
      completed: true,
      input_token: 200 + (i % 50),
      output_token: 80 + (i % 30),
      total_token: 280 + (i % 50) + (i % 30),
      input_cached_token: i % 4 === 0 ? 128 : 0,
    };
  }
  if (kind < 12) {
    return {
      ...common,
      model: 'llama-3-70b',
      model_id: 2,
      model_route_id: 1,
      operation: 'completion',
      completed: true,
      input_token: 900,
      output_token: 300,
      total_token: 1_200,
    };
  }
  if (kind < 14) {
    // A stream the client interrupted: no token counts, only bytes and chunks.
    return {
      ...common,
      model: 'qwen3-8b',
      model_id: 1,
      model_route_id: 1,
      operation: 'chat_completion',
      completed: false,
      request_content_bytes: 2_000,
      output_chunk_count: 37,
      completed_at: null,
    };
  }
  if (kind < 16) {
    // An embedding model reports only total_token.
    return {
      ...common,
      model: 'bge-m3',
      model_id: 3,
      model_route_id: 2,
      operation: 'embedding',
      completed: true,
      total_token: 512,
    };
  }
  if (kind < 18) {
    // A provider's model without a models row, called without an API key on behalf of
    // an organization (the gateway's X-Organization-Id): that Org is the consumer.
    return {
      ...common,
      access_key: null,
      organization_id: String(11 + (i % 2)),
      model: 'gpt-4o-mini',
      provider_id: 1,
      provider_name: 'openai-proxy',
      provider_type: 'openai',
      operation: 'chat_completion',
      completed: true,
      input_token: 50,
      output_token: 20,
      total_token: 70,
    };
  }
  if (kind < 19) {
    // A stream that started before midnight and ended after it: counted on the day it ended.
    const midnight = Math.floor(now / 86_400_000) * 86_400_000;
    return {
      ...common,
      model: 'llama-3-70b',
      model_id: 2,
      operation: 'chat_completion',
      completed: true,
      input_token: 400,
      output_token: 4_000,
      started_at: midnight - 600_000,
      completed_at: midnight + 5_000,
    };
  }
  // A model the gateway knows and Tally does not: rejected with its reason.
  return {
    ...common,
    model: 'mystery-model',
    model_id: 999,
    operation: 'chat_completion',
    completed: true,
    input_token: 1,
    output_token: 1,
  };
}

async function sendFor(
  baseUrl: string,
  seconds: number,
): Promise<{ sent: string[]; retried: number; requests: number }> {
  const sent: string[] = [];
  let retried = 0;
  let requests = 0;
  const deadline = Date.now() + seconds * 1000;
  let i = 0;
  let nextProgress = Date.now() + 5_000;
  while (Date.now() < deadline) {
    interrupt.signal.throwIfAborted();
    const now = Date.now();
    const batch = Array.from({ length: 25 }, () => makeReport(i++, now));
    const body = await post(baseUrl, batch);
    requests += 1;
    sent.push(...body.report_ids);
    // Every 10th request is resent with the same report_ids, as a gateway retry would.
    if (requests % 10 === 0) {
      const again = batch.map((r, k) => ({ ...r, report_id: body.report_ids[k] }));
      await post(baseUrl, again);
      retried += again.length;
    }
    if (Date.now() >= nextProgress) {
      say(`  sent ${sent.length} reports (${retried} resent as gateway retries)`);
      nextProgress += 5_000;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { sent, retried, requests };
}

async function post(
  baseUrl: string,
  reports: UsageReportInput[],
): Promise<{ report_ids: string[] }> {
  const response = await fetch(`${baseUrl}/v2/usage/gateway-metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': TOKEN },
    body: JSON.stringify(reports),
  });
  if (response.status !== 200)
    throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { report_ids: string[] };
}

async function waitForDrain(
  redis: Redis,
  prisma: PrismaClient,
  expected: number,
  partitions: number,
): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    interrupt.signal.throwIfAborted();
    const [row] = await prisma.$queryRaw<{ n: number }[]>`
      SELECT ((SELECT count(*) FROM model_usage_details) + (SELECT count(*) FROM rejected_usage_reports))::int AS n`;
    const queued = await streamLength(redis, DEMO_PREFIX, partitions);
    if ((row?.n ?? 0) >= expected && queued === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `pipeline did not drain: ${row?.n ?? 0}/${expected} accounted, ${queued} queued`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function printResults(prisma: PrismaClient, timeZone: string): Promise<void> {
  const rollups = await prisma.modelUsage.findMany({
    orderBy: [
      { date: 'asc' },
      { modelName: 'asc' },
      { userName: 'asc' },
      { operation: 'asc' },
      { accessKey: 'asc' },
      { modelRouteId: 'asc' },
      { consumerPrincipalId: 'asc' },
    ],
  });
  say(`\nDaily rollups (model_usages), dates in ${timeZone}:`);
  console.table(
    rollups.map((u) => ({
      date: u.date.toISOString().slice(0, 10),
      model: u.modelName,
      provider: u.providerName ?? '',
      cluster: u.clusterName ?? '',
      route: u.modelRouteName ?? '',
      user: u.userName ?? '',
      api_key: u.apiKeyName ?? '',
      consumer: u.consumerName === null ? '' : `${u.consumerName} (${u.consumerPrincipalKind})`,
      operation: u.operation ?? '',
      prompt: Number(u.promptTokenCount),
      completion: Number(u.completionTokenCount),
      cached: Number(u.promptCachedTokenCount),
      requests: Number(u.requestCount),
    })),
  );
}

async function main(config: Config): Promise<number> {
  const serverUrl = config.databaseUrl ?? LOCAL_DATABASE_URL;
  const redis = new Redis(config.redisUrl);
  const removeAll = async () => {
    try {
      await deleteKeys(redis, `${DEMO_PREFIX}:*`);
      await dropDatabase(serverUrl, DEMO_DATABASE);
    } catch (error) {
      console.error(
        `demo: could not remove database ${DEMO_DATABASE} or keys ${DEMO_PREFIX}:*: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  };
  const interrupted = (signal: NodeJS.Signals) =>
    interrupt.abort(new Error(`interrupted by ${signal}`));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    return await run(config, serverUrl, redis);
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await removeAll();
    redis.disconnect();
  }
}

async function run(config: Config, serverUrl: string, redis: Redis): Promise<number> {
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'tally-demo');
  const demoConfig: Config = {
    ...config,
    keyPrefix: DEMO_PREFIX,
    flushIntervalMs: 2_000,
    sealGraceMs: 500,
    gatewayToken: TOKEN,
  };

  say(`1/5 creating database ${DEMO_DATABASE} and migrating it`);
  const databaseUrl = await createDatabase(serverUrl, DEMO_DATABASE);
  await migrate(databaseUrl);
  const prisma = createPrisma(databaseUrl);
  try {
    say(`2/5 seeding ${describeWorld(WORLD)}`);
    await seedWorld(prisma);
    return await runPipeline(demoConfig, prisma, redis, logger);
  } finally {
    await prisma.$disconnect();
  }
}

async function runPipeline(
  demoConfig: Config,
  prisma: PrismaClient,
  redis: Redis,
  logger: Logger,
): Promise<number> {
  say('3/5 starting the pipeline: ingest on 127.0.0.1 and a worker with 2-second windows');
  const worker = await startWorker({ config: demoConfig, prisma, logger });
  const producer = UsageProducer.fromConfig(demoConfig, logger);
  const server = buildIngestServer({ producer, gatewayToken: TOKEN, logger });
  try {
    const baseUrl = await server.listen({ host: '127.0.0.1', port: 0 });
    say(`4/5 sending reports through ${baseUrl}/v2/usage/gateway-metrics for ${SEND_SECONDS} s`);
    const { sent, retried } = await sendFor(baseUrl, SEND_SECONDS);
    say(
      `  done: ${sent.length} reports, ${retried} of them sent twice; waiting for the last windows to commit`,
    );
    await waitForDrain(redis, prisma, sent.length, demoConfig.partitions);

    say('5/5 results');
    await printResults(prisma, demoConfig.rollupTimeZone);
    const jobs = await worker.batches.getJobs(['completed']);
    const duplicates = jobs.reduce((n, j) => n + j.returnvalue.duplicates, 0);
    const committed = await prisma.modelUsageDetail.count();
    const rejected = await prisma.rejectedUsageReport.groupBy({ by: ['reason'], _count: true });
    say(
      `reports accepted: ${sent.length + retried} (${sent.length} distinct report_ids; resent rejected reports are recorded once as rejected)`,
    );
    say(
      `committed: ${committed}   duplicates ignored: ${duplicates}   rejected: ${rejected.map((r) => `${r.reason} ${r._count}`).join(', ') || 'none'}`,
    );
    say(
      `today in ${demoConfig.rollupTimeZone}: ${calendarDate(Date.now(), demoConfig.rollupTimeZone)}`,
    );
    const mismatches = await rollupMismatches(prisma);
    if (
      mismatches.length > 0 ||
      committed + rejected.reduce((n, r) => n + r._count, 0) !== sent.length
    ) {
      say(
        `FAILED: invariant 2 broken for ${mismatches.length} rollup key(s) or reports unaccounted: ${JSON.stringify(mismatches.slice(0, 3))}`,
      );
      return 1;
    }
    say(
      'invariant 2 holds: every rollup equals the sum of its audit rows, and every report is counted once.',
    );
    return 0;
  } finally {
    await server.close();
    await producer.close();
    await worker.close();
  }
}

main(loadConfig()).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
