// The dashboard over real HTTP: basic auth in front of bull-board, an exhausted batch
// kept in the failed set with its window and error (and one error line in the log), and
// retried from the dashboard. Its defences are in test/hostile/dashboard.test.ts.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DASHBOARD_PATH } from '../../src/dashboard/dashboard.js';
import { DASHBOARD_AUTH as auth, basic, serveDashboard } from '../support/dashboard.js';
import {
  exhaustedBatch,
  streamLength,
  useWorkerTestEnv,
  waitForOutcome,
} from '../support/pipeline.js';
import { waitFor } from '../support/services.js';

const env = useWorkerTestEnv();
const authorization = basic(auth.user, auth.password);

describe('dashboard', () => {
  it('keeps an exhausted batch in the failed set, logs it once as an error, and commits it once when retried', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const { ids, proxy, worker, failed } = await exhaustedBatch(env, logger);
    const base = await serveDashboard(env, worker, { ...auth, allowedHosts: ['127.0.0.1'] });

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
});
