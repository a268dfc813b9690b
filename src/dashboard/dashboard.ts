// bull-board for the batch queue, mounted on a fastify instance behind HTTP basic auth.
// Failed batches are inspected and retried from here. It must never be reachable
// without credentials except on a loopback address an operator chose explicitly.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import fastifyBasicAuth from '@fastify/basic-auth';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../logger.js';
import type { Queue } from 'bullmq';
import { ConfigError } from '../config.js';
import { sameSecret } from '../contract/secret.js';

export interface DashboardAuth {
  user: string | undefined;
  password: string | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Credentials are required unless the dashboard listens on a loopback address. */
export function checkDashboardAuth(auth: DashboardAuth, host: string): void {
  const complete = auth.user !== undefined && auth.password !== undefined;
  if (!complete && !LOOPBACK.has(host)) {
    throw new ConfigError(
      'invalid configuration:\n  TALLY_DASHBOARD_USER / TALLY_DASHBOARD_PASSWORD: required unless the dashboard host is 127.0.0.1 or ::1 (TALLY_DASHBOARD_HOST, or TALLY_INGEST_HOST for the all-in-one process)',
    );
  }
}

/** Registers the dashboard under `basePath` (e.g. '/dashboard' or '/'). */
export async function registerDashboard(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>,
  queues: Queue[],
  basePath: string,
  auth: DashboardAuth,
): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  serverAdapter.setBasePath(basePath);
  await app.register(async (scope) => {
    const { user, password } = auth;
    if (user !== undefined && password !== undefined) {
      await scope.register(fastifyBasicAuth, {
        authenticate: { realm: 'Tally dashboard' },
        validate: async (u: string, p: string) => {
          // Both compared every time, so timing does not tell which one was wrong.
          const userOk = sameSecret(u, user);
          const passwordOk = sameSecret(p, password);
          const ok = userOk && passwordOk;
          if (!ok) throw new Error('invalid dashboard credentials');
          return Promise.resolve();
        },
      });
      scope.addHook('onRequest', scope.basicAuth);
    }
    await scope.register(serverAdapter.registerPlugin(), { prefix: basePath });
  });
}
