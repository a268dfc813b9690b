// The dashboard in a real browser (Debian's Chromium driven by playwright-core), as an
// operator uses it: sign in with basic auth, see the batches queue, open the batch that
// failed, fix its cause, press Retry, and see it complete with its reports counted once.
// Writes a screenshot of the failed-batch view to test-results/dashboard-failed-batch.png.
import { existsSync, mkdirSync } from 'node:fs';
import Fastify, { LogController } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_PATH, registerDashboard } from '../../src/dashboard/dashboard.js';
import { silentLogger } from '../../src/logger.js';
import {
  exhaustedBatch,
  streamLength,
  useWorkerTestEnv,
  waitForOutcome,
} from '../support/pipeline.js';
import { waitFor } from '../support/services.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = 'test-results/dashboard-failed-batch.png';
const env = useWorkerTestEnv();
const auth = { user: 'ops', password: 'browser-test-pass' };
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `the browser test needs Chromium at ${CHROMIUM}: run scripts/install-chromium.sh`,
    );
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
afterAll(async () => {
  await browser.close();
});

describe('the dashboard in a browser', () => {
  it('shows a failed batch, retries it on a click, and the batch commits its reports once', async () => {
    const { ids, proxy, worker, failed } = await exhaustedBatch(env);
    const app = Fastify({
      loggerInstance: silentLogger,
      logController: new LogController({ disableRequestLogging: true }),
    });
    await registerDashboard(
      app,
      [worker.batches],
      { ...auth, allowedHosts: ['127.0.0.1'] },
      silentLogger,
    );
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    env.defer(() => app.close());

    const context = await browser.newContext({
      httpCredentials: { username: auth.user, password: auth.password },
    });
    env.defer(() => context.close());
    const page = await context.newPage();
    const outside: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(base)) outside.push(request.url());
    });

    await page.goto(`${base}${DASHBOARD_PATH}`);
    await expect(page.title()).resolves.toBe('Tally');
    await page.getByText('batches', { exact: true }).first().waitFor();

    await page.goto(`${base}${DASHBOARD_PATH}/queue/batches?status=failed`);
    await page.getByText(String(failed.id)).first().waitFor();
    // The failed batch's error, as the worker recorded it, is on screen.
    const reason = (failed.failedReason.split('\n').find((l) => l.trim() !== '') ?? '').trim();
    await page.getByText(reason.slice(0, 40)).first().waitFor();
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    proxy.restore(); // the cause is fixed: the database is reachable again
    // The job card's first action button; its tooltip must say Retry.
    const retry = page
      .locator(`xpath=//*[text()="${String(failed.id)}"]/ancestor::*[.//button][1]//button`)
      .first();
    await retry.hover();
    await page.getByText('Retry', { exact: true }).first().waitFor();
    await retry.click();
    const confirm = page.getByRole('button', { name: 'Confirm', exact: true });
    if (await confirm.isVisible({ timeout: 2_000 }).catch(() => false)) await confirm.click();

    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 2, rejected: 0 });
    await waitFor('stream drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
    await waitFor('the batch to complete', async () =>
      (await worker.batches.getJobState(String(failed.id))) === 'completed' ? true : undefined,
    );
    expect((await worker.batches.getJob(String(failed.id)))?.returnvalue).toMatchObject({
      committed: 2,
      duplicates: 0,
    });
    await page.goto(`${base}${DASHBOARD_PATH}/queue/batches?status=completed`);
    await page.getByText(String(failed.id)).first().waitFor();
    expect(outside).toEqual([]);
  });
});
