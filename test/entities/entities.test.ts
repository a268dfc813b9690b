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
      principals: [{ id: 3, kind: 'user', name: 'alice' }],
      routes: [{ id: 1, name: 'chat' }],
      routez: [],
    });
    expect(() => parseEntitiesFile(bad)).toThrow(EntitiesFileError);
    expect(() => parseEntitiesFile(bad)).toThrow(/models\.0\.id/);
    // GPUStack's principals.kind holds the enum names (USER, ORG, GROUP, SYSTEM).
    expect(() => parseEntitiesFile(bad)).toThrow(/principals\.0\.kind/);
    // A route has an owner in GPUStack v2.2 (model_routes.owner_principal_id NOT NULL).
    expect(() => parseEntitiesFile(bad)).toThrow(/routes\.0\.owner_principal_id/);
    expect(() => parseEntitiesFile(bad)).toThrow(/routez/);
    expect(() =>
      parseEntitiesFile(
        '{"principals":[{"id":1,"kind":"USER","name":"a"},{"id":1,"kind":"ORG","name":"b"}]}',
      ),
    ).toThrow(/principals: id 1 appears twice/);
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
      /imported 1 clusters, 3 principals, 2 models, 1 providers, 2 routes, 1 api_keys/,
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
      modelRouteName: 'chat-default',
      ownerPrincipalId: 1,
      consumerPrincipalId: 2,
      completed: true,
    });
    // alice's key belongs to the acme Org: acme consumed it.
    const rollup = await env.db.prisma.modelUsage.findFirstOrThrow();
    expect(rollup).toMatchObject({ consumerName: 'acme', consumerPrincipalKind: 'org' });
  });
});
