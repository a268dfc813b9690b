// The benchmark's services: its own database and key prefix on the local Redis and
// PostgreSQL, and the invariant check after each drain. Measures nothing by itself and
// must never leave its database or keys behind (close() removes both).
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Config } from '../src/config.js';
import { streamKey } from '../src/contract/keys.js';
import { rollupMismatches } from '../src/db/checks.js';
import { createPrisma, type PrismaClient } from '../src/db/client.js';
import { migrate } from '../src/db/migrate.js';
import {
  deleteKeys,
  dropDatabase,
  LOCAL_DATABASE_URL,
  recreateDatabase,
} from '../devkit/services.js';
import { seedWorld } from './data.js';
import type { Recorder } from './recorder.js';

export interface HarnessOptions {
  config: Config;
  rec: Recorder;
  /** Write worker CPU profiles into bench/profiles/. */
  cpuProf: boolean;
}

export class Harness {
  readonly config: Config;
  readonly rec: Recorder;
  readonly redis: Redis;
  readonly runId = Date.now().toString(36);
  readonly basePrefix = `tallybench-${this.runId}`;
  /** Its own name per run: benches run side by side on a shared server must not drop each other's. */
  readonly database = `tally_bench_${this.runId}`;
  readonly serverUrl: string;
  readonly benchUrl: string;
  readonly cpuProf: boolean;
  private opened?: { pool: pg.Pool; prisma: PrismaClient };

  constructor(options: HarnessOptions) {
    this.config = options.config;
    this.rec = options.rec;
    this.cpuProf = options.cpuProf;
    this.serverUrl = options.config.databaseUrl ?? LOCAL_DATABASE_URL;
    const url = new URL(this.serverUrl);
    url.pathname = `/${this.database}`;
    this.benchUrl = url.toString();
    this.redis = new Redis(options.config.redisUrl, { maxRetriesPerRequest: 3 });
  }

  async open(): Promise<void> {
    await recreateDatabase(this.serverUrl, this.database);
    await migrate(this.benchUrl);
    const prisma = createPrisma(this.benchUrl, { max: 4 });
    const pool = new pg.Pool({ connectionString: this.benchUrl, max: 4 });
    // An idle client's lost connection fails the run instead of crashing it unexplained.
    pool.on('error', (error) => this.rec.fail(`PostgreSQL connection lost: ${error.message}`));
    this.opened = { pool, prisma };
    await seedWorld(prisma);
  }

  get pool(): pg.Pool {
    if (this.opened === undefined) throw new Error('harness not open');
    return this.opened.pool;
  }

  get prisma(): PrismaClient {
    if (this.opened === undefined) throw new Error('harness not open');
    return this.opened.prisma;
  }

  async close(): Promise<void> {
    await deleteKeys(this.redis, `${this.basePrefix}*`).catch(() => undefined);
    await this.opened?.pool.end().catch(() => undefined);
    await this.opened?.prisma.$disconnect().catch(() => undefined);
    await dropDatabase(this.serverUrl, this.database).catch(() => undefined);
    this.redis.disconnect();
  }

  prefix(name: string): string {
    return `${this.basePrefix}-${name}`;
  }

  async clearPrefix(prefix: string): Promise<void> {
    await deleteKeys(this.redis, `${prefix}:*`);
  }

  async truncateResults(): Promise<void> {
    await this.pool.query(
      'TRUNCATE model_usages, model_usage_details, rejected_usage_reports RESTART IDENTITY',
    );
  }

  /**
   * Every report sent is committed or rejected, and invariant 2 holds; a failure fails the
   * run. `unknown` calls were never acknowledged: each may or may not have been stored.
   */
  async verify(run: string, sent: number, unknown = 0): Promise<void> {
    const { rows } = await this.pool.query<{ committed: number; rejected: number }>(
      `SELECT (SELECT count(*) FROM model_usage_details)::int AS committed,
              (SELECT count(*) FROM rejected_usage_reports)::int AS rejected`,
    );
    const { committed, rejected } = rows[0] ?? { committed: 0, rejected: 0 };
    const mismatches = await rollupMismatches(this.prisma);
    const accounted = committed + rejected;
    const ok = accounted >= sent && accounted <= sent + unknown && mismatches.length === 0;
    this.rec.check({ run, sent, committed, rejected, ok });
    const maybe = unknown === 0 ? '' : ` (+ up to ${unknown} never acknowledged)`;
    this.rec.say(
      ok
        ? `  check ${run}: ${committed} committed + ${rejected} rejected = ${sent} sent${maybe}; invariant 2 holds`
        : `  CHECK FAILED (${run}): sent ${sent}${maybe}, committed ${committed}, rejected ${rejected}, ` +
            `rollup mismatches ${mismatches.length} ${JSON.stringify(mismatches.slice(0, 3))}`,
    );
  }

  async streamBytes(prefix: string, partitions: number): Promise<number> {
    let total = 0;
    for (let p = 0; p < partitions; p += 1) {
      total += Number(
        (await this.redis.call('MEMORY', 'USAGE', streamKey(prefix, p), 'SAMPLES', '0')) ?? 0,
      );
    }
    return total;
  }

  async usedMemory(): Promise<number> {
    const info = await this.redis.info('memory');
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  }
}
