// The entities reports refer to (clusters, models, providers, routes, users, API keys),
// as a standalone Tally keeps them: read from a JSON file with GPUStack's field names,
// upserted by id in one transaction, and listed back. Next to GPUStack, GPUStack owns
// these tables and this module is not needed. Must never delete an entity, nor leave a
// file half imported.
import { z } from 'zod';
import type { PrismaClient } from '../db/client.js';

const id = z.number().int().min(1).max(2_147_483_647);
const name = z.string().trim().min(1).max(255);

export const entitiesFileSchema = z
  .object({
    clusters: z.array(z.object({ id, name }).strict()).default([]),
    models: z
      .array(
        z
          .object({
            id,
            name,
            cluster_id: id.nullable().default(null),
            categories: z.array(z.string().min(1)).default([]),
          })
          .strict(),
      )
      .default([]),
    providers: z
      .array(z.object({ id, name, type: name, models: z.array(name).default([]) }).strict())
      .default([]),
    routes: z.array(z.object({ id, name }).strict()).default([]),
    users: z.array(z.object({ id, username: name }).strict()).default([]),
    api_keys: z
      .array(
        z.object({ id, name, access_key: name, is_custom: z.boolean().default(false) }).strict(),
      )
      .default([]),
  })
  .strict();

export type EntitiesFile = z.infer<typeof entitiesFileSchema>;
export type EntityKind = keyof EntitiesFile;
export const ENTITY_KINDS: readonly EntityKind[] = [
  'clusters',
  'models',
  'providers',
  'routes',
  'users',
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
    for (const m of file.models) {
      const data = { name: m.name, clusterId: m.cluster_id, categories: m.categories };
      await tx.model.upsert({ where: { id: m.id }, create: { id: m.id, ...data }, update: data });
    }
    for (const p of file.providers) {
      const data = {
        name: p.name,
        models: p.models.map((n) => ({ name: n })),
        config: { type: p.type },
      };
      await tx.modelProvider.upsert({
        where: { id: p.id },
        create: { id: p.id, ...data },
        update: data,
      });
    }
    for (const r of file.routes) {
      await tx.modelRoute.upsert({ where: { id: r.id }, create: r, update: { name: r.name } });
    }
    for (const u of file.users) {
      await tx.user.upsert({ where: { id: u.id }, create: u, update: { username: u.username } });
    }
    for (const k of file.api_keys) {
      const data = { name: k.name, accessKey: k.access_key, isCustom: k.is_custom };
      await tx.apiKey.upsert({ where: { id: k.id }, create: { id: k.id, ...data }, update: data });
    }
    // Explicit ids leave the id sequences behind; move them past the highest id.
    for (const table of [
      'clusters',
      'models',
      'model_providers',
      'model_routes',
      'users',
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
  const [clusters, models, providers, routes, users, apiKeys] = await Promise.all([
    prisma.cluster.findMany(byId),
    prisma.model.findMany(byId),
    prisma.modelProvider.findMany(byId),
    prisma.modelRoute.findMany(byId),
    prisma.user.findMany(byId),
    prisma.apiKey.findMany(byId),
  ]);
  const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  return {
    clusters: clusters.map((c) => ({ id: c.id, name: c.name })),
    models: models.map((m) => ({
      id: m.id,
      name: m.name,
      cluster_id: m.clusterId,
      categories: strings(m.categories),
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
    })),
    routes: routes.map((r) => ({ id: r.id, name: r.name })),
    users: users.map((u) => ({ id: u.id, username: u.username })),
    api_keys: apiKeys.map((k) => ({
      id: k.id,
      name: k.name,
      access_key: k.accessKey,
      is_custom: k.isCustom,
    })),
  };
}

function providerType(config: unknown): string {
  const type =
    typeof config === 'object' && config !== null ? (config as { type?: unknown }).type : '';
  return typeof type === 'string' ? type : '';
}
