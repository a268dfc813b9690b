// The entities reports refer to (clusters, principals, models, providers, routes, API
// keys), as a standalone Tally keeps them: read from a JSON file with GPUStack's field names,
// upserted by id in one transaction, and listed back. Next to GPUStack, GPUStack owns
// these tables and this module is not needed. Must never delete an entity, nor leave a
// file half imported.
import { z } from 'zod';
import type { PrismaClient } from '../db/client.js';

const id = z.number().int().min(1).max(2_147_483_647);
const name = z.string().trim().min(1).max(255);

const owner = id.nullable().default(null);

export const entitiesFileSchema = z
  .object({
    clusters: z.array(z.object({ id, name }).strict()).default([]),
    // GPUStack's principals: users, organizations (the platform Org is ORG 'default'), groups.
    principals: z
      .array(
        z
          .object({
            id,
            kind: z.enum(['USER', 'ORG', 'GROUP', 'SYSTEM']),
            name,
            display_name: name.nullable().default(null),
          })
          .strict(),
      )
      .default([]),
    models: z
      .array(
        z
          .object({
            id,
            name,
            cluster_id: id.nullable().default(null),
            categories: z.array(z.string().min(1)).default([]),
            owner_principal_id: owner,
          })
          .strict(),
      )
      .default([]),
    providers: z
      .array(
        z
          .object({
            id,
            name,
            type: name,
            models: z.array(name).default([]),
            owner_principal_id: owner,
          })
          .strict(),
      )
      .default([]),
    routes: z
      .array(
        z
          .object({
            id,
            name,
            // The base model of an auto-created or LoRA route.
            created_model_id: id.nullable().default(null),
            owner_principal_id: id,
          })
          .strict(),
      )
      .default([]),
    api_keys: z
      .array(
        z
          .object({
            id,
            name,
            access_key: name,
            is_custom: z.boolean().default(false),
            user_id: id,
            // null: an admin's "All"-mode key; usage is then the caller's own.
            owner_principal_id: owner,
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

export type EntitiesFile = z.infer<typeof entitiesFileSchema>;
export type EntityKind = keyof EntitiesFile;
/** In import order: principals before the routes and keys that refer to them. */
export const ENTITY_KINDS: readonly EntityKind[] = [
  'clusters',
  'principals',
  'models',
  'providers',
  'routes',
  'api_keys',
];

/** A file that is not an entities file; the message names every bad entry by its path. */
export class EntitiesFileError extends Error {
  override readonly name = 'EntitiesFileError';
}

/** Parses an entities file's text. Throws EntitiesFileError naming each bad entry. */
export function parseEntitiesFile(text: string): EntitiesFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new EntitiesFileError(`not JSON: ${(error as Error).message}`);
  }
  const parsed = entitiesFileSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new EntitiesFileError(`not an entities file:\n${lines.join('\n')}`);
  }
  const file = parsed.data;
  for (const kind of ENTITY_KINDS) {
    const seen = new Set<number>();
    for (const entry of file[kind]) {
      if (seen.has(entry.id)) throw new EntitiesFileError(`${kind}: id ${entry.id} appears twice`);
      seen.add(entry.id);
    }
  }
  const keys = new Set<string>();
  for (const key of file.api_keys) {
    if (keys.has(key.access_key)) {
      throw new EntitiesFileError(`api_keys: access_key of id ${key.id} appears twice`);
    }
    keys.add(key.access_key);
  }
  return file;
}

export type ImportCounts = Record<EntityKind, number>;

/** Upserts every entry by id, in one transaction: all of the file or none of it. */
export async function importEntities(
  prisma: PrismaClient,
  file: EntitiesFile,
): Promise<ImportCounts> {
  await prisma.$transaction(async (tx) => {
    for (const c of file.clusters) {
      await tx.cluster.upsert({ where: { id: c.id }, create: c, update: { name: c.name } });
    }
    for (const p of file.principals) {
      const data = { kind: p.kind, name: p.name, displayName: p.display_name };
      await tx.principal.upsert({
        where: { id: p.id },
        create: { id: p.id, ...data },
        update: data,
      });
    }
    for (const m of file.models) {
      const data = {
        name: m.name,
        clusterId: m.cluster_id,
        categories: m.categories,
        ownerPrincipalId: m.owner_principal_id,
      };
      await tx.model.upsert({ where: { id: m.id }, create: { id: m.id, ...data }, update: data });
    }
    for (const p of file.providers) {
      const data = {
        name: p.name,
        models: p.models.map((n) => ({ name: n })),
        config: { type: p.type },
        ownerPrincipalId: p.owner_principal_id,
      };
      await tx.modelProvider.upsert({
        where: { id: p.id },
        create: { id: p.id, ...data },
        update: data,
      });
    }
    for (const r of file.routes) {
      const data = {
        name: r.name,
        createdModelId: r.created_model_id,
        ownerPrincipalId: r.owner_principal_id,
      };
      await tx.modelRoute.upsert({
        where: { id: r.id },
        create: { id: r.id, ...data },
        update: data,
      });
    }
    for (const k of file.api_keys) {
      const data = {
        name: k.name,
        accessKey: k.access_key,
        isCustom: k.is_custom,
        userId: k.user_id,
        ownerPrincipalId: k.owner_principal_id,
      };
      await tx.apiKey.upsert({ where: { id: k.id }, create: { id: k.id, ...data }, update: data });
    }
    // Explicit ids leave the id sequences behind; move them past the highest id.
    for (const table of [
      'clusters',
      'principals',
      'models',
      'model_providers',
      'model_routes',
      'api_keys',
    ]) {
      await tx.$executeRawUnsafe(
        `SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT max(id) FROM ${table}), 1))`,
      );
    }
  });
  return Object.fromEntries(ENTITY_KINDS.map((k) => [k, file[k].length])) as ImportCounts;
}

/** Every entity, in the file's shape (so `list` output can be edited and imported again). */
export async function listEntities(prisma: PrismaClient): Promise<EntitiesFile> {
  const byId = { orderBy: { id: 'asc' as const } };
  const [clusters, principals, models, providers, routes, apiKeys] = await Promise.all([
    prisma.cluster.findMany(byId),
    // A principal without a name (GPUStack allows one) cannot be written back as an entry.
    prisma.principal.findMany({ ...byId, where: { name: { not: null } } }),
    prisma.model.findMany(byId),
    prisma.modelProvider.findMany(byId),
    prisma.modelRoute.findMany(byId),
    prisma.apiKey.findMany(byId),
  ]);
  const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  return {
    clusters: clusters.map((c) => ({ id: c.id, name: c.name })),
    principals: principals.map((p) => ({
      id: p.id,
      kind: p.kind,
      name: p.name ?? '',
      display_name: p.displayName,
    })),
    models: models.map((m) => ({
      id: m.id,
      name: m.name,
      cluster_id: m.clusterId,
      categories: strings(m.categories),
      owner_principal_id: m.ownerPrincipalId,
    })),
    providers: providers.map((p) => ({
      id: p.id,
      name: p.name,
      type: providerType(p.config),
      models: Array.isArray(p.models)
        ? p.models.flatMap((x) =>
            typeof x === 'object' && x !== null && 'name' in x && typeof x.name === 'string'
              ? [x.name]
              : [],
          )
        : [],
      owner_principal_id: p.ownerPrincipalId,
    })),
    routes: routes.map((r) => ({
      id: r.id,
      name: r.name,
      created_model_id: r.createdModelId,
      owner_principal_id: r.ownerPrincipalId,
    })),
    api_keys: apiKeys.map((k) => ({
      id: k.id,
      name: k.name,
      access_key: k.accessKey,
      is_custom: k.isCustom,
      user_id: k.userId,
      owner_principal_id: k.ownerPrincipalId,
    })),
  };
}

function providerType(config: unknown): string {
  const type =
    typeof config === 'object' && config !== null ? (config as { type?: unknown }).type : '';
  return typeof type === 'string' ? type : '';
}
