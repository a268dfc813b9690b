// The ingest socket under slow, many and deep requests, on a real server over real TCP:
// a trickled body is cut off by the request timeout, an idle socket by the connection
// timeout, connections beyond the maximum are refused, and a deeply nested body is refused
// by the pre-scan before JSON.parse can stall the event loop (/healthz stays fast).
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_INGEST_LIMITS, nestsDeeperThan } from '../../src/producer/ingest-limits.js';
import { UsageProducer } from '../../src/producer/index.js';
import {
  buildIngestServer,
  INGEST_PATH,
  TOKEN_HEADER,
  type IngestServer,
  type IngestServerOptions,
} from '../../src/producer/server.js';
import { createTestRedis, waitFor, type TestRedis } from '../support/services.js';
import { readStreams } from '../producer/support.js';

const TOKEN = 'bounds-token-5d1c';

let t: TestRedis;
const toClose: { close(): Promise<unknown> }[] = [];
const sockets: net.Socket[] = [];

beforeEach(async () => {
  t = await createTestRedis();
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of toClose.splice(0).reverse()) await c.close();
  await t.cleanup();
});

async function startServer(limits: IngestServerOptions['limits'] = {}) {
  const producer = new UsageProducer({ redis: t.redis, keyPrefix: t.prefix, timeoutMs: 500 });
  toClose.push(producer);
  const server = buildIngestServer({
    producer,
    gatewayToken: TOKEN,
    logger: pino({ level: 'silent' }),
    limits,
  });
  toClose.push(server);
  const base = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, base, port: Number(new URL(base).port) };
}

interface RawSocket {
  socket: net.Socket;
  /** Everything the server sent. */
  received: () => string;
  /** Resolves with the milliseconds from connect to close. */
  closed: Promise<number>;
}

/** A raw TCP connection to the server; nothing is sent until the test writes. */
async function connect(port: number): Promise<RawSocket> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const started = performance.now();
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => resolve(performance.now() - started)),
  );
  return { socket, received: () => data, closed };
}

/** `promise`, or a failure naming `what` after `ms`: a missing bound fails, never hangs. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function headers(contentLength: number): string {
  return [
    `POST ${INGEST_PATH} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Content-Type: application/json',
    `${TOKEN_HEADER}: ${TOKEN}`,
    `Content-Length: ${contentLength}`,
    '',
    '',
  ].join('\r\n');
}

async function openConnections(server: IngestServer): Promise<number> {
  return new Promise((resolve, reject) =>
    server.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

async function healthzMs(base: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${base}/healthz`);
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return performance.now() - started;
}

describe('time bounds', () => {
  it('cuts off a body trickled one byte at a time with 408 once the request timeout passes', async () => {
    const requestTimeoutMs = 600;
    const { port } = await startServer({ requestTimeoutMs });
    const body = JSON.stringify({ model: 'qwen3-8b', report_id: 'trickled' }).padEnd(200, ' ');
    const conn = await connect(port);
    conn.socket.write(headers(body.length));
    // 200 bytes at one per 50 ms would take 10 s; the server must not wait for them.
    let sent = 0;
    const trickle = setInterval(() => {
      if (!conn.socket.destroyed && sent < body.length) conn.socket.write(body[sent++] ?? ' ');
    }, 50);
    try {
      const lifetime = await within(conn.closed, 5_000, 'the server closing the trickle');
      expect(conn.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(lifetime).toBeGreaterThanOrEqual(requestTimeoutMs - 50);
      expect(lifetime).toBeLessThan(requestTimeoutMs * 4);
      expect(sent).toBeLessThan(body.length);
    } finally {
      clearInterval(trickle);
    }
    expect(await readStreams(t.redis, t.prefix, 4)).toEqual([]);
  });

  it('closes a socket that sends nothing once the connection timeout passes', async () => {
    const connectionTimeoutMs = 400;
    const { port } = await startServer({ connectionTimeoutMs });
    const conn = await connect(port);
    const lifetime = await within(conn.closed, 5_000, 'the server closing the idle socket');
    expect(lifetime).toBeGreaterThanOrEqual(connectionTimeoutMs - 50);
    expect(lifetime).toBeLessThan(connectionTimeoutMs * 4);
  });

  it('has defaults no longer than 30 s and a finite connection limit', () => {
    expect(DEFAULT_INGEST_LIMITS.requestTimeoutMs).toBeGreaterThan(0);
    expect(DEFAULT_INGEST_LIMITS.requestTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(DEFAULT_INGEST_LIMITS.connectionTimeoutMs).toBeGreaterThan(0);
    expect(DEFAULT_INGEST_LIMITS.connectionTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(Number.isFinite(DEFAULT_INGEST_LIMITS.maxConnections)).toBe(true);
  });
});

describe('connection bound', () => {
  it('refuses connections beyond the maximum and accepts again once one closes', async () => {
    const { server, base, port } = await startServer({ maxConnections: 2 });
    const held = [await connect(port), await connect(port)];
    await waitFor('two connections held', async () =>
      (await openConnections(server)) === 2 ? true : undefined,
    );

    const refused = await connect(port);
    await within(refused.closed, 5_000, 'the server refusing the third connection');
    expect(refused.received()).toBe('');
    expect(await openConnections(server)).toBe(2);

    const [first] = held;
    first?.socket.destroy();
    await waitFor('a connection slot free', async () =>
      (await openConnections(server)) < 2 ? true : undefined,
    );
    expect(await healthzMs(base)).toBeGreaterThan(0);
    for (const h of held) h.socket.destroy();
  });
});

describe('nesting bound', () => {
  it('counts brackets outside strings only, escapes included', () => {
    expect(nestsDeeperThan('[[1]]', 2)).toBe(false);
    expect(nestsDeeperThan('[[[1]]]', 2)).toBe(true);
    expect(nestsDeeperThan('{"a":{"b":[1]}}', 2)).toBe(true);
    expect(nestsDeeperThan(`{"model":"${'['.repeat(100)}"}`, 2)).toBe(false);
    expect(nestsDeeperThan(`{"model":"a\\"${'{'.repeat(100)}"}`, 2)).toBe(false);
    expect(nestsDeeperThan(`{"model":"a\\\\"${',{'.repeat(3)}`, 2)).toBe(true);
    expect(nestsDeeperThan('[]'.repeat(1_000), 1)).toBe(false);
  });

  it('answers 4 MiB of nested arrays with 400 json_too_deep and keeps /healthz fast meanwhile', async () => {
    const { base } = await startServer();
    const size = 4_000_000;
    const deep = `${'['.repeat(size / 2)}${']'.repeat(size / 2)}`;
    // Same size, no nesting: what merely receiving such bodies costs on this machine now.
    const flat = JSON.stringify('x'.repeat(size - 2));
    const post = async (body: string) => {
      const response = await fetch(`${base}${INGEST_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
        body,
      });
      return { status: response.status, body: (await response.json()) as { error: string } };
    };
    /** Slowest /healthz while six copies of `body` are in flight at once. */
    const worstHealthzDuring = async (body: string, error: string): Promise<number> => {
      let sending = true;
      const during: number[] = [];
      const probe = (async () => {
        while (sending) during.push(await healthzMs(base));
      })();
      const answers = await Promise.all(Array.from({ length: 6 }, () => post(body)));
      sending = false;
      await probe;
      expect(answers.map((a) => `${a.status} ${a.body.error}`)).toEqual(
        Array.from({ length: 6 }, () => `400 ${error}`),
      );
      expect(during.length).toBeGreaterThan(0);
      return Math.max(...during);
    };

    const first = await post(deep);
    expect(`${first.status} ${first.body.error}`).toBe('400 json_too_deep');
    await healthzMs(base); // a warm keep-alive connection for the probe
    const flatWorst = await worstHealthzDuring(flat, 'invalid_report');
    const deepWorst = await worstHealthzDuring(deep, 'json_too_deep');
    // Before the pre-scan each deep body held the event loop for about a second inside
    // JSON.parse; now deep bodies cost about what flat ones of the same size do.
    expect(deepWorst, `flat bodies: slowest /healthz ${flatWorst.toFixed(1)} ms`).toBeLessThan(
      Math.max(3 * flatWorst, 100),
    );
  });
});
