// The boundaries that keep the pieces small: the SDK and the ingest server never load
// Prisma, pg or BullMQ (proved in a fresh process), and the pure core imports nothing but
// the contract (read from its source, type-only imports included).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const FORBIDDEN =
  /\/node_modules\/(bullmq|pg|pg-[^/]+|pgpass|prisma|@prisma\/[^/]+)\/|\/src\/(db|generated|worker)\//;

/** Every module (ESM and CommonJS) that importing `targets` in a fresh Node process loads. */
async function loadedBy(...targets: string[]): Promise<string[]> {
  const { stdout } = await run(
    process.execPath,
    // The condition lets `tally/producer` resolve to source, as vitest.config.ts does.
    [
      '-C',
      'tally-source',
      '--import',
      'tsx',
      'test/producer/fixtures/loaded-modules.ts',
      ...targets,
    ],
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

  it('loads none of them through the package entry `tally/producer` either', async () => {
    const loaded = await loadedBy('tally/producer');
    expect(loaded.some((url) => url.endsWith('/src/producer/index.ts'))).toBe(true);
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

const CORE = 'src/worker/core';
const CONTRACT = 'src/contract';

/** What each import of `file` names: a node built-in, a package, or a repo path. */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map(({ fileName }) =>
    fileName.startsWith('.')
      ? relative(process.cwd(), resolve(dirname(file), fileName.replace(/\.js$/, '.ts')))
      : fileName,
  );
}

/** Imports a core file may have: the contract, other core files, node built-ins. */
function outsideCore(file: string): string[] {
  return importsOf(file).filter(
    (target) =>
      !target.startsWith('node:') &&
      !target.startsWith(`${CORE}/`) &&
      !target.startsWith(`${CONTRACT}/`),
  );
}

describe('the pure core imports nothing but the contract', () => {
  const coreFiles = readdirSync(CORE)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(CORE, f));

  it.each(coreFiles)('%s', (file) => {
    expect(outsideCore(file)).toEqual([]);
  });

  // ajv compiles the zod schema into a plain function (src/contract/compile.ts); no I/O.
  it('and the contract imports only zod, ajv and node built-ins', () => {
    const contract = readdirSync(CONTRACT).map((f) => join(CONTRACT, f));
    const outside = contract
      .flatMap(importsOf)
      .filter(
        (target) =>
          target !== 'zod' &&
          target !== 'ajv' &&
          !target.startsWith('node:') &&
          !target.startsWith(`${CONTRACT}/`),
      );
    expect(outside).toEqual([]);
  });

  it('would notice an import from outside (the check works)', () => {
    expect(outsideCore('src/worker/batch-processor.ts')).toEqual(
      expect.arrayContaining(['bullmq', 'src/db/client.ts', 'src/worker/stream.ts']),
    );
  });
});
