// The dashboard on a real fastify server for tests: served with /readyz over a worker's
// batch queue, closed after the test; and requests a browser would make, Host included.
import { request } from 'node:http';
import Fastify, { LogController } from 'fastify';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { registerReadyz } from '../../src/readiness.js';
import { batchQueueDependency } from '../../src/worker/queues.js';
import {
  dashboardSettings,
  registerDashboard,
  type DashboardSettings,
} from '../../src/dashboard/dashboard.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import type { WorkerTestEnv } from './pipeline.js';

export const DASHBOARD_AUTH = { user: 'ops', password: 'a-long-s3cret-pass' };

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A request with a Host header of our choosing (fetch forbids setting it). */
export async function statusWithHost(url: string, method: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

export function settingsFor(env: Record<string, string>, host: string): DashboardSettings {
  return dashboardSettings(loadConfig(env), host);
}

export async function serveDashboard(
  env: WorkerTestEnv,
  worker: RunningWorker,
  settings: DashboardSettings,
): Promise<string> {
  const app = Fastify({
    loggerInstance: silentLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  registerReadyz(app, [batchQueueDependency(worker.batches)]);
  await registerDashboard(app, [worker.batches], settings, silentLogger);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  env.defer(() => app.close());
  return base;
}
