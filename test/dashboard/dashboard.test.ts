// The dashboard over real HTTP: basic auth in front of bull-board, an exhausted batch
// kept in the failed set with its window and error, and retried from the dashboard.
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { checkDashboardAuth, registerDashboard } from '../../src/dashboard/dashboard.js';
import { enqueue } from '../support/fixtures.js';
import {
  cuttableDatabase,
  startTestWorker,
  streamLength,
  useWorkerTestEnv,
  waitForOutcome,
} from '../support/pipeline.js';
import { waitFor } from '../support/services.js';

const env = useWorkerTestEnv();
const auth = { user: 'ops', password: 's3cret-pass' };
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('dashboard', () => {
  it('refuses to start without credentials unless bound to loopback', () => {
    expect(() => checkDashboardAuth({ user: undefined, password: undefined }, '0.0.0.0')).toThrow(
      ConfigError,
    );
    expect(() => checkDashboardAuth({ user: 'ops', password: undefined }, '0.0.0.0')).toThrow(
      /TALLY_DASHBOARD_PASSWORD/,
    );
    expect(() =>
      checkDashboardAuth({ user: undefined, password: undefined }, '127.0.0.1'),
    ).not.toThrow();
    expect(() => checkDashboardAuth(auth, '0.0.0.0')).not.toThrow();
  });

  it('keeps an exhausted batch in the failed set and commits it once when retried from the dashboard', async () => {
    const { prisma, proxy } = await cuttableDatabase(env);
    proxy.cut();
    const ids = await enqueue(env.r.redis, env.r.prefix, [
      { model: 'qwen3-8b', model_id: 1, input_token: 5, completed: true },
      { model: 'qwen3-8b', model_id: 1, input_token: 6, completed: true },
    ]);
    const worker = await startTestWorker(prisma, env.r.prefix, {
      batchAttempts: 2,
      batchBackoffMs: 50,
    });
    env.defer(() => worker.close());

    const app = Fastify({ loggerInstance: silentLogger });
    await registerDashboard(app, [worker.batches], '/dashboard', auth);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    env.defer(() => app.close());

    const failed = await waitFor('the batch to exhaust its attempts', async () => {
      const [job] = await worker.batches.getJobs(['failed']);
      return job;
    });
    expect(failed.attemptsMade).toBe(2);
    expect(failed.data).toMatchObject({ partition: 0 });
    expect(failed.failedReason).toMatch(/\S/);
    expect(await streamLength(env.r.redis, env.r.prefix, 2)).toBe(2);

    // Without credentials, or with wrong ones, nothing is shown.
    expect((await fetch(`${base}/dashboard/api/queues`)).status).toBe(401);
    const wrong = await fetch(`${base}/dashboard/api/queues`, {
      headers: { authorization: basic('ops', 'nope') },
    });
    expect(wrong.status).toBe(401);
    const listed = await fetch(`${base}/dashboard/api/queues?activeQueue=batches&status=failed`, {
      headers: { authorization: basic(auth.user, auth.password) },
    });
    expect(listed.status).toBe(200);
    expect(JSON.stringify(await listed.json())).toContain(String(failed.id));
    const page = await fetch(`${base}/dashboard`, {
      headers: { authorization: basic(auth.user, auth.password) },
    });
    expect(page.status).toBe(200);

    proxy.restore();
    const retried = await fetch(`${base}/dashboard/api/queues/batches/${failed.id}/retry`, {
      method: 'PUT',
      headers: { authorization: basic(auth.user, auth.password) },
    });
    expect(retried.status).toBe(204);
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 2, rejected: 0 });
    await waitFor('stream drained', async () =>
      (await streamLength(env.r.redis, env.r.prefix, 2)) === 0 ? true : undefined,
    );
  });
});
