import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { INGEST_PATH } from '../../src/producer/server.js';
import { scratchDir } from '../support/scratch.js';
import { REDIS_URL, createTestRedis, waitFor, type TestRedis } from '../support/services.js';
import { readStreams, sampleReport } from './support.js';

interface Running {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

/** `npm run ingest` without npm: the entry point under tsx, with only the given environment. */
function startIngest(env: Record<string, string>): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/producer/main.ts'], {
    cwd: process.cwd(),
    // Each run spools into a directory of its own (the default is under the working dir).
    env: {
      PATH: process.env['PATH'] ?? '',
      TALLY_SPOOL_DIR: scratchDir('tally-spool-'),
      ...env,
    },
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout, stderr, exited };
}

let t: TestRedis;
let running: Running | undefined;

beforeEach(async () => {
  t = await createTestRedis();
});

afterEach(async () => {
  if (running?.child.exitCode === null) {
    running.child.kill('SIGKILL');
    await running.exited;
  }
  running = undefined;
  await t.cleanup();
});

describe('npm run ingest', () => {
  it('serves reports, then shuts down cleanly with exit 0 on SIGTERM', async () => {
    const token = 'main-test-token';
    running = startIngest({
      REDIS_URL,
      TALLY_GATEWAY_TOKEN: token,
      TALLY_INGEST_HOST: '127.0.0.1',
      TALLY_INGEST_PORT: '0',
      TALLY_KEY_PREFIX: t.prefix,
      LOG_LEVEL: 'info',
    });
    const run = running;
    const address = await waitFor('the listening log line', () => {
      const line = run.stdout
        .join('')
        .split('\n')
        .find((l) => l.includes('ingest server listening'));
      return line === undefined ? undefined : (JSON.parse(line) as { address: string }).address;
    });
    const response = await fetch(`${address}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': token },
      body: JSON.stringify(sampleReport({ report_id: 'via-main' })),
    });
    expect(response.status).toBe(200);
    const entries = await readStreams(t.redis, t.prefix, 4);
    expect(entries.map((e) => e.report['report_id'])).toEqual(['via-main']);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.stdout.join('')).not.toContain(token);
  });

  it.each([
    [{}, 'TALLY_GATEWAY_TOKEN'],
    [
      { TALLY_GATEWAY_TOKEN: 'x', TALLY_INGEST_BODY_LIMIT_BYTES: 'lots' },
      'TALLY_INGEST_BODY_LIMIT_BYTES',
    ],
  ])('exits 1 naming the bad variable, without a stack trace (%o)', async (env, variable) => {
    running = startIngest(env);
    expect(await running.exited).toBe(1);
    const stderr = running.stderr.join('');
    expect(stderr).toContain(variable);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
