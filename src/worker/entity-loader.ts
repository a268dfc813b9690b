// Loads the entities a page refers to: one query per entity type per page, never one
// per report (principals: one for the callers and organizations, one more for the owners
// of the API keys found, when not already loaded). Results (found or not) are cached for `ttlMs`, the stated staleness bound:
// an entity created, renamed or deleted is seen by every worker within that time.
import type { PrismaClient } from '../db/client.js';
import type {
  ApiKeyEntity,
  Entities,
  EntityRefs,
  ModelEntity,
  PrincipalEntity,
  ProviderEntity,
  RouteEntity,
} from './core/entities.js';

interface Cached<V> {
  value: V | undefined;
  expires: number;
}

class TtlCache<K, V> {
  private readonly entries = new Map<K, Cached<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** Fills `into` from the cache and returns the keys that must be fetched. */
  take(keys: K[], into: Map<K, V>): K[] {
    const missing: K[] = [];
    const now = this.now();
    for (const key of keys) {
      const hit = this.entries.get(key);
      if (hit === undefined || hit.expires <= now) missing.push(key);
      else if (hit.value !== undefined) into.set(key, hit.value);
    }
    return missing;
  }

  store(keys: K[], found: Map<K, V>): void {
    if (this.ttlMs <= 0) return;
    const expires = this.now() + this.ttlMs;
    if (this.entries.size > 100_000) this.entries.clear();
    for (const key of keys) this.entries.set(key, { value: found.get(key), expires });
  }
}

function stringList(json: unknown): string[] {
  return Array.isArray(json) ? json.filter((v): v is string => typeof v === 'string') : [];
}

function providerModelNames(json: unknown): string[] {
  if (!Array.isArray(json)) return [];
  const names: string[] = [];
  for (const m of json as unknown[]) {
    if (typeof m === 'object' && m !== null && 'name' in m && typeof m.name === 'string') {
      names.push(m.name);
    }
  }
  return names;
}

function providerType(config: unknown): string | null {
  if (typeof config === 'object' && config !== null && 'type' in config) {
    return typeof config.type === 'string' ? config.type : null;
  }
  return null;
}

export class EntityLoader {
  private readonly models: TtlCache<number, ModelEntity>;
  private readonly providers: TtlCache<number, ProviderEntity>;
  private readonly principals: TtlCache<number, PrincipalEntity>;
  private readonly apiKeys: TtlCache<string, ApiKeyEntity>;
  private readonly routes: TtlCache<number, RouteEntity>;

  constructor(
    private readonly prisma: PrismaClient,
    ttlMs: number,
    now: () => number = Date.now,
  ) {
    this.models = new TtlCache(ttlMs, now);
    this.providers = new TtlCache(ttlMs, now);
    this.principals = new TtlCache(ttlMs, now);
    this.apiKeys = new TtlCache(ttlMs, now);
    this.routes = new TtlCache(ttlMs, now);
  }

  async load(refs: EntityRefs): Promise<Entities> {
    const [models, providers, principals, apiKeys, routes] = await Promise.all([
      this.fetch(this.models, refs.modelIds, (ids) => this.loadModels(ids)),
      this.fetch(this.providers, refs.providerIds, (ids) => this.loadProviders(ids)),
      this.loadPrincipals(refs.principalIds),
      this.fetch(
        this.apiKeys,
        refs.accessKeys,
        async (keys) =>
          this.prisma.apiKey.findMany({
            where: { accessKey: { in: keys } },
            select: {
              id: true,
              name: true,
              accessKey: true,
              isCustom: true,
              ownerPrincipalId: true,
            },
          }),
        (k) => k.accessKey,
      ),
      this.fetch(this.routes, refs.routeIds, async (ids) =>
        this.prisma.modelRoute.findMany({
          where: { id: { in: ids } },
          select: { id: true, name: true, createdModelId: true, ownerPrincipalId: true },
        }),
      ),
    ]);
    // The keys' owners are consumers too: their names and kinds go on the rollups.
    const owners = [...apiKeys.values()].flatMap((k) =>
      k.ownerPrincipalId === null || principals.has(k.ownerPrincipalId) ? [] : [k.ownerPrincipalId],
    );
    if (owners.length > 0) {
      for (const [id, p] of await this.loadPrincipals([...new Set(owners)])) principals.set(id, p);
    }
    return { models, providers, principals, apiKeys, routes };
  }

  private loadPrincipals(ids: number[]): Promise<Map<number, PrincipalEntity>> {
    return this.fetch(this.principals, ids, async (missing) =>
      this.prisma.principal.findMany({
        where: { id: { in: missing } },
        select: { id: true, kind: true, name: true },
      }),
    );
  }

  private async fetch<K, V extends { id: number }>(
    cache: TtlCache<K, V>,
    keys: K[],
    query: (keys: K[]) => Promise<V[]>,
    keyOf: (v: V) => K = (v) => v.id as K,
  ): Promise<Map<K, V>> {
    const result = new Map<K, V>();
    const missing = cache.take(keys, result);
    if (missing.length === 0) return result;
    const fetched = new Map<K, V>();
    for (const row of await query(missing)) fetched.set(keyOf(row), row);
    cache.store(missing, fetched);
    for (const [k, v] of fetched) result.set(k, v);
    return result;
  }

  private async loadModels(ids: number[]): Promise<ModelEntity[]> {
    const rows = await this.prisma.model.findMany({ where: { id: { in: ids } } });
    const clusterIds = [
      ...new Set(rows.flatMap((m) => (m.clusterId === null ? [] : [m.clusterId]))),
    ];
    const clusters =
      clusterIds.length === 0
        ? []
        : await this.prisma.cluster.findMany({ where: { id: { in: clusterIds } } });
    const clusterNames = new Map(clusters.map((c) => [c.id, c.name]));
    return rows.map((m) => ({
      id: m.id,
      name: m.name,
      clusterId: m.clusterId,
      clusterName: m.clusterId === null ? null : (clusterNames.get(m.clusterId) ?? null),
      categories: stringList(m.categories),
      ownerPrincipalId: m.ownerPrincipalId,
    }));
  }

  private async loadProviders(ids: number[]): Promise<ProviderEntity[]> {
    const rows = await this.prisma.modelProvider.findMany({ where: { id: { in: ids } } });
    return rows.map((p) => ({
      id: p.id,
      name: p.name,
      type: providerType(p.config),
      modelNames: providerModelNames(p.models),
      ownerPrincipalId: p.ownerPrincipalId,
    }));
  }
}
