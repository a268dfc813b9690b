import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const FORBIDDEN =
  /\/node_modules\/(bullmq|pg|pg-[^/]+|pgpass|prisma|@prisma\/[^/]+)\/|\/src\/(db|generated|worker)\//;

/** Every module (ESM and CommonJS) that importing `files` in a fresh Node process loads. */
async function loadedBy(...files: string[]): Promise<string[]> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'test/producer/fixtures/loaded-modules.ts', ...files],
    { cwd: process.cwd(), maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as string[];
}

describe('the producer is a thin dependency', () => {
  it('loads no Prisma, pg or BullMQ through the SDK entry point', async () => {
    const loaded = await loadedBy('src/producer/index.ts');
    expect(loaded.some((url) => url.includes('/node_modules/ioredis/'))).toBe(true);
    expect(loaded.filter((url) => FORBIDDEN.test(url))).toEqual([]);
  });

  it('loads none of them through the HTTP ingest server either', async () => {
    const loaded = await loadedBy('src/producer/server.ts');
    expect(loaded.some((url) => url.includes('/node_modules/fastify/'))).toBe(true);
    expect(loaded.filter((url) => FORBIDDEN.test(url))).toEqual([]);
  });

  it('loads none of them through the ingest metrics (prom-client only)', async () => {
    const loaded = await loadedBy('src/metrics/ingest.ts', 'src/metrics/registry.ts');
    expect(loaded.some((url) => url.includes('/node_modules/prom-client/'))).toBe(true);
    expect(loaded.filter((url) => FORBIDDEN.test(url))).toEqual([]);
  });

  it('does see them when a module does load them (the probe works)', async () => {
    const loaded = await loadedBy('src/db/client.ts');
    expect(loaded.some((url) => /\/node_modules\/@prisma\//.test(url))).toBe(true);
    expect(loaded.some((url) => /\/node_modules\/pg\//.test(url))).toBe(true);
  });
});
