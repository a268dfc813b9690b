// A keep-alive HTTP load generator in its own process, so it does not share the server's
// event loop: `connections` clients each send one request after the other for `durationMs`,
// and the parent gets requests/s and latency percentiles over IPC.
import http from 'node:http';
import { percentile } from './stats.js';

export interface LoadOptions {
  port: number;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  /** The request body, sent as is (already JSON). */
  body: string | undefined;
  connections: number;
  durationMs: number;
  warmupMs: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
}

function request(agent: http.Agent, options: LoadOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port: options.port,
        method: options.method,
        path: options.path,
        headers: options.headers,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function run(options: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const client = async () => {
    while (!stop) {
      const started = performance.now();
      const status = await request(agent, options).catch(() => 0);
      if (!measuring) continue;
      if (status !== 200) errors += 1;
      latencies.push(performance.now() - started);
    }
  };
  const clients = Array.from({ length: options.connections }, () => client());
  await new Promise((r) => setTimeout(r, options.warmupMs));
  measuring = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, options.durationMs));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(clients);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

process.on('message', (options: LoadOptions) => {
  run(options).then(
    (result) => process.send?.(result),
    (error: unknown) => {
      console.error('bench load: failed', error);
      process.exit(1);
    },
  );
});
