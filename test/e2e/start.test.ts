// `npm start` (src/main.ts) as a user runs it: one process serving ingest, the worker and the dashboard.
// Reports posted over HTTP become rollups; the dashboard wants its credentials; SIGTERM
// shuts it down cleanly.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../devkit/services.js';
import { seedWorld } from '../support/fixtures.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { scratchDir } from '../support/scratch.js';
import {
  REDIS_URL,
  createTestDatabase,
  createTestRedis,
  waitFor,
  type TestDatabase,
  type TestRedis,
} from '../support/services.js';

let db: TestDatabase;
let r: TestRedis;

beforeAll(async () => {
  db = await createTestDatabase();
  await seedWorld(db.prisma);
  r = await createTestRedis();
});
afterAll(async () => {
  await r.cleanup();
  await db.drop();
});

describe('npm start', () => {
  it('ingests over HTTP, commits, serves the dashboard behind auth, and stops on SIGTERM', async () => {
    const port = await freePort();
    // What `npm start` runs, without npm in between (npm does not pass SIGTERM on).
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL,
        TALLY_KEY_PREFIX: r.prefix,
        TALLY_GATEWAY_TOKEN: 'e2e-token',
        TALLY_SPOOL_DIR: scratchDir('tally-spool-'),
        TALLY_INGEST_HOST: '127.0.0.1',
        TALLY_INGEST_PORT: String(port),
        TALLY_FLUSH_INTERVAL_MS: '500',
        TALLY_DASHBOARD_USER: 'ops',
        TALLY_DASHBOARD_PASSWORD: 'e2e-dashboard-pw',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(
        'ingest ready',
        async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined),
        30_000,
        200,
      );

      const response = await fetch(`${base}/v2/usage/gateway-metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': 'e2e-token' },
        body: JSON.stringify([
          {
            model: 'qwen3-8b',
            model_id: 1,
            user_id: 1,
            input_token: 11,
            output_token: 4,
            completed: true,
          },
          {
            model: 'qwen3-8b',
            model_id: 1,
            user_id: 1,
            input_token: 9,
            output_token: 6,
            completed: true,
          },
        ]),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ accepted: 2 });

      const rollup = await waitFor('the rollup', async () => {
        const rows = await db.prisma.modelUsage.findMany();
        return rows.length === 1 && rows[0]?.requestCount === 2n ? rows[0] : undefined;
      });
      expect(rollup).toMatchObject({
        userName: 'alice',
        promptTokenCount: 20n,
        completionTokenCount: 10n,
      });
      await assertRollupsMatchAudit(db.prisma);

      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: 'ok',
        redis: { status: 'ok' },
        postgres: { status: 'ok' },
        batches: { status: 'ok', paused: false },
      });
      expect((await fetch(`${base}/dashboard`)).status).toBe(401);
      const auth = `Basic ${Buffer.from('ops:e2e-dashboard-pw').toString('base64')}`;
      expect((await fetch(`${base}/dashboard`, { headers: { authorization: auth } })).status).toBe(
        200,
      );

      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
