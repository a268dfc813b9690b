// Commits one page in ONE transaction: audit rows inserted ON CONFLICT (report_id) DO
// NOTHING; the rows actually inserted (and only those) summed into the daily rollups by
// one multi-row upsert in key order; rejected reports recorded with their reason.
// Every value travels as a bound parameter (one JSON document per page, or arrays for
// the rejections), never as SQL text.
import { Prisma } from '../generated/prisma/client.js';
import type { Pool, PoolClient } from 'pg';
import { poolOf, type PrismaClient } from '../db/client.js';
import type { Rejection } from './core/page.js';
import type { AuditRow } from './core/resolve.js';

export interface CommitResult {
  /** Audit rows inserted by this commit. */
  committed: number;
  /** Rows whose report_id already had an audit row (nothing added). */
  duplicates: number;
}

/**
 * The columns of a page, in the order `pageJson` writes each row's values and the commit's
 * `input` reads them back: each row travels as an array, not an object, so the page's JSON
 * does not repeat thirty key names per row (about 2.6 times less text to write and parse).
 */
const PAGE_COLUMNS = [
  ['reportId', 'text'],
  ['date', 'date'],
  ['modelId', 'int'],
  ['modelName', 'text'],
  ['modelRouteId', 'int'],
  ['modelRouteName', 'text'],
  ['providerId', 'int'],
  ['providerName', 'text'],
  ['providerType', 'text'],
  ['clusterId', 'int'],
  ['clusterName', 'text'],
  ['userId', 'int'],
  ['userName', 'text'],
  ['ownerPrincipalId', 'int'],
  ['consumerPrincipalId', 'int'],
  ['consumerName', 'text'],
  ['consumerPrincipalKind', 'text'],
  ['apiKeyId', 'int'],
  ['apiKeyName', 'text'],
  ['accessKey', 'text'],
  ['apiKeyIsCustom', 'bool'],
  ['operation', 'text'],
  ['completed', 'bool'],
  ['promptTokens', 'bigint'],
  ['completionTokens', 'bigint'],
  ['cachedTokens', 'bigint'],
  ['requestCount', 'bigint'],
  ['startedAt', 'float8'],
  ['completedAt', 'float8'],
  ['instant', 'float8'],
] as const satisfies readonly (readonly [keyof AuditRow, string])[];

/** Every AuditRow field is a page column: a field missing from the list fails to compile. */
const PAGE_COLUMNS_COMPLETE: [Exclude<keyof AuditRow, (typeof PAGE_COLUMNS)[number][0]>] extends [
  never,
]
  ? true
  : never = true;
void PAGE_COLUMNS_COMPLETE;

/**
 * A row's values in PAGE_COLUMNS order (test/worker/page-json.test.ts holds the two to one
 * order). Written out, not looked up by key: a lookup per column costs the page 60,000
 * generic property reads.
 */
export function pageRow(r: AuditRow): unknown[] {
  return [
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
    r.ownerPrincipalId,
    r.consumerPrincipalId,
    r.consumerName,
    r.consumerPrincipalKind,
    r.apiKeyId,
    r.apiKeyName,
    r.accessKey,
    r.apiKeyIsCustom,
    r.operation,
    r.completed,
    r.promptTokens,
    r.completionTokens,
    r.cachedTokens,
    r.requestCount,
    r.startedAt,
    r.completedAt,
    r.instant,
  ];
}

/** The page columns' AuditRow field names, in order. */
export const PAGE_KEYS: readonly (keyof AuditRow)[] = PAGE_COLUMNS.map(([key]) => key);

/** The page's rows as `input`'s columns, each named as its AuditRow field and typed. */
const PAGE_INPUT = Prisma.raw(
  PAGE_COLUMNS.map(([key, type], i) => `(e->>${i})::${type} AS "${key}"`).join(',\n        '),
);

/**
 * The page as one JSON array of rows, each row the array of its values in PAGE_COLUMNS order.
 * JSON.stringify writes a lone UTF-16 surrogate as a \udXXX escape, which PostgreSQL refuses;
 * UTF-8 has no such character, so it becomes U+FFFD (what pg does to the text itself).
 * An escape preceded by an odd run of backslashes is text, not an escape, and stays.
 */
export function pageJson(rows: readonly AuditRow[]): string {
  const json = JSON.stringify(rows.map(pageRow));
  if (!/\\u[dD][89a-fA-F]/.test(json)) return json;
  return json.replace(/(?<!\\)((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g, '$1\\ufffd');
}

/**
 * A page's audit rows as the commit sends them: sorted by report_id, as one JSON text
 * (pageJson). Made as soon as the rows are resolved, so the parsed reports and their audit
 * rows die young: what outlives them through the commit's round trips is this one string.
 */
export interface PageRows {
  json: string;
  count: number;
}

/** The rows sorted by report_id (concurrent commits then lock in one order: no deadlock). */
export function pageRows(rows: readonly AuditRow[]): PageRows {
  const sorted = [...rows].sort((a, b) =>
    a.reportId < b.reportId ? -1 : a.reportId > b.reportId ? 1 : 0,
  );
  return { json: pageJson(sorted), count: sorted.length };
}

/** Each row's values read back from the page's text, in order (isolation's rare path). */
export function pageRowValues(page: PageRows): unknown[][] {
  return JSON.parse(page.json) as unknown[][];
}

/** Rows read back by pageRowValues, as a page again (their order kept). */
export function pageRowsOf(values: readonly unknown[][]): PageRows {
  return { json: JSON.stringify(values), count: values.length };
}

/** The report_id of a row read back by pageRowValues (the first of PAGE_COLUMNS). */
export function rowReportId(values: readonly unknown[]): string {
  return String(values[0]);
}

function column<T, V>(rows: readonly T[], pick: (row: T) => V): V[] {
  return rows.map(pick);
}

/** Commits the rows (from pageRows) and rejections of one page read from `partition`'s stream. */
export async function commitPage(
  prisma: PrismaClient,
  partition: number,
  rows: PageRows,
  rejected: readonly Rejection[],
): Promise<CommitResult> {
  // The whole page travels as ONE bound JSON parameter: PostgreSQL parses it in one pass,
  // where 30 array parameters cost the client an escape call per value (60,000 a page).
  const insert = Prisma.sql`
    WITH input AS (
      -- jsonb, so each row's values are read by position without re-reading the row.
      SELECT ${PAGE_INPUT}
      FROM jsonb_array_elements(${rows.json}::jsonb) AS e
    ),
    inserted AS (
      -- Timestamps are naive UTC, as GPUStack stores them.
      INSERT INTO model_usage_details (
        report_id, date, model_id, model_name, model_route_id, model_route_name,
        provider_id, provider_name, provider_type, cluster_id, cluster_name,
        user_id, user_name, owner_principal_id, consumer_principal_id,
        api_key_id, api_key_name, access_key, api_key_is_custom, operation, completed,
        prompt_token_count, completion_token_count, prompt_cached_token_count,
        request_count, started_at, completed_at, created_at, updated_at)
      SELECT "reportId", date, "modelId", "modelName", "modelRouteId", "modelRouteName",
        "providerId", "providerName", "providerType", "clusterId", "clusterName",
        "userId", "userName", "ownerPrincipalId", "consumerPrincipalId",
        "apiKeyId", "apiKeyName", "accessKey", "apiKeyIsCustom", operation, completed,
        "promptTokens", "completionTokens", "cachedTokens", "requestCount",
        to_timestamp("startedAt" / 1000.0) AT TIME ZONE 'UTC',
        to_timestamp("completedAt" / 1000.0) AT TIME ZONE 'UTC',
        to_timestamp(instant / 1000.0) AT TIME ZONE 'UTC',
        to_timestamp(instant / 1000.0) AT TIME ZONE 'UTC'
      FROM input
      -- Retention moves old audit rows to the archive; a report_id there is committed too.
      WHERE NOT EXISTS (
        SELECT 1 FROM model_usage_details_archive a WHERE a.report_id = input."reportId")
      ON CONFLICT (report_id) DO NOTHING
      RETURNING date, model_id, model_name, provider_id, provider_name, provider_type,
        model_route_id, model_route_name, cluster_name, user_id, user_name, owner_principal_id,
        consumer_principal_id, api_key_id, api_key_name, access_key, api_key_is_custom,
        operation, prompt_token_count, completion_token_count, prompt_cached_token_count,
        request_count
    ),
    -- The consumers' names and kinds go on rollups only, so they come from the input; one
    -- page's rows resolve one principal id to one name and kind.
    consumers AS (
      SELECT "consumerPrincipalId" AS id, max("consumerName") AS name,
        max("consumerPrincipalKind") AS kind
      FROM input WHERE "consumerPrincipalId" IS NOT NULL GROUP BY "consumerPrincipalId"
    ),
    rolled_up AS (
      INSERT INTO model_usages AS u (
        date, model_id, model_name, provider_id, provider_name, provider_type, model_route_id,
        user_id, access_key, operation, consumer_principal_id,
        model_route_name, cluster_name, user_name, api_key_id, api_key_name, api_key_is_custom,
        owner_principal_id, consumer_name, consumer_principal_kind,
        prompt_token_count, completion_token_count, prompt_cached_token_count, request_count)
      SELECT date, model_id, model_name, provider_id, provider_name, provider_type,
        model_route_id, user_id, access_key, operation::operationenum, consumer_principal_id,
        max(model_route_name), max(cluster_name), max(user_name), max(api_key_id),
        max(api_key_name), bool_or(api_key_is_custom), max(owner_principal_id),
        max(c.name), max(c.kind),
        sum(prompt_token_count), sum(completion_token_count),
        sum(prompt_cached_token_count), sum(request_count)
      FROM inserted LEFT JOIN consumers c ON c.id = inserted.consumer_principal_id
      GROUP BY date, model_id, model_name, provider_id, provider_name, provider_type,
        model_route_id, user_id, access_key, operation, consumer_principal_id
      ORDER BY date, model_id, model_name, provider_id, provider_name, provider_type,
        model_route_id, user_id, access_key, operation, consumer_principal_id
      -- GPUStack's DB lookup key (model_usages_rollup_key, NULLs equal). As in GPUStack, an
      -- update adds the counts and refreshes model_route_name; the other snapshot columns
      -- keep the values the row was inserted with (docs/schema.md says why).
      ON CONFLICT (date, model_id, model_name, provider_id, provider_name, provider_type,
        model_route_id, user_id, access_key, operation, consumer_principal_id) DO UPDATE SET
        prompt_token_count = u.prompt_token_count + EXCLUDED.prompt_token_count,
        completion_token_count = u.completion_token_count + EXCLUDED.completion_token_count,
        prompt_cached_token_count = u.prompt_cached_token_count + EXCLUDED.prompt_cached_token_count,
        request_count = u.request_count + EXCLUDED.request_count,
        model_route_name = coalesce(EXCLUDED.model_route_name, u.model_route_name)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted)::int AS inserted,
           (SELECT count(*) FROM rolled_up)::int AS rollups`;

  // One row per report_id: an upsert may not touch the same row twice in one statement.
  const uniqueRejected = [...new Map(rejected.map((r) => [r.reportId, r])).values()];
  const reject = Prisma.sql`
    INSERT INTO rejected_usage_reports (report_id, reason, message, raw_report, partition)
    SELECT * FROM unnest(
      ${column(uniqueRejected, (r) => r.reportId)}::text[],
      ${column(uniqueRejected, (r) => r.reason)}::text[],
      ${column(uniqueRejected, (r) => r.message)}::text[],
      ${column(uniqueRejected, (r) => r.raw)}::text[],
      ${uniqueRejected.map(() => partition)}::int[])
    ON CONFLICT (report_id) DO UPDATE SET
      reason = EXCLUDED.reason, message = EXCLUDED.message,
      raw_report = EXCLUDED.raw_report, partition = EXCLUDED.partition, rejected_at = now()`;

  if (rows.count === 0 && uniqueRejected.length === 0) return { committed: 0, duplicates: 0 };
  const pool = poolOf(prisma);
  if (pool === undefined) throw new TypeError('commitPage needs a client made by createPrisma');
  const inserted = await commitOnPool(
    pool,
    rows.count > 0 ? insert : undefined,
    reject,
    uniqueRejected.length > 0,
  );
  return { committed: inserted, duplicates: rows.count - inserted };
}

/**
 * The advisory lock that orders page commits against retention's archive batches
 * (src/worker/archiver.ts): commits share it, an archive batch holds it alone. A commit
 * takes it before its first statement, so that statement's snapshot already sees every
 * archive batch that finished while it waited: a report_id moved to the archive at the same
 * instant as its copy is committed is then seen in the archive and counted once.
 * Two int4 keys: Tally's ("TALY"), then the lock's.
 */
export const ARCHIVE_LOCK_KEYS = '1413565529, 1';

/**
 * The statements as named prepared statements on the pool under Prisma's adapter: parsed and
 * planned once per connection instead of per page, without Prisma's query layer per call.
 * Their text is constant (every value is a parameter), as a named statement must be. They
 * run in one transaction that first takes the archive lock, shared.
 */
async function commitOnPool(
  pool: Pool,
  insert: Prisma.Sql | undefined,
  reject: Prisma.Sql,
  rejecting: boolean,
): Promise<number> {
  const run = (client: PoolClient, name: string, sql: Prisma.Sql) =>
    client.query<{ inserted: number }>({ name, text: sql.text, values: sql.values });
  const client = await pool.connect();
  // The pool listens for errors only on idle connections. A connection lost while this
  // commit holds it (a database restart) emits 'error' on the client as well as failing the
  // query; unheard, that event would end the process instead of failing this batch.
  let lost: Error | undefined;
  const onLost = (error: Error) => {
    lost = error;
  };
  client.on('error', onLost);
  let broken = false;
  try {
    // One round trip: a simple query may hold several statements when none has parameters.
    await client.query(`BEGIN; SELECT pg_advisory_xact_lock_shared(${ARCHIVE_LOCK_KEYS})`);
    const inserted =
      insert === undefined
        ? 0
        : ((await run(client, 'tally_commit_page', insert)).rows[0]?.inserted ?? 0);
    if (rejecting) await run(client, 'tally_reject_page', reject);
    await client.query('COMMIT');
    return inserted;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      broken = true; // a connection that cannot roll back is not handed out again
    });
    throw error;
  } finally {
    client.off('error', onLost);
    client.release(lost ?? broken);
  }
}

/**
 * Records one rejection found while committing, unless the report already has an audit row
 * (an earlier delivery of the same report_id committed): a rejected report never has one.
 * Returns false when the report was committed before and nothing was recorded.
 */
export async function rejectUnlessCommitted(
  prisma: PrismaClient,
  partition: number,
  entry: Rejection,
): Promise<boolean> {
  const recorded = await prisma.$executeRaw`
    INSERT INTO rejected_usage_reports (report_id, reason, message, raw_report, partition)
    SELECT ${entry.reportId}, ${entry.reason}, ${entry.message}, ${entry.raw}, ${partition}::int
    WHERE NOT EXISTS (SELECT 1 FROM model_usage_details WHERE report_id = ${entry.reportId})
      AND NOT EXISTS (
        SELECT 1 FROM model_usage_details_archive WHERE report_id = ${entry.reportId})
    ON CONFLICT (report_id) DO UPDATE SET
      reason = EXCLUDED.reason, message = EXCLUDED.message,
      raw_report = EXCLUDED.raw_report, partition = EXCLUDED.partition, rejected_at = now()`;
  return recorded > 0;
}
