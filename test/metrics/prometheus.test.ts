// Every role's /metrics, scraped by a real Prometheus: ingest, worker and dashboard run as
// the processes an operator starts; reports go through HTTP; the counters Prometheus
// holds must agree with what SQL says was committed and rejected. promtool checks every
// endpoint's output, ops/alerts.yml, and the Grafana dashboard's queries.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnIngest, spawnTs, type Child } from '../faults/support/processes.js';
import { seedWorld } from '../support/fixtures.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { startPrometheus, promtool, type PrometheusServer } from '../support/prometheus.js';
import {
  REDIS_URL,
  createTestDatabase,
  createTestRedis,
  waitFor,
  type TestDatabase,
  type TestRedis,
} from '../support/services.js';

const TOKEN = 'metrics-test-token';
const VALID = 300;
const UNKNOWN_MODEL = 20;

let db: TestDatabase;
let r: TestRedis;
let prometheus: PrometheusServer;
const children: Child[] = [];
const endpoints: Record<'ingest' | 'worker' | 'dashboard', string> = {
  ingest: '',
  worker: '',
  dashboard: '',
};

async function scrape(base: string): Promise<string> {
  const response = await fetch(`${base}/metrics`);
  if (!response.ok) throw new Error(`${base}/metrics answered ${response.status}`);
  return response.text();
}

/** The metric names every role exposes, samples only (histogram series by their suffix). */
async function exposedNames(): Promise<Set<string | undefined>> {
  return new Set(
    (await Promise.all(Object.values(endpoints).map((base) => scrape(base))))
      .join('\n')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0]),
  );
}

async function post(body: unknown, token = TOKEN): Promise<number> {
  const response = await fetch(`${endpoints.ingest}/v2/usage/gateway-metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': token },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

const report = (i: number, modelId = 1) => ({
  model: 'qwen3-8b',
  model_id: modelId,
  user_id: 1 + (i % 3),
  input_token: 10 + i,
  output_token: 5,
  completed: true,
});

beforeAll(async () => {
  [db, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
  await seedWorld(db.prisma);
  const common = {
    DATABASE_URL: db.url,
    REDIS_URL,
    TALLY_KEY_PREFIX: r.prefix,
    TALLY_PARTITIONS: '2',
    TALLY_FLUSH_INTERVAL_MS: '500',
    TALLY_SEAL_GRACE_MS: '50',
    TALLY_ENTITY_CACHE_MS: '0',
    LOG_LEVEL: 'warn',
  };
  const ingest = await spawnIngest({ ...common, TALLY_GATEWAY_TOKEN: TOKEN });
  children.push(ingest.child);
  endpoints.ingest = ingest.base;

  const workerPort = await freePort();
  children.push(
    spawnTs('src/worker/main.ts', {
      ...common,
      TALLY_WORKER_METRICS_HOST: '127.0.0.1',
      TALLY_WORKER_METRICS_PORT: String(workerPort),
    }),
  );
  endpoints.worker = `http://127.0.0.1:${workerPort}`;

  const dashboardPort = await freePort();
  children.push(
    spawnTs('src/dashboard/main.ts', {
      ...common,
      TALLY_DASHBOARD_HOST: '127.0.0.1',
      TALLY_DASHBOARD_PORT: String(dashboardPort),
    }),
  );
  endpoints.dashboard = `http://127.0.0.1:${dashboardPort}`;

  for (const [role, base] of Object.entries(endpoints)) {
    await waitFor(
      `the ${role} to serve /metrics`,
      async () => {
        const exited = children.find((c) => c.exited());
        if (exited) throw new Error(`a process exited: ${exited.output()}`);
        return (await scrape(base)).length > 0 ? true : undefined;
      },
      30_000,
      100,
    );
  }
  prometheus = await startPrometheus(
    Object.entries(endpoints).map(([role, base]) => ({
      job: `tally-${role}`,
      target: new URL(base).host,
    })),
    ['ops/alerts.yml'],
  );
  // Scraped once before any report, so rate() sees every counter rise from 0.
  await waitFor(
    'Prometheus to scrape every role once',
    async () => ((await prometheus.scalar('sum(up)')) === 3 ? true : undefined),
    30_000,
    100,
  );

  // 300 good reports in three requests, 20 for a model the database does not know, one
  // request with a wrong token and one with an invalid report (refused, nothing enqueued).
  for (let k = 0; k < 3; k += 1) {
    expect(await post(Array.from({ length: VALID / 3 }, (_, i) => report(k * 100 + i)))).toBe(200);
  }
  expect(await post(Array.from({ length: UNKNOWN_MODEL }, (_, i) => report(i, 99)))).toBe(200);
  expect(await post(report(0), 'wrong-token')).toBe(401);
  expect(await post({ model: 'qwen3-8b', input_token: -1 })).toBe(400);

  await waitFor(
    'every report committed or rejected',
    async () => {
      const [committed, rejected] = await Promise.all([
        db.prisma.modelUsageDetail.count(),
        db.prisma.rejectedUsageReport.count(),
      ]);
      return committed === VALID && rejected === UNKNOWN_MODEL ? true : undefined;
    },
    60_000,
    100,
  );
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  for (const child of children.splice(0)) await child.stop('SIGTERM');
  await r?.cleanup();
  await db?.drop();
});

describe('metrics on every role', () => {
  it('serve output that `promtool check metrics` accepts, without user, key or model labels', async () => {
    for (const [role, base] of Object.entries(endpoints)) {
      const text = await scrape(base);
      const check = await promtool(['check', 'metrics'], text);
      expect({ role, ...check }).toEqual({ role, code: 0, output: '' });
      expect(text).not.toMatch(/\b(user|user_id|access_key|api_key|model|model_id|token)="/);
    }
  });

  it('count on each role what it did: accepted, refused, committed, rejected, backlog', async () => {
    const ingest = await scrape(endpoints.ingest);
    expect(ingest).toContain(`tally_ingest_reports_accepted_total ${VALID + UNKNOWN_MODEL}\n`);
    expect(ingest).toContain('tally_ingest_requests_refused_total{status="401"} 1\n');
    expect(ingest).toContain('tally_ingest_requests_refused_total{status="400"} 1\n');
    expect(ingest).toMatch(/tally_ingest_redis_write_duration_seconds_count 4\n/);
    expect(ingest).toMatch(/process_cpu_seconds_total \d/);
    expect(ingest).toMatch(/nodejs_eventloop_lag_seconds \d/);

    const worker = await scrape(endpoints.worker);
    expect(worker).toContain(`tally_reports_committed_total ${VALID}\n`);
    expect(worker).toContain(
      `tally_reports_rejected_total{reason="unknown_model"} ${UNKNOWN_MODEL}\n`,
    );
    expect(worker).toMatch(/tally_batches_completed_total [1-9]/);
    expect(worker).toMatch(/tally_page_commit_duration_seconds_count [1-9]/);
    expect(worker).toContain('tally_batches{state="failed"} 0\n');

    // The dashboard reports the same backlog as the worker.
    const dashboard = await scrape(endpoints.dashboard);
    expect(dashboard).toContain('tally_stream_entries{partition="1"} 0\n');
    expect(dashboard).toContain('tally_oldest_report_age_seconds 0\n');
  });

  it('agree with SQL as a real Prometheus scrapes them', async () => {
    const [committed, rejected] = await Promise.all([
      db.prisma.modelUsageDetail.count(),
      db.prisma.rejectedUsageReport.count(),
    ]);
    const expected = {
      up: 3,
      accepted: committed + rejected,
      committed,
      rejected,
      refused401: 1,
      streams: 0,
      age: 0,
      failed: 0,
    };
    const seen = await waitFor(
      'Prometheus to hold the final counts',
      async () => {
        const now = {
          up: await prometheus.scalar('sum(up)'),
          accepted: await prometheus.scalar('sum(tally_ingest_reports_accepted_total)'),
          committed: await prometheus.scalar('sum(tally_reports_committed_total)'),
          rejected: await prometheus.scalar('sum(tally_reports_rejected_total)'),
          refused401: await prometheus.scalar(
            'sum(tally_ingest_requests_refused_total{status="401"})',
          ),
          streams: await prometheus.scalar('max(sum by (job) (tally_stream_entries))'),
          age: await prometheus.scalar('max(tally_oldest_report_age_seconds)'),
          failed: await prometheus.scalar('max(tally_batches{state="failed"})'),
        };
        return JSON.stringify(now) === JSON.stringify(expected) ? now : undefined;
      },
      30_000,
      250,
    );
    expect(seen).toEqual(expected);
    await assertRollupsMatchAudit(db.prisma);
  });

  it('ops/alerts.yml passes `promtool check rules` and every rule evaluates on this pipeline', async () => {
    // Every metric a rule names is one the roles expose (a misspelt name would evaluate to
    // nothing and never fire).
    const exposed = await exposedNames();
    const alerts = await readFile('ops/alerts.yml', 'utf8');
    const named = new Set(alerts.match(/\btally_[a-z0-9_]+/g) ?? []);
    expect(named).toContain('tally_ingest_spool_oldest_age_seconds');
    expect(named).toContain('tally_ingest_spool_max_bytes');
    expect([...named].filter((name) => !exposed.has(name))).toEqual([]);

    const check = await promtool(['check', 'rules', 'ops/alerts.yml']);
    expect(check.code, check.output).toBe(0);
    expect(check.output).toContain('SUCCESS: 5 rules found');
    // 20 of 320 reports rejected is over 5 %: that rule turns pending (it fires after 15
    // minutes); nothing is stuck, failed or spooled, so the others stay inactive.
    const rules = await waitFor(
      'Prometheus to evaluate the alerting rules on the scraped counters',
      async () => {
        const loaded = await prometheus.rules();
        const rate = loaded.find((rule) => rule.name === 'TallyRejectionRateHigh');
        return loaded.length === 5 && rate?.state === 'pending' ? loaded : undefined;
      },
      30_000,
      250,
    );
    expect(rules.map((rule) => [rule.name, rule.health, rule.lastError ?? '', rule.state])).toEqual(
      [
        ['TallyBacklogOld', 'ok', '', 'inactive'],
        ['TallyBatchesFailed', 'ok', '', 'inactive'],
        ['TallyRejectionRateHigh', 'ok', '', 'pending'],
        ['TallySpoolOld', 'ok', '', 'inactive'],
        ['TallySpoolNearlyFull', 'ok', '', 'inactive'],
      ],
    );
  });

  it('the Grafana dashboard queries only metrics the pipeline exposes, in valid PromQL', async () => {
    const dashboard = JSON.parse(await readFile('ops/grafana-dashboard.json', 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exposed = await exposedNames();
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    const queried = new Set(
      exprs.flatMap((e) => e.match(/\b(tally|process|nodejs)_[a-z0-9_]+/g) ?? []),
    );
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
    for (const name of [
      'tally_oldest_report_age_seconds',
      'tally_stream_entries',
      'tally_batches',
      'tally_reports_committed_total',
      'tally_reports_rejected_total',
      'tally_ingest_reports_accepted_total',
      'tally_ingest_spool_oldest_age_seconds',
      'tally_ingest_spool_bytes',
    ]) {
      expect(queried).toContain(name);
    }
    // Every query runs on the real Prometheus ($job is Grafana's variable: all jobs here).
    for (const expr of exprs) {
      await expect(prometheus.query(expr.replaceAll('$job', '.*'))).resolves.toBeInstanceOf(Array);
    }
  });
});
