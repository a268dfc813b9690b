// A /metrics scrape answers within about 2 s while Redis is down: the backlog read gives up
// after BACKLOG_READ_TIMEOUT_MS, the backlog gauges are left out and the failure is counted,
// instead of the scrape waiting on BullMQ's connection until Redis returns. The real
// dashboard process (which serves the backlog gauges), a dedicated Redis the test kills.
import { afterAll, describe, expect, it } from 'vitest';
import { startDedicatedRedis, type DedicatedRedis } from '../../devkit/redis-server.js';
import { freePort, spawnTs, type Child } from '../faults/support/processes.js';
import { uniqueName, waitFor } from '../support/services.js';

/** BACKLOG_READ_TIMEOUT_MS (1.5 s) plus the rest of a scrape, with room for a loaded machine. */
const SCRAPE_BOUND_MS = 2_500;

let redis: DedicatedRedis | undefined;
let dashboard: Child | undefined;

afterAll(async () => {
  await dashboard?.stop('SIGKILL');
  await redis?.cleanup();
});

async function scrape(base: string): Promise<{ ms: number; status: number; text: string }> {
  const started = performance.now();
  const answer = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(30_000) });
  const text = await answer.text();
  return { ms: performance.now() - started, status: answer.status, text };
}

describe('/metrics while Redis is down', () => {
  it('answers within about 2 s, without the backlog gauges, counting the failed read', async () => {
    redis = await startDedicatedRedis('everysec');
    const port = await freePort();
    dashboard = spawnTs('src/dashboard/main.ts', {
      REDIS_URL: redis.url,
      TALLY_KEY_PREFIX: uniqueName('tm'),
      TALLY_PARTITIONS: '2',
      TALLY_DASHBOARD_HOST: '127.0.0.1',
      TALLY_DASHBOARD_PORT: String(port),
      LOG_LEVEL: 'warn',
    });
    const base = `http://127.0.0.1:${port}`;
    const child = dashboard;
    const up = await waitFor(
      'the dashboard to serve /metrics',
      async () => {
        if (child.exited()) throw new Error(`the dashboard exited: ${child.output()}`);
        return await scrape(base);
      },
      30_000,
      100,
    );
    expect(up.status).toBe(200);
    expect(up.text).toContain('tally_stream_entries{partition="0"} 0');
    expect(up.text).toContain('tally_backlog_read_errors_total 0');

    await redis.kill('SIGKILL');
    for (const failedReads of [1, 2]) {
      const down = await scrape(base);
      expect(down.status).toBe(200);
      expect(down.ms).toBeLessThan(SCRAPE_BOUND_MS);
      expect(down.text).not.toContain('tally_stream_entries{');
      expect(down.text).toContain(`tally_backlog_read_errors_total ${failedReads}`);
      expect(down.text).toContain('process_cpu_user_seconds_total');
    }
  });
});
