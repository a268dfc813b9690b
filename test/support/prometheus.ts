// A real Prometheus server for tests (Debian's `prometheus` package, installed by
// scripts/install-prometheus.sh): started on a free port with a generated config and a
// temporary storage directory, queried over its HTTP API. Also runs promtool.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../faults/support/processes.js';
import { waitFor } from './services.js';

const MISSING =
  'is not installed: run scripts/install-prometheus.sh (Debian: apt-get install prometheus)';

/** Fails loudly when the binary is absent: the metrics tests never skip. */
export function requireBinary(name: 'prometheus' | 'promtool'): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
  if (!found) throw new Error(`${name} ${MISSING}`);
}

/** Runs promtool with `args` (and `stdin`); resolves to its exit code and output. */
export async function promtool(
  args: string[],
  stdin = '',
): Promise<{ code: number | null; output: string }> {
  requireBinary('promtool');
  const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stdin.end(stdin);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, output };
}

export interface ScrapeJob {
  job: string;
  /** host:port serving /metrics. */
  target: string;
}

export interface PrometheusServer {
  url: string;
  /** An instant query; resolves to its result vector. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** The single value of an instant query, or undefined when the vector is empty. */
  scalar(expr: string): Promise<number | undefined>;
  /** The loaded alerting rules and their health. */
  rules(): Promise<{ name: string; health: string; lastError?: string; state: string }[]>;
  stop(): Promise<void>;
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

async function api<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = (await response.json()) as ApiResponse<T>;
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? response.status}`);
  return body.data;
}

/** Starts Prometheus scraping `jobs` every second, with `ruleFiles` evaluated every second. */
export async function startPrometheus(
  jobs: ScrapeJob[],
  ruleFiles: string[] = [],
): Promise<PrometheusServer> {
  requireBinary('prometheus');
  const dir = await mkdtemp(path.join(tmpdir(), 'tally-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: ruleFiles.map((f) => path.resolve(f)),
    scrape_configs: jobs.map(({ job, target }) => ({
      job_name: job,
      static_configs: [{ targets: [target] }],
    })),
  };
  // JSON is YAML: Prometheus reads it as is.
  await writeFile(path.join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output = (output + s).slice(-8000)));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output = (output + s).slice(-8000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'Prometheus to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${output}`);
        return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
      },
      30_000,
      100,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const query = (expr: string) =>
    api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
      `${url}/api/v1/query?query=${encodeURIComponent(expr)}`,
    ).then((d) => d.result);
  return {
    url,
    query,
    scalar: async (expr) => {
      const result = await query(expr);
      if (result.length > 1) throw new Error(`${expr}: ${result.length} series, expected one`);
      return result[0] === undefined ? undefined : Number(result[0].value[1]);
    },
    rules: async () => {
      const data = await api<{
        groups: { rules: { name: string; health: string; lastError?: string; state: string }[] }[];
      }>(`${url}/api/v1/rules`);
      return data.groups.flatMap((g) => g.rules);
    },
    stop,
  };
}
