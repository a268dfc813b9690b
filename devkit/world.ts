// The GPUStack entities that tests, the demo and the bench run against: one small world
// (two clusters, an LLM of each size, an embedder and a reranker, a provider, routes
// including a LoRA route, three users, the platform Org and two tenant Orgs, and API keys
// owned in each way GPUStack allows) and the seed that writes any world into a database.
// Must never be imported by src/: Tally itself only reads entities.
import type { PrismaClient } from '../src/db/client.js';

export type PrincipalKind = 'USER' | 'ORG' | 'GROUP' | 'SYSTEM';

export interface World {
  clusters: { id: number; name: string }[];
  principals: { id: number; kind: PrincipalKind; name: string }[];
  models: {
    id: number;
    name: string;
    clusterId: number;
    categories: string[];
    ownerPrincipalId: number | null;
  }[];
  providers: {
    id: number;
    name: string;
    models: { name: string }[];
    config: { type: string };
    ownerPrincipalId: number | null;
  }[];
  routes: { id: number; name: string; createdModelId: number | null; ownerPrincipalId: number }[];
  apiKeys: {
    id: number;
    name: string;
    accessKey: string;
    isCustom: boolean;
    userId: number;
    ownerPrincipalId: number | null;
  }[];
}

/** GPUStack's platform Org (kind ORG, name 'default'): owns the world's models and routes. */
export const PLATFORM_ORG = 10;

/** The world's one provider: an upstream OpenAI proxy offering two models. */
export const OPENAI_PROXY = {
  id: 1,
  name: 'openai-proxy',
  models: [{ name: 'gpt-4o' }, { name: 'gpt-4o-mini' }],
  config: { type: 'openai' },
  ownerPrincipalId: null,
};

export const WORLD = {
  clusters: [
    { id: 1, name: 'gpu-east' },
    { id: 2, name: 'gpu-west' },
  ],
  principals: [
    { id: 1, kind: 'USER', name: 'alice' },
    { id: 2, kind: 'USER', name: 'bob' },
    { id: 3, kind: 'USER', name: 'carol' },
    { id: PLATFORM_ORG, kind: 'ORG', name: 'default' },
    { id: 11, kind: 'ORG', name: 'acme' },
    { id: 12, kind: 'ORG', name: 'globex' },
    { id: 20, kind: 'SYSTEM', name: 'system' },
  ],
  models: [
    { id: 1, name: 'qwen3-8b', clusterId: 1, categories: ['llm'], ownerPrincipalId: PLATFORM_ORG },
    { id: 2, name: 'llama-3-70b', clusterId: 2, categories: ['llm'], ownerPrincipalId: 11 },
    { id: 3, name: 'bge-m3', clusterId: 1, categories: ['embedding'], ownerPrincipalId: null },
    { id: 4, name: 'bge-reranker', clusterId: 2, categories: ['reranker'], ownerPrincipalId: null },
  ],
  providers: [OPENAI_PROXY],
  routes: [
    { id: 1, name: 'chat-default', createdModelId: null, ownerPrincipalId: PLATFORM_ORG },
    { id: 2, name: 'embeddings', createdModelId: null, ownerPrincipalId: PLATFORM_ORG },
    // A LoRA adapter on qwen3-8b, named as GPUStack's lora_route_name_for names it.
    { id: 3, name: 'qwen3-8b:sql-lora', createdModelId: 1, ownerPrincipalId: PLATFORM_ORG },
  ],
  // Keys owned by an Org (consumer: the Org), by no one (an admin's "All"-mode key:
  // consumer the caller) and by their own user.
  apiKeys: [
    {
      id: 1,
      name: 'alice-laptop',
      accessKey: 'ak_alice',
      isCustom: false,
      userId: 1,
      ownerPrincipalId: 11,
    },
    {
      id: 2,
      name: 'bob-ci',
      accessKey: 'ak_bob',
      isCustom: true,
      userId: 2,
      ownerPrincipalId: null,
    },
    {
      id: 3,
      name: 'carol-notebook',
      accessKey: 'ak_carol',
      isCustom: false,
      userId: 3,
      ownerPrincipalId: 3,
    },
    {
      id: 4,
      name: 'batch-jobs',
      accessKey: 'ak_batch',
      isCustom: true,
      userId: 2,
      ownerPrincipalId: 12,
    },
  ],
} satisfies World;

/** Writes `world`'s entities (ids as given) into an empty database. */
export async function seedWorld(prisma: PrismaClient, world: World = WORLD): Promise<void> {
  await prisma.cluster.createMany({ data: world.clusters });
  await prisma.principal.createMany({ data: world.principals });
  await prisma.model.createMany({ data: world.models });
  await prisma.modelProvider.createMany({ data: world.providers });
  await prisma.modelRoute.createMany({ data: world.routes });
  await prisma.apiKey.createMany({ data: world.apiKeys });
}

/** A one-line description of a world, for a script to say what it seeded. */
export function describeWorld(world: World): string {
  return [
    `${world.clusters.length} clusters`,
    `${world.models.length} models`,
    `${world.providers.length} provider(s)`,
    `${world.routes.length} routes`,
    `${world.principals.length} principals`,
    `${world.apiKeys.length} API keys`,
  ].join(', ');
}
