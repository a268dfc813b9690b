// The entity data one page of reports needs for validation and snapshots, as plain
// values: loaded by src/worker/entity-loader.ts, consumed by the pure core.
import { organizationPrincipalId } from './consumer.js';

export interface ModelEntity {
  id: number;
  name: string;
  clusterId: number | null;
  /** The name of the model's cluster, snapshotted onto rows as cluster_name. */
  clusterName: string | null;
  categories: string[];
  ownerPrincipalId: number | null;
}

export interface ProviderEntity {
  id: number;
  name: string;
  type: string | null;
  /** Names of the models this provider offers. */
  modelNames: string[];
  ownerPrincipalId: number | null;
}

/** GPUStack's principal kinds, as principals.kind stores them. */
export type PrincipalKind = 'USER' | 'ORG' | 'GROUP' | 'SYSTEM';

/** A user, organization, group or system principal (GPUStack's `principals`). */
export interface PrincipalEntity {
  id: number;
  kind: PrincipalKind;
  name: string | null;
}

export interface ApiKeyEntity {
  id: number;
  name: string;
  accessKey: string;
  isCustom: boolean;
  /** The tenant the key consumes for; NULL for an admin's "All"-mode key. */
  ownerPrincipalId: number | null;
}

export interface RouteEntity {
  id: number;
  name: string;
  /** The base model of an auto-created or LoRA route. */
  createdModelId: number | null;
  ownerPrincipalId: number;
}

export interface Entities {
  models: ReadonlyMap<number, ModelEntity>;
  providers: ReadonlyMap<number, ProviderEntity>;
  /** Callers (user_id), API key owners and reported organizations, by id. */
  principals: ReadonlyMap<number, PrincipalEntity>;
  apiKeys: ReadonlyMap<string, ApiKeyEntity>;
  routes: ReadonlyMap<number, RouteEntity>;
}

/**
 * The entity keys a page of reports refers to (each list without repeats). Principals are
 * the callers and the numeric organization ids; the owners of the API keys found are loaded
 * after the keys (src/worker/entity-loader.ts).
 */
export interface EntityRefs {
  modelIds: number[];
  providerIds: number[];
  principalIds: number[];
  accessKeys: string[];
  routeIds: number[];
}

interface Referring {
  model_id: number | null;
  provider_id: number | null;
  user_id: number | null;
  access_key: string | null;
  model_route_id: number | null;
  organization_id: string | null;
}

export function collectRefs(reports: Iterable<Referring>): EntityRefs {
  const models = new Set<number>();
  const providers = new Set<number>();
  const principals = new Set<number>();
  const keys = new Set<string>();
  const routes = new Set<number>();
  for (const r of reports) {
    if (r.model_id !== null) models.add(r.model_id);
    if (r.provider_id !== null) providers.add(r.provider_id);
    if (r.user_id !== null) principals.add(r.user_id);
    const org = organizationPrincipalId(r.organization_id);
    if (org !== null) principals.add(org);
    if (r.access_key !== null) keys.add(r.access_key);
    if (r.model_route_id !== null) routes.add(r.model_route_id);
  }
  return {
    modelIds: [...models],
    providerIds: [...providers],
    principalIds: [...principals],
    accessKeys: [...keys],
    routeIds: [...routes],
  };
}
