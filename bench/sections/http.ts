// Section "http": the ingest server and a keep-alive load generator in two processes.
// POST of one report per request against the same server's /healthz (requests/s against
// requests/s), and arrays of 100 against one report per request (reports/s against reports/s).
import { INGEST_PATH, TOKEN_HEADER } from '../../src/producer/server.js';
import type { Harness } from '../harness.js';
import type { IngestChildOptions } from '../ingest-child.js';
import type { LoadOptions, LoadResult } from '../http-load.js';
import { PARTITIONS, type Section } from '../section.js';
import { median } from '../stats.js';
import { forkTs, nextMessage } from '../workers.js';
import { templates } from './producer.js';

const TOKEN = 'bench-token';
const CONNECTIONS = 32;
const REPETITIONS = 3;
const MODES = ['healthz', 'single', 'array'] as const;
type Mode = (typeof MODES)[number];

async function run(h: Harness): Promise<void> {
  h.rec.heading(
    `HTTP ingest (server and load generator in separate processes, ${CONNECTIONS} keep-alive connections)`,
  );
  const prefix = h.prefix('http');
  const ingestOptions: IngestChildOptions = {
    redisUrl: h.config.redisUrl,
    keyPrefix: prefix,
    partitions: PARTITIONS,
    token: TOKEN,
  };
  const server = forkTs('ingest-child.ts', ingestOptions);
  const { port } = await nextMessage<{ port: number }>(server, 'ready');
  const load = forkTs('http-load.ts', {});
  const inputs = templates(100);
  const headers = { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN };
  const base = { port, connections: CONNECTIONS, durationMs: 1_500, warmupMs: 300 };
  const requests: Record<Mode, Omit<LoadOptions, keyof typeof base>> = {
    healthz: { method: 'GET', path: '/healthz', headers: {}, body: undefined },
    single: { method: 'POST', path: INGEST_PATH, headers, body: JSON.stringify(inputs[0]) },
    array: { method: 'POST', path: INGEST_PATH, headers, body: JSON.stringify(inputs) },
  };
  const results: Record<Mode, LoadResult[]> = { healthz: [], single: [], array: [] };
  for (let rep = 0; rep < REPETITIONS; rep += 1) {
    for (const mode of MODES) {
      const answer = nextMessage<LoadResult>(load);
      load.send({ ...base, ...requests[mode] } satisfies LoadOptions);
      const result = await answer;
      if (result.errors > 0) h.rec.fail(`${mode}: ${result.errors} non-200 answers`);
      results[mode].push(result);
      await h.clearPrefix(prefix);
    }
  }
  load.disconnect();
  server.send({ type: 'stop' });
  await new Promise((r) => server.once('exit', r));
  const rps = (mode: Mode) => median(results[mode].map((r) => r.requests / r.seconds));
  const p = (mode: Mode, key: 'p50Ms' | 'p99Ms') => median(results[mode].map((r) => r[key]));

  const health = rps('healthz');
  h.rec.figure({
    id: 'http.healthz',
    name: 'GET /healthz',
    value: health,
    unit: 'requests/s',
    startUp: 'excluded',
  });
  // One report per request: its reports/s are requests/s, like /healthz's.
  const single = rps('single');
  h.rec.figure({
    id: 'http.single',
    name: 'POST one report per request',
    value: single,
    unit: 'requests/s',
    startUp: 'excluded',
    baselineName: 'GET /healthz, requests/s',
    baseline: health,
    target: '≥ 0.6 × baseline',
    met: single / health >= 0.6,
  });
  h.rec.figure({
    id: 'http.array',
    name: 'POST arrays of 100',
    value: rps('array') * 100,
    unit: 'reports/s',
    startUp: 'excluded',
    baselineName: 'POST one report per request, reports/s',
    baseline: single,
  });
  for (const mode of MODES) {
    for (const [key, label] of [
      ['p50Ms', 'p50'],
      ['p99Ms', 'p99'],
    ] as const) {
      h.rec.figure({
        id: `http.${mode}.${label}`,
        name: `${mode} latency ${label}`,
        value: p(mode, key),
        unit: 'ms',
        ...(mode === 'healthz'
          ? {}
          : { baselineName: `/healthz ${label}`, baseline: p('healthz', key) }),
      });
    }
  }
}

const section: Section = { run };
export default section;
