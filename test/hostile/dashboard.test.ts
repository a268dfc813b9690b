// The dashboard under hostile use (issue findings): a DNS-rebinding page, cross-site
// requests, password guessing, a short password, a forged batch job, an unnoticed pause.
// Each against a real server, a real BullMQ queue and a real worker.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { DASHBOARD_PATH } from '../../src/dashboard/dashboard.js';
import {
  DASHBOARD_AUTH as auth,
  basic,
  serveDashboard,
  settingsFor,
  statusWithHost,
} from '../support/dashboard.js';
import { useWorkerTestEnv } from '../support/pipeline.js';
import { waitFor } from '../support/services.js';

const env = useWorkerTestEnv();
const authorization = basic(auth.user, auth.password);

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

describe('the dashboard under attack', () => {
  it('answers only its own Host, refuses cross-site changes, and shows a pause in /readyz and the log', async () => {
    const warnings: string[] = [];
    const logger = pino(
      { level: 'warn' },
      {
        write: (line: string) => warnings.push(String((JSON.parse(line) as { msg: unknown }).msg)),
      },
    );
    const worker = await env.startWorker({}, { logger });
    // The loopback mode without credentials: the one a rebinding page would target.
    const base = await serveDashboard(env, worker, settingsFor({}, '127.0.0.1'));
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
    // The worker notices on its next sealer tick and says so.
    await waitFor('the pause in the log', () =>
      Promise.resolve(warnings.some((m) => m.startsWith('batch queue is paused')) || undefined),
    );
  });

  it('slows password guessing per client address', async () => {
    const worker = await env.startWorker();
    const base = await serveDashboard(env, worker, { ...auth, allowedHosts: undefined });
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
