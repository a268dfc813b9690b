// bull-board for the batch and retention queues at /dashboard, behind HTTP basic auth,
// defended like any admin page a browser opens: Host checked (no DNS rebinding),
// mutating requests only from the same origin, security headers on every answer, failed
// logins slowed per client address. Failed batches and retention runs are inspected and
// retried from here. It must never be
// reachable without credentials except on a loopback address, never fetch from another
// host, and never log a request line or a credential.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Queue } from 'bullmq';
import { ConfigError, type Config } from '../config.js';
import { sameSecret } from '../contract/secret.js';
import type { Logger } from '../logger.js';
import { LoginThrottle } from './login-throttle.js';

/** Where the dashboard is served, in the all-in-one process and standalone alike. */
export const DASHBOARD_PATH = '/dashboard';
/** The shortest dashboard password accepted at start. */
export const MIN_PASSWORD_LENGTH = 12;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const ANY_ADDRESS = new Set(['0.0.0.0', '::', '']);

export interface DashboardSettings {
  user: string;
  /** Undefined only on a loopback address: then the dashboard is open to local users. */
  password: string | undefined;
  /** Host header names (without port) accepted; undefined accepts any (credentials required). */
  allowedHosts: readonly string[] | undefined;
}

type DashboardConfig = Pick<
  Config,
  'dashboardUser' | 'dashboardPassword' | 'dashboardAllowedHosts'
>;

/**
 * Checks the dashboard's configuration for a server listening on `listenHost`. Throws
 * ConfigError: no password off loopback, or a password shorter than MIN_PASSWORD_LENGTH.
 */
export function dashboardSettings(config: DashboardConfig, listenHost: string): DashboardSettings {
  const { dashboardUser: user, dashboardPassword: password } = config;
  if (password === undefined && !LOOPBACK.has(listenHost)) {
    throw new ConfigError(
      'invalid configuration:\n  TALLY_DASHBOARD_PASSWORD: required unless the dashboard listens on 127.0.0.1, ::1 or localhost (TALLY_DASHBOARD_HOST, or TALLY_INGEST_HOST for npm start)',
    );
  }
  if (password !== undefined && password.length < MIN_PASSWORD_LENGTH) {
    throw new ConfigError(
      `invalid configuration:\n  TALLY_DASHBOARD_PASSWORD: must be at least ${MIN_PASSWORD_LENGTH} characters`,
    );
  }
  return { user, password, allowedHosts: allowedHosts(config.dashboardAllowedHosts, listenHost) };
}

function allowedHosts(configured: readonly string[] | undefined, listenHost: string) {
  if (configured !== undefined) return [...configured, ...LOOPBACK_NAMES];
  if (LOOPBACK.has(listenHost)) return LOOPBACK_NAMES;
  if (ANY_ADDRESS.has(listenHost)) return undefined;
  return [listenHost.includes(':') ? `[${listenHost}]` : listenHost, ...LOOPBACK_NAMES];
}

/** The Host header's name without its port, lowercased ("[::1]" keeps its brackets). */
export function hostName(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return name?.toLowerCase();
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};

function refuse(reply: FastifyReply, code: number, error: string, message: string) {
  return reply.code(code).send({ error, message });
}

/** Same-origin check for requests that change something (retry, pause, clean, add). */
function crossSite(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (origin === undefined) return false; // not a browser request: credentials still apply
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}

/**
 * bull-board's page links a web font from an outside host. The page is rendered from a
 * copy of its template without that link (the CSP would block it anyway), in a temporary
 * directory the caller removes when the server closes.
 */
async function localTemplateDir(): Promise<string> {
  const require = createRequire(import.meta.url);
  const source = join(dirname(require.resolve('@bull-board/ui/package.json')), 'dist');
  const template = await readFile(join(source, 'index.ejs'), 'utf8');
  const dir = await mkdtemp(join(tmpdir(), 'tally-dashboard-'));
  await writeFile(
    join(dir, 'index.ejs'),
    template.replace(/<link[^>]+href="https?:\/\/[^"]*"[^>]*>/g, ''),
  );
  return dir;
}

/** Registers the dashboard under DASHBOARD_PATH; also answers `/` with a redirect to it. */
export async function registerDashboard(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>,
  queues: Queue[],
  settings: DashboardSettings,
  logger: Logger,
): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Tally', hideDocsLink: true } },
  });
  serverAdapter.setBasePath(DASHBOARD_PATH);
  const templateDir = await localTemplateDir();
  app.addHook('onClose', () => rm(templateDir, { recursive: true, force: true }));
  serverAdapter.setViewsPath(templateDir);
  const throttle = new LoginThrottle(logger);
  const { user, password, allowedHosts: hosts } = settings;

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      void reply.headers(SECURITY_HEADERS);
      const name = hostName(request.headers.host);
      if (hosts !== undefined && (name === undefined || !hosts.includes(name))) {
        return refuse(reply, 421, 'unknown_host', 'this dashboard does not answer to that Host');
      }
      if (request.method !== 'GET' && request.method !== 'HEAD' && crossSite(request)) {
        return refuse(reply, 403, 'cross_site', 'changes are accepted only from the dashboard');
      }
      if (password === undefined) return undefined;
      const client = request.ip;
      const wait = throttle.waitMs(client);
      if (wait > 0) {
        void reply.header('retry-after', Math.ceil(wait / 1000));
        return refuse(reply, 429, 'too_many_attempts', 'too many failed logins; try later');
      }
      if (checkBasic(request.headers.authorization, user, password)) {
        throttle.succeeded(client);
        return undefined;
      }
      if (request.headers.authorization !== undefined) throttle.failed(client);
      void reply.header('www-authenticate', 'Basic realm="Tally dashboard", charset="UTF-8"');
      return refuse(reply, 401, 'unauthorized', 'dashboard credentials required');
    });
    scope.get('/', (_request, reply) => reply.redirect(DASHBOARD_PATH));
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}

/** Both parts compared every time, so timing does not tell which one was wrong. */
function checkBasic(header: string | undefined, user: string, password: string): boolean {
  if (header?.startsWith('Basic ') !== true) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return false;
  const userOk = sameSecret(decoded.slice(0, colon), user);
  const passwordOk = sameSecret(decoded.slice(colon + 1), password);
  return userOk && passwordOk;
}
