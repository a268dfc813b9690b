// A client that behaves like GPUStack's gateway plugin (notes: gpustack-gateway.md): one
// JSON object per POST to /v2/usage/gateway-metrics with X-GPUStack-Auth-Token, a 5 s
// timeout, never a retry, never a report_id. The plugin ignores the answer; this harness
// reads the report_ids of a 200 only to account for what was acknowledged. Requests go
// over a keep-alive agent from a bounded number of lanes, paced to a target rate; when the
// lanes cannot keep up, the achieved rate is what it is and is reported as such.
import { Agent, request } from 'node:http';
import { INGEST_PATH, TOKEN_HEADER } from '../../../src/producer/server.js';

export interface PluginLoadOptions {
  /** Where the plugin posts; the server may die and come back on the same port. */
  base: string;
  token: string;
  ratePerSecond: number;
  durationMs: number;
  /** Requests in flight at most. */
  lanes: number;
  /** The plugin's body for request number `n`. */
  body: (n: number) => Record<string, unknown>;
  timeoutMs?: number;
}

export interface PluginLoadResult {
  /** report_ids of every request answered 200. */
  acknowledged: string[];
  /** Outcomes by status; `timeout` and `error` (connection refused or reset) besides. */
  outcomes: Map<string, number>;
  attempted: number;
  elapsedMs: number;
  /** Requests answered 200 per second over the run. */
  acknowledgedPerSecond: number;
  attemptedPerSecond: number;
}

/** One POST as the plugin makes it; resolves to the status (or timeout/error) and body. */
export function postOnce(
  agent: Agent,
  url: URL,
  token: string,
  payload: string,
  timeoutMs: number,
): Promise<{ outcome: string; body: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: string, body = '') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ outcome, body });
    };
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          [TOKEN_HEADER]: token,
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => done(String(res.statusCode), body));
        res.on('error', () => done('error'));
      },
    );
    const timer = setTimeout(() => {
      done('timeout');
      req.destroy();
    }, timeoutMs);
    req.on('error', () => done('error'));
    req.end(payload);
  });
}

export async function runPluginLoad(options: PluginLoadOptions): Promise<PluginLoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.lanes });
  const url = new URL(`${options.base}${INGEST_PATH}`);
  const timeoutMs = options.timeoutMs ?? 5_000;
  const total = Math.round((options.ratePerSecond * options.durationMs) / 1000);
  const intervalMs = 1000 / options.ratePerSecond;
  const started = performance.now();
  const stopAt = started + options.durationMs;
  const acknowledged: string[] = [];
  const outcomes = new Map<string, number>();
  let next = 0;

  const lane = async () => {
    for (;;) {
      const n = next++;
      if (n >= total) return;
      const wait = started + n * intervalMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // pacing, not a condition
      if (performance.now() > stopAt + timeoutMs) return; // far behind schedule: stop
      const { outcome, body } = await postOnce(
        agent,
        url,
        options.token,
        JSON.stringify(options.body(n)),
        timeoutMs,
      );
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome === '200') {
        acknowledged.push(...((JSON.parse(body) as { report_ids: string[] }).report_ids ?? []));
      }
    }
  };
  await Promise.all(Array.from({ length: options.lanes }, lane));
  agent.destroy();
  const elapsedMs = performance.now() - started;
  const attempted = [...outcomes.values()].reduce((a, b) => a + b, 0);
  return {
    acknowledged,
    outcomes,
    attempted,
    elapsedMs,
    acknowledgedPerSecond: Math.round((acknowledged.length * 1000) / elapsedMs),
    attemptedPerSecond: Math.round((attempted * 1000) / elapsedMs),
  };
}
