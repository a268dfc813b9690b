// The dashboard over real HTTP: basic auth in front of bull-board, an exhausted batch
// kept in the failed set with its window and error (and one error line in the log), and
// retried from the dashboard; the defences of #14 (Host, origin, headers, throttled
// logins, refused forged jobs, a visible pause) each against a real server and queue.
import { request } from 'node:http';
import Fastify from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { registerReadyz } from '../../src/readiness.js';
import { batchQueueDependency } from '../../src/worker/queues.js';
import {
  DASHBOARD_PATH,
  dashboardSettings,
  registerDashboard,
  type DashboardSettings,
} from '../../src/dashboard/dashboard.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import {
  exhaustedBatch,
  streamLength,
  useWorkerTestEnv,
  waitForOutcome,
} from '../support/pipeline.js';
import { waitFor } from '../support/services.js';

const env = useWorkerTestEnv();
const auth = { user: 'ops', password: 'a-long-s3cret-pass' };
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const authorization = basic(auth.user, auth.password);

/** A request with a Host header of our choosing (fetch forbids setting it). */
async function statusWithHost(url: string, method: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function settingsFor(env: Record<string, string>, host: string): DashboardSettings {
  return dashboardSettings(loadConfig(env), host);
}

async function serve(worker: RunningWorker, settings: DashboardSettings): Promise<string> {
  const app = Fastify({ loggerInstance: silentLogger, disableRequestLogging: true });
  registerReadyz(app, [batchQueueDependency(worker.batches)]);
  await registerDashboard(app, [worker.batches], settings, silentLogger);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  env.defer(() => app.close());
  return base;
}

describe('dashboard configuration', () => {
  it('needs a password off loopback, of at least 12 characters; the user defaults to admin', () => {
    expect(() => settingsFor({}, '0.0.0.0')).toThrow(ConfigError);
    expect(() => settingsFor({ TALLY_DASHBOARD_USER: 'ops' }, '0.0.0.0')).toThrow(
      /TALLY_DASHBOARD_PASSWORD/,
    );
    expect(() => settingsFor({ TALLY_DASHBOARD_PASSWORD: 'short-pass' }, '0.0.0.0')).toThrow(
      /at least 12 characters/,
    );
    // A password without a user protects the dashboard as admin: never an open dashboard.
    expect(settingsFor({ TALLY_DASHBOARD_PASSWORD: auth.password }, '0.0.0.0')).toMatchObject({
      user: 'admin',
      password: auth.password,
    });
    expect(settingsFor({}, 'localhost')).toMatchObject({ password: undefined });
    expect(settingsFor({}, '127.0.0.1').allowedHosts).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(
      settingsFor(
        { TALLY_DASHBOARD_PASSWORD: auth.password, TALLY_DASHBOARD_ALLOWED_HOSTS: 'ops.example' },
        '0.0.0.0',
      ).allowedHosts,
    ).toContain('ops.example');
  });
});

describe('dashboard', () => {
  it('keeps an exhausted batch in the failed set, logs it once as an error, and commits it once when retried', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const { ids, proxy, worker, failed } = await exhaustedBatch(env, logger);
    const base = await serve(worker, { ...auth, allowedHosts: ['127.0.0.1'] });

    expect(failed.attemptsMade).toBe(2);
    expect(failed.data).toMatchObject({ partition: 0 });
    expect(failed.data.windowStartAt).toBe(new Date(failed.data.windowStart).toISOString());
    expect(failed.data.windowEndAt).toBe(new Date(failed.data.windowEnd).toISOString());
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(2);
    const errors = await waitFor('the final-failure log line', () => {
      const found = lines.filter((l) => l['level'] === 50);
      return Promise.resolve(found.length > 0 ? found : undefined);
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      job: failed.id,
      partition: 0,
      windowStart: failed.data.windowStartAt,
      windowEnd: failed.data.windowEndAt,
      attempts: 2,
    });
    expect(String(errors[0]?.['err'])).toMatch(/^\S/); // the first meaningful line, no banner
    expect(String(errors[0]?.['err'])).not.toContain('\n');

    // Without credentials, or with wrong ones, nothing is shown: a clean JSON 401.
    const anonymous = await fetch(`${base}${DASHBOARD_PATH}/api/queues`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({
      error: 'unauthorized',
      message: 'dashboard credentials required',
    });
    const wrong = await fetch(`${base}${DASHBOARD_PATH}/api/queues`, {
      headers: { authorization: basic('ops', 'nope') },
    });
    expect(wrong.status).toBe(401);
    const listed = await fetch(
      `${base}${DASHBOARD_PATH}/api/queues?activeQueue=batches&status=failed`,
      { headers: { authorization } },
    );
    expect(listed.status).toBe(200);
    expect(JSON.stringify(await listed.json())).toContain(String(failed.id));
    const page = await fetch(`${base}${DASHBOARD_PATH}`, { headers: { authorization } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>Tally</title>');
    expect(html).not.toMatch(/(href|src)="https?:\/\//); // nothing from another host
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('cache-control')).toBe('no-store');

    proxy.restore();
    const retried = await fetch(`${base}${DASHBOARD_PATH}/api/queues/batches/${failed.id}/retry`, {
      method: 'PUT',
      headers: { authorization, origin: base, 'sec-fetch-site': 'same-origin' },
    });
    expect(retried.status).toBe(204);
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 2, rejected: 0 });
    await waitFor('stream drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
  });

  it('answers only its own Host, refuses cross-site changes, and shows a pause in /readyz', async () => {
    const worker = await env.startWorker();
    // The loopback mode without credentials: the one a rebinding page would target.
    const base = await serve(worker, settingsFor({}, '127.0.0.1'));
    const queues = `${base}${DASHBOARD_PATH}/api/queues`;

    // fetch() may not set Host; a rebinding page's requests carry its own name.
    expect(await statusWithHost(`${queues}/batches/pause`, 'PUT', 'rebind.evil.example')).toBe(421);
    expect(await statusWithHost(`${queues}`, 'GET', 'rebind.evil.example:8081')).toBe(421);
    expect(await statusWithHost(`${queues}`, 'GET', `localhost:${new URL(base).port}`)).toBe(200);
    const crossSite = await fetch(`${queues}/batches/pause`, {
      method: 'PUT',
      headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
    expect(await worker.batches.isPaused()).toBe(false);
    const ready = async () => (await (await fetch(`${base}/readyz`)).json()) as object;
    expect(await ready()).toMatchObject({ status: 'ok', batches: { status: 'ok', paused: false } });

    const paused = await fetch(`${queues}/batches/pause`, {
      method: 'PUT',
      headers: { origin: base, 'sec-fetch-site': 'same-origin' },
    });
    expect(paused.status).toBe(200);
    expect(await worker.batches.isPaused()).toBe(true);
    expect(await ready()).toMatchObject({ status: 'ok', batches: { paused: true } });
  });

  it('slows password guessing per client address', async () => {
    const worker = await env.startWorker();
    const base = await serve(worker, { ...auth, allowedHosts: undefined });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const answer = await fetch(`${base}${DASHBOARD_PATH}/api/queues`, {
        headers: { authorization: basic('ops', `guess-${i}`) },
      });
      statuses.push(answer.status);
    }
    // Five free failures (typos), then the address must wait: guesses are not even checked.
    expect(statuses.slice(0, 6)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(statuses.slice(6)).toEqual([429, 429]);
    const right = await fetch(`${base}${DASHBOARD_PATH}/api/queues`, {
      headers: { authorization },
    });
    expect(right.status).toBe(429); // the right password too, until the wait is over
  });

  it('refuses a batch job that does not name a sealed window, without retrying it', async () => {
    const worker = await env.startWorker();
    // What anyone signed in could add from the dashboard: a window the sealer never made.
    const forged = await worker.batches.add(
      'batch',
      { partition: 0, windowStart: 123, windowEnd: 999_999_999 },
      { jobId: 'forged-1', attempts: 5 },
    );
    const failed = await waitFor('the forged job to fail', async () =>
      (await worker.batches.getJob(String(forged.id)))?.failedReason !== undefined
        ? worker.batches.getJob(String(forged.id))
        : undefined,
    );
    expect(failed?.failedReason).toMatch(/^refused batch job: windowStart 123 is not aligned/);
    expect(failed?.attemptsMade).toBe(1);
  });
});
