// `npm run entities`: the file format (every bad entry named), the command as a process
// (import, list, refusing a bad file before touching the database), and the README's
// promise: import examples/entities.json, POST the README's example report to the real
// ingest server, and a real worker counts it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEntitiesFile, EntitiesFileError } from '../../src/entities/entities.js';
import { INGEST_PATH } from '../../src/producer/server.js';
import { startIngest, useWorkerTestEnv, waitForOutcome } from '../support/pipeline.js';

const env = useWorkerTestEnv({ seed: false });
const SAMPLE = 'examples/entities.json';

function entities(args: string[], databaseUrl: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/entities/main.ts', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
  });
}

/** The example report exactly as the README shows it under "Over HTTP". */
function readmeExampleReport(): unknown {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('X-GPUStack-Auth-Token: <TALLY_GATEWAY_TOKEN>'));
  const line = section.split('\n').find((l) => l.startsWith('{ "model"'));
  if (line === undefined) throw new Error('README has no example report under its HTTP section');
  return JSON.parse(line);
}

describe('the entities file', () => {
  it('names every bad entry by its path', () => {
    const bad = JSON.stringify({
      models: [{ id: 0, name: 'x' }],
      users: [{ id: 3, name: 'alice' }],
      routez: [],
    });
    expect(() => parseEntitiesFile(bad)).toThrow(EntitiesFileError);
    expect(() => parseEntitiesFile(bad)).toThrow(/models\.0\.id/);
    expect(() => parseEntitiesFile(bad)).toThrow(/users\.0\.username/);
    expect(() => parseEntitiesFile(bad)).toThrow(/routez/);
    expect(() =>
      parseEntitiesFile('{"users":[{"id":1,"username":"a"},{"id":1,"username":"b"}]}'),
    ).toThrow(/users: id 1 appears twice/);
    expect(() => parseEntitiesFile('nope')).toThrow(/not JSON/);
  });

  it('accepts the sample file', () => {
    const file = parseEntitiesFile(readFileSync(SAMPLE, 'utf8'));
    expect(file.models.map((m) => m.name)).toContain('qwen3-8b');
  });
});

describe('npm run entities', () => {
  it('imports the sample, lists it back in the same format, and imports again without change', async () => {
    const first = entities(['import', SAMPLE], env.db.url);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(
      /imported 1 clusters, 2 models, 1 providers, 1 routes, 1 users, 1 api_keys/,
    );
    const again = entities(['import', SAMPLE], env.db.url);
    expect(again.status).toBe(0);
    expect(await env.db.prisma.model.count()).toBe(2);

    const listed = entities(['list'], env.db.url);
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(parseEntitiesFile(readFileSync(SAMPLE, 'utf8')));
    // Ids given by the file move the sequences on: a later insert gets a fresh id.
    const next = await env.db.prisma.model.create({ data: { name: 'later' } });
    expect(next.id).toBe(9);
  });

  it('refuses a bad file with the entry at fault and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-entities-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"models":[{"id":1,"name":""}]}');
    env.defer(() => rmSync(dir, { recursive: true }));
    const run = entities(['import', bad], env.db.url);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/models\.0\.name/);
    expect(await env.db.prisma.model.count()).toBe(0);
    expect(entities(['frobnicate'], env.db.url).status).toBe(2);
    expect(entities(['--help'], env.db.url).stdout).toContain('usage: npm run entities');
  });

  it("counts the README's example report once the sample file is imported", async () => {
    expect(entities(['import', SAMPLE], env.db.url).status).toBe(0);
    await env.startWorker();
    const base = await startIngest(env, 'readme');
    const answer = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-gpustack-auth-token': 'readme' },
      body: JSON.stringify(readmeExampleReport()),
    });
    expect(answer.status).toBe(200);
    const { report_ids: ids } = (await answer.json()) as { report_ids: string[] };
    expect(await waitForOutcome(env.db.prisma, ids)).toEqual({ committed: 1, rejected: 0 });
    const row = await env.db.prisma.modelUsageDetail.findFirstOrThrow();
    expect(row).toMatchObject({
      modelName: 'qwen3-8b',
      userName: 'alice',
      clusterName: 'gpu-east',
    });
  });
});
