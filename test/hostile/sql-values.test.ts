// Every value reaches PostgreSQL as a bound parameter: entity names, model names, access
// keys and provider names full of quotes, backslashes, unicode and SQL fragments go in
// through the HTTP ingest, through a real worker, and come back from the tables unchanged.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageProducer } from '../../src/producer/index.js';
import {
  buildIngestServer,
  INGEST_PATH,
  TOKEN_HEADER,
  type IngestServer,
} from '../../src/producer/server.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import { assertRollupsMatchAudit } from '../support/invariants.js';
import { startTestWorker, waitForOutcome } from '../support/pipeline.js';
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
} from '../support/services.js';

const TOKEN = 'sql-token';
const NASTY = [
  `qwen'; DROP TABLE model_usages; --`,
  `"quoted" \\ back\\slash \\' \\\\`,
  `$$ dollar $$ $tag$ E'\\x41' %s %d ? $1`,
  `Ω≈ç√ 模型 🤖 \u202e rtl \u200b zero-width`,
  `'); DELETE FROM model_usage_details WHERE ('1'='1`,
  `\\N \t tab \r\n newline`,
];

let db: TestDatabase;
let r: TestRedis;
let worker: RunningWorker;
let producer: UsageProducer;
let server: IngestServer;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createTestRedis();
  await db.prisma.cluster.create({ data: { id: 1, name: NASTY[1] as string } });
  await db.prisma.model.createMany({
    data: NASTY.map((name, i) => ({ id: i + 1, name, clusterId: 1, categories: ['llm'] })),
  });
  await db.prisma.modelProvider.create({
    data: {
      id: 1,
      name: NASTY[0] as string,
      models: NASTY.map((name) => ({ name })),
      config: { type: NASTY[2] },
    },
  });
  await db.prisma.principal.create({ data: { id: 1, kind: 'USER', name: NASTY[4] as string } });
  await db.prisma.apiKey.createMany({
    data: NASTY.map((key, i) => ({
      id: i + 1,
      name: `key ${key}`,
      accessKey: key,
      isCustom: i % 2 === 0,
      userId: 1,
    })),
  });
  worker = await startTestWorker(db.prisma, r.prefix);
  producer = new UsageProducer({ redis: r.redis, keyPrefix: r.prefix, partitions: 2 });
  server = buildIngestServer({ producer, gatewayToken: TOKEN, logger: pino({ level: 'silent' }) });
  base = await server.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await server?.close();
  await producer?.close();
  await worker?.close();
  await r?.cleanup();
  await db?.drop();
});

describe('hostile strings through HTTP to PostgreSQL', () => {
  it('stores and reads back every string unchanged', async () => {
    const reports = NASTY.flatMap((name, i) => [
      // A model row, by id.
      {
        model: name,
        model_id: i + 1,
        user_id: 1,
        access_key: name,
        input_token: 10 + i,
        completed: true,
        report_id: `sql-m-${i}'--`,
      },
      // A provider's model without a model row, by provider.
      {
        model: name,
        provider_id: 1,
        user_id: 1,
        access_key: name,
        input_token: 1,
        completed: true,
        report_id: `sql-p-${i}\\"`,
      },
    ]);
    const response = await fetch(`${base}${INGEST_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: TOKEN },
      body: JSON.stringify(reports),
    });
    expect(response.status).toBe(200);
    const ids = ((await response.json()) as { report_ids: string[] }).report_ids;
    expect(await waitForOutcome(db.prisma, ids)).toEqual({ committed: ids.length, rejected: 0 });

    const rows = await db.prisma.modelUsageDetail.findMany({ orderBy: { reportId: 'asc' } });
    for (const [i, name] of NASTY.entries()) {
      const byModel = rows.find((row) => row.reportId === `sql-m-${i}'--`);
      expect(byModel).toMatchObject({
        modelName: name,
        accessKey: name,
        apiKeyName: `key ${name}`,
        userName: NASTY[4],
        clusterName: NASTY[1],
      });
      const byProvider = rows.find((row) => row.reportId === `sql-p-${i}\\"`);
      expect(byProvider).toMatchObject({
        modelName: name,
        providerName: NASTY[0],
        providerType: NASTY[2],
        accessKey: name,
      });
    }
    const rollups = await db.prisma.modelUsage.findMany();
    expect(new Set(rollups.map((u) => u.modelName))).toEqual(new Set(NASTY));
    expect(new Set(rollups.map((u) => u.accessKey))).toEqual(new Set(NASTY));
    // Nothing was dropped or deleted by a fragment, and the counts add up.
    expect(await db.prisma.modelUsageDetail.count()).toBe(NASTY.length * 2);
    await assertRollupsMatchAudit(db.prisma);
  });
});
