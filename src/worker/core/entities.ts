// The entity data one page of reports needs for validation and snapshots, as plain
// values: loaded by src/worker/entity-loader.ts, consumed by the pure core.

export interface ModelEntity {
  id: number;
  name: string;
  clusterId: number | null;
  /** The name of the model's cluster, snapshotted onto rows as cluster_name. */
  clusterName: string | null;
  categories: string[];
}

export interface ProviderEntity {
  id: number;
  name: string;
  type: string | null;
  /** Names of the models this provider offers. */
  modelNames: string[];
}

export interface UserEntity {
  id: number;
  username: string;
}

export interface ApiKeyEntity {
  id: number;
  name: string;
  accessKey: string;
  isCustom: boolean;
}

export interface RouteEntity {
  id: number;
  name: string;
}

export interface Entities {
  models: ReadonlyMap<number, ModelEntity>;
  providers: ReadonlyMap<number, ProviderEntity>;
  users: ReadonlyMap<number, UserEntity>;
  apiKeys: ReadonlyMap<string, ApiKeyEntity>;
  routes: ReadonlyMap<number, RouteEntity>;
}

/** The entity keys a page of reports refers to (each list without repeats). */
export interface EntityRefs {
  modelIds: number[];
  providerIds: number[];
  userIds: number[];
  accessKeys: string[];
  routeIds: number[];
}

interface Referring {
  model_id: number | null;
  provider_id: number | null;
  user_id: number | null;
  access_key: string | null;
  model_route_id: number | null;
}

export function collectRefs(reports: Iterable<Referring>): EntityRefs {
  const models = new Set<number>();
  const providers = new Set<number>();
  const users = new Set<number>();
  const keys = new Set<string>();
  const routes = new Set<number>();
  for (const r of reports) {
    if (r.model_id !== null) models.add(r.model_id);
    if (r.provider_id !== null) providers.add(r.provider_id);
    if (r.user_id !== null) users.add(r.user_id);
    if (r.access_key !== null) keys.add(r.access_key);
    if (r.model_route_id !== null) routes.add(r.model_route_id);
  }
  return {
    modelIds: [...models],
    providerIds: [...providers],
    userIds: [...users],
    accessKeys: [...keys],
    routeIds: [...routes],
  };
}
