// One Prometheus registry per process, with Node's default process metrics, and the two
// ways it is served: a GET /metrics route on a role's fastify server, or a bare listener
// for the standalone worker. Must never expose a label holding a user, key or model.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from '../logger.js';

export const METRICS_PATH = '/metrics';

/**
 * Default gauges named like counters, which `promtool check metrics` refuses; the gauges
 * nodejs_active_handles, nodejs_active_requests and nodejs_active_resources (by type) stay.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** A registry holding the default process metrics (CPU, memory, event-loop lag, GC). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}

/** Adds GET /metrics to a role's HTTP server. */
export function addMetricsRoute(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>,
  registry: Registry,
): void {
  app.get(METRICS_PATH, async (_request, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}

export interface MetricsListener {
  /** The bound port (useful when 0 asked for a free one). */
  port: number;
  close(): Promise<void>;
}

/** A listener that answers GET /metrics and nothing else (the standalone worker's). */
export async function startMetricsListener(
  registry: Registry,
  host: string,
  port: number,
  logger: Logger,
): Promise<MetricsListener> {
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== METRICS_PATH) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => {
        logger.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'metrics collection failed',
        );
        response.writeHead(500, { 'content-type': 'text/plain' }).end('collection failed\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
