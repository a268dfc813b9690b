// Invariant 2 as one SQL query: for every rollup key, the rollup's counts equal the sums
// over its audit rows, live plus archived (retention moves old audit rows into
// model_usage_details_archive; the rollups keep them), and no audit row lacks its rollup.
// The key is model_usages_rollup_key's. Used by the demo, the benchmarks and the tests;
// read-only.
import type { PrismaClient } from './client.js';

export interface RollupMismatch {
  key: string;
  rollup: string;
  audit: string;
}

export async function rollupMismatches(prisma: PrismaClient): Promise<RollupMismatch[]> {
  return prisma.$queryRaw<RollupMismatch[]>`
    WITH audit_rows AS (
      SELECT date, model_id, model_name, provider_id, provider_name, provider_type,
             model_route_id, user_id, access_key, operation, consumer_principal_id,
             prompt_token_count, completion_token_count, prompt_cached_token_count, request_count
      FROM model_usage_details
      UNION ALL
      SELECT date, model_id, model_name, provider_id, provider_name, provider_type,
             model_route_id, user_id, access_key, operation, consumer_principal_id,
             prompt_token_count, completion_token_count, prompt_cached_token_count, request_count
      FROM model_usage_details_archive
    ),
    audit AS (
      SELECT date, model_id, model_name, provider_id, provider_name, provider_type,
             model_route_id, user_id, access_key, operation, consumer_principal_id,
             sum(prompt_token_count) AS p, sum(completion_token_count) AS c,
             sum(prompt_cached_token_count) AS k, sum(request_count) AS r
      FROM audit_rows
      GROUP BY date, model_id, model_name, provider_id, provider_name, provider_type,
               model_route_id, user_id, access_key, operation, consumer_principal_id
    )
    SELECT concat_ws('|', coalesce(u.date, a.date)::text, coalesce(u.model_name, a.model_name),
                     'route=' || coalesce(u.model_route_id, a.model_route_id)::text,
                     'user=' || coalesce(u.user_id, a.user_id)::text,
                     'consumer=' || coalesce(u.consumer_principal_id, a.consumer_principal_id)::text,
                     coalesce(u.operation::text, a.operation)) AS key,
           concat_ws('/', u.prompt_token_count, u.completion_token_count,
                     u.prompt_cached_token_count, u.request_count) AS rollup,
           concat_ws('/', a.p, a.c, a.k, a.r) AS audit
    FROM model_usages u
    FULL JOIN audit a
      ON  u.date = a.date
      AND u.model_id IS NOT DISTINCT FROM a.model_id
      AND u.model_name = a.model_name
      AND u.provider_id IS NOT DISTINCT FROM a.provider_id
      AND u.provider_name IS NOT DISTINCT FROM a.provider_name
      AND u.provider_type IS NOT DISTINCT FROM a.provider_type
      AND u.model_route_id IS NOT DISTINCT FROM a.model_route_id
      AND u.user_id IS NOT DISTINCT FROM a.user_id
      AND u.access_key IS NOT DISTINCT FROM a.access_key
      AND u.operation::text IS NOT DISTINCT FROM a.operation
      AND u.consumer_principal_id IS NOT DISTINCT FROM a.consumer_principal_id
    WHERE u.id IS NULL OR a.date IS NULL
       OR u.prompt_token_count <> a.p OR u.completion_token_count <> a.c
       OR u.prompt_cached_token_count <> a.k OR u.request_count <> a.r`;
}
