// Baseline (a): the seed's write algorithm (GPUStack's usage flush) on the same data, in
// bench/ only. It reads, parses, validates and resolves exactly as the worker does (same
// src/ functions), then writes the way the seed does: per rollup key one lookup, then an
// UPDATE or an INSERT; per report one INSERT of its audit row; one transaction per page.
// It uses a plain pg client (no ORM), which flatters the baseline.
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { streamKey } from '../src/contract/keys.js';
import { ROLLUP_KEY } from '../src/db/attach-steps.js';
import type { PrismaClient } from '../src/db/client.js';
import { collectRefs } from '../src/worker/core/entities.js';
import { parseEntries, resolveEntries } from '../src/worker/core/page.js';
import type { AuditRow } from '../src/worker/core/resolve.js';
import { EntityLoader } from '../src/worker/entity-loader.js';
import { deleteEntries, readWindowPage } from '../src/worker/stream.js';

/** GPUStack's rollup lookup key, as Tally's unique index has it. */
const KEY_COLUMNS = ROLLUP_KEY;

function keyOf(r: AuditRow): unknown[] {
  return [
    r.date,
    r.modelId,
    r.modelName,
    r.providerId,
    r.providerName,
    r.providerType,
    r.modelRouteId,
    r.userId,
    r.accessKey,
    r.operation,
    r.consumerPrincipalId,
  ];
}

// Naive UTC, as GPUStack stores timestamps: the text's offset is ignored by a TIMESTAMP column.
const toTs = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

async function writeLikeTheSeed(client: pg.PoolClient, rows: AuditRow[]): Promise<void> {
  const groups = new Map<string, { row: AuditRow; p: number; c: number; k: number; n: number }>();
  for (const r of rows) {
    const id = JSON.stringify(keyOf(r));
    const g = groups.get(id);
    if (g === undefined) {
      groups.set(id, {
        row: r,
        p: r.promptTokens,
        c: r.completionTokens,
        k: r.cachedTokens,
        n: r.requestCount,
      });
    } else {
      g.p += r.promptTokens;
      g.c += r.completionTokens;
      g.k += r.cachedTokens;
      g.n += r.requestCount;
    }
  }
  const where = KEY_COLUMNS.map((c, i) =>
    c === 'operation'
      ? `${c} IS NOT DISTINCT FROM $${i + 1}::operationenum`
      : `${c} IS NOT DISTINCT FROM $${i + 1}`,
  ).join(' AND ');
  for (const g of groups.values()) {
    const key = keyOf(g.row);
    const found = await client.query<{ id: string }>(
      `SELECT id FROM model_usages WHERE ${where} LIMIT 1`,
      key,
    );
    const id = found.rows[0]?.id;
    if (id !== undefined) {
      await client.query(
        `UPDATE model_usages SET prompt_token_count = prompt_token_count + $2,
           completion_token_count = completion_token_count + $3,
           prompt_cached_token_count = prompt_cached_token_count + $4,
           request_count = request_count + $5,
           model_route_name = coalesce($6, model_route_name) WHERE id = $1`,
        [id, g.p, g.c, g.k, g.n, g.row.modelRouteName],
      );
    } else {
      const r = g.row;
      await client.query(
        `INSERT INTO model_usages (${KEY_COLUMNS.join(', ')}, cluster_name, user_name, api_key_id,
           api_key_name, api_key_is_custom, model_route_name, owner_principal_id, consumer_name,
           consumer_principal_kind, prompt_token_count, completion_token_count,
           prompt_cached_token_count, request_count)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10::operationenum,$11,$12,$13,$14,$15,$16,$17,$18,
           $19,$20,$21,$22,$23,$24)`,
        [
          ...key,
          r.clusterName,
          r.userName,
          r.apiKeyId,
          r.apiKeyName,
          r.apiKeyIsCustom,
          r.modelRouteName,
          r.ownerPrincipalId,
          r.consumerName,
          r.consumerPrincipalKind,
          g.p,
          g.c,
          g.k,
          g.n,
        ],
      );
    }
  }
  for (const r of rows) {
    await client.query(
      `INSERT INTO model_usage_details (report_id, date, model_id, model_name, model_route_id,
         model_route_name, provider_id, provider_name, provider_type, cluster_id, cluster_name,
         user_id, user_name, api_key_id, api_key_name, access_key, api_key_is_custom, operation,
         prompt_token_count, completion_token_count, prompt_cached_token_count, request_count,
         started_at, completed_at, created_at, updated_at, owner_principal_id,
         consumer_principal_id, completed)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$25,
         $26,$27,$28)`,
      [
        r.reportId,
        r.date,
        r.modelId,
        r.modelName,
        r.modelRouteId,
        r.modelRouteName,
        r.providerId,
        r.providerName,
        r.providerType,
        r.clusterId,
        r.clusterName,
        r.userId,
        r.userName,
        r.apiKeyId,
        r.apiKeyName,
        r.accessKey,
        r.apiKeyIsCustom,
        r.operation,
        r.promptTokens,
        r.completionTokens,
        r.cachedTokens,
        r.requestCount,
        toTs(r.startedAt),
        toTs(r.completedAt),
        toTs(r.instant),
        r.ownerPrincipalId,
        r.consumerPrincipalId,
        r.completed,
      ],
    );
  }
}

/** Drains the partition streams the seed's way; returns the reports written (rows + rejected). */
export async function drainLikeTheSeed(deps: {
  redis: Redis;
  pool: pg.Pool;
  prisma: PrismaClient;
  prefix: string;
  partitions: number;
  pageSize: number;
}): Promise<number> {
  const entities = new EntityLoader(deps.prisma, 5_000);
  const options = { timeZone: 'UTC', bytesPerInputToken: 4, tokensPerOutputChunk: 1 };
  let handled = 0;
  for (let partition = 0; partition < deps.partitions; partition += 1) {
    const key = streamKey(deps.prefix, partition);
    for (;;) {
      // Every window at once: the seed flushes whatever it holds.
      const entries = await readWindowPage(
        deps.redis,
        key,
        0,
        Number.MAX_SAFE_INTEGER,
        deps.pageSize,
      );
      if (entries.length === 0) break;
      const { parsed } = parseEntries(entries, partition);
      const loaded = await entities.load(collectRefs(parsed.map((p) => p.report)));
      const { rows } = resolveEntries(parsed, loaded, options);
      const client = await deps.pool.connect();
      try {
        await client.query('BEGIN');
        await writeLikeTheSeed(client, rows);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
      await deleteEntries(
        deps.redis,
        key,
        entries.map((e) => e.id),
      );
      handled += entries.length;
    }
  }
  return handled;
}
