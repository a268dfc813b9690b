// Turns one validated report into an audit row, or a rejection with its reason:
// validation, estimation, date, snapshot and token resolution. Pure: must never do I/O
// or read a clock.
import type { Operation, StoredReport } from '../../contract/report.js';
import { isLoraOfModel, resolveConsumer, resolveOwner } from './consumer.js';
import type { Entities } from './entities.js';
import { estimateTokens, type EstimationRates } from './estimate.js';
import { calendarDate, reportInstant } from './when.js';

export const REJECT_REASONS = [
  'invalid_report',
  'empty_model',
  'missing_model_and_provider',
  'unknown_model',
  'model_name_mismatch',
  'unknown_provider',
  'model_not_offered_by_provider',
  'unknown_user',
  // Found by the database, not the core: see src/worker/isolation.ts.
  'rollup_overflow',
  'unstorable_report',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** One model_usage_details row; its rollup key and counts feed model_usages. */
export interface AuditRow {
  reportId: string;
  date: string;
  modelId: number | null;
  modelName: string;
  modelRouteId: number | null;
  modelRouteName: string | null;
  providerId: number | null;
  providerName: string | null;
  providerType: string | null;
  clusterId: number | null;
  clusterName: string | null;
  userId: number | null;
  userName: string | null;
  /** The owner of the consumed model (or provider, else route). */
  ownerPrincipalId: number | null;
  /** The tenant that consumed: see resolveConsumer. */
  consumerPrincipalId: number | null;
  /** Rollups only: the consumer's name and lowercase kind. */
  consumerName: string | null;
  consumerPrincipalKind: string | null;
  apiKeyId: number | null;
  apiKeyName: string | null;
  accessKey: string | null;
  apiKeyIsCustom: boolean | null;
  /** GPUStack's OperationEnum member name (CHAT_COMPLETION), as both tables store it. */
  operation: string | null;
  /** The report's `completed`: false means the tokens may be estimates. */
  completed: boolean;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  requestCount: number;
  startedAt: number | null;
  completedAt: number | null;
  /** The report's instant: created_at and updated_at of the audit row. */
  instant: number;
}

/** The settings resolution takes from configuration: plain data, the same for every report. */
export interface ResolveSettings extends EstimationRates {
  /** The rollup time zone (IANA name): a report's date is its instant's date there. */
  timeZone: string;
}

/** The settings plus what differs per report. */
export interface ResolveContext extends ResolveSettings {
  /** Processing time (UnixMilli), the instant of a report with no timestamps. */
  processedAt: number;
}

export type Resolution =
  { ok: true; row: AuditRow } | { ok: false; reason: RejectReason; message: string };

const TOTAL_IS_PROMPT_CATEGORIES = new Set(['embedding', 'reranker']);

/** The enum member name GPUStack stores for an operation value. */
export function operationName(operation: Operation | null): string | null {
  return operation === null ? null : operation.toUpperCase();
}

function reject(reason: RejectReason, message: string): Resolution {
  return { ok: false, reason, message };
}

export function resolveReport(
  report: StoredReport,
  entities: Entities,
  ctx: ResolveContext,
): Resolution {
  if (report.model === '') {
    return reject('empty_model', 'the report names no model (model is empty)');
  }
  if (report.model_id === null && report.provider_id === null) {
    return reject('missing_model_and_provider', 'report has neither model_id nor provider_id');
  }
  const model = report.model_id === null ? undefined : entities.models.get(report.model_id);
  const route =
    report.model_route_id === null ? undefined : entities.routes.get(report.model_route_id);
  if (report.model_id !== null) {
    if (model === undefined)
      return reject('unknown_model', `model_id ${report.model_id} not found`);
    // A LoRA adapter is reported under its route's name and booked under its base model.
    if (model.name !== report.model && !isLoraOfModel(report.model, model, route)) {
      return reject(
        'model_name_mismatch',
        `model_id ${model.id} is named "${model.name}", report says "${report.model}"` +
          (report.model_route_id === null
            ? ''
            : `; model_route_id ${report.model_route_id} is no LoRA route of it named so`),
      );
    }
  }
  const provider =
    report.provider_id === null ? undefined : entities.providers.get(report.provider_id);
  if (report.provider_id !== null) {
    if (provider === undefined) {
      return reject('unknown_provider', `provider_id ${report.provider_id} not found`);
    }
    if (!provider.modelNames.includes(report.model)) {
      return reject(
        'model_not_offered_by_provider',
        `provider_id ${provider.id} does not offer model "${report.model}"`,
      );
    }
  }
  const user = report.user_id === null ? undefined : entities.principals.get(report.user_id);
  if (report.user_id !== null && user === undefined) {
    return reject('unknown_user', `user_id ${report.user_id} not found`);
  }

  const tokens = estimateTokens(report, ctx);
  const totalIsPrompt = model?.categories.some((c) => TOTAL_IS_PROMPT_CATEGORIES.has(c)) ?? false;
  const promptTokens =
    totalIsPrompt && tokens.total > tokens.input + tokens.output
      ? tokens.total - tokens.output
      : tokens.input;

  const apiKey = report.access_key === null ? undefined : entities.apiKeys.get(report.access_key);
  const consumer = resolveConsumer(apiKey, report.organization_id, user, entities.principals);
  const instant = reportInstant(report, ctx.processedAt);

  return {
    ok: true,
    row: {
      reportId: report.report_id,
      date: calendarDate(instant, ctx.timeZone),
      modelId: model?.id ?? report.model_id,
      modelName: model?.name ?? report.model,
      modelRouteId: report.model_route_id,
      modelRouteName: route?.name ?? null,
      providerId: provider?.id ?? null,
      providerName: provider?.name ?? null,
      providerType: provider?.type ?? null,
      clusterId: report.cluster_id ?? model?.clusterId ?? null,
      clusterName: model?.clusterName ?? null,
      userId: user?.id ?? null,
      userName: user?.name ?? null,
      ownerPrincipalId: resolveOwner(model, provider, route),
      consumerPrincipalId: consumer.principalId,
      consumerName: consumer.name,
      consumerPrincipalKind: consumer.kind,
      apiKeyId: apiKey?.id ?? null,
      apiKeyName: apiKey?.name ?? null,
      accessKey: report.access_key,
      apiKeyIsCustom: apiKey?.isCustom ?? null,
      operation: operationName(report.operation),
      completed: report.completed,
      promptTokens,
      completionTokens: tokens.output,
      cachedTokens: report.input_cached_token,
      requestCount: report.request_count,
      startedAt: report.started_at,
      completedAt: report.completed_at,
      instant,
    },
  };
}
