// The GPUStack entities that tests, the demo and the bench run against: one small world
// (two clusters, an LLM of each size, an embedder and a reranker, a provider, routes,
// three users and their keys) and the seed that writes any world into a database.
// Must never be imported by src/: Tally itself only reads entities.
import type { PrismaClient } from '../src/db/client.js';

export interface World {
  clusters: { id: number; name: string }[];
  models: { id: number; name: string; clusterId: number; categories: string[] }[];
  providers: { id: number; name: string; models: { name: string }[]; config: { type: string } }[];
  routes: { id: number; name: string }[];
  users: { id: number; username: string }[];
  apiKeys: { id: number; name: string; accessKey: string; isCustom: boolean }[];
}

/** The world's one provider: an upstream OpenAI proxy offering two models. */
export const OPENAI_PROXY = {
  id: 1,
  name: 'openai-proxy',
  models: [{ name: 'gpt-4o' }, { name: 'gpt-4o-mini' }],
  config: { type: 'openai' },
};

export const WORLD = {
  clusters: [
    { id: 1, name: 'gpu-east' },
    { id: 2, name: 'gpu-west' },
  ],
  models: [
    { id: 1, name: 'qwen3-8b', clusterId: 1, categories: ['llm'] },
    { id: 2, name: 'llama-3-70b', clusterId: 2, categories: ['llm'] },
    { id: 3, name: 'bge-m3', clusterId: 1, categories: ['embedding'] },
    { id: 4, name: 'bge-reranker', clusterId: 2, categories: ['reranker'] },
  ],
  providers: [OPENAI_PROXY],
  routes: [
    { id: 1, name: 'chat-default' },
    { id: 2, name: 'embeddings' },
  ],
  users: [
    { id: 1, username: 'alice' },
    { id: 2, username: 'bob' },
    { id: 3, username: 'carol' },
  ],
  apiKeys: [
    { id: 1, name: 'alice-laptop', accessKey: 'ak_alice', isCustom: false },
    { id: 2, name: 'bob-ci', accessKey: 'ak_bob', isCustom: true },
    { id: 3, name: 'carol-notebook', accessKey: 'ak_carol', isCustom: false },
    { id: 4, name: 'batch-jobs', accessKey: 'ak_batch', isCustom: true },
  ],
} satisfies World;

/** Writes `world`'s entities (ids as given) into an empty database. */
export async function seedWorld(prisma: PrismaClient, world: World = WORLD): Promise<void> {
  await prisma.cluster.createMany({ data: world.clusters });
  await prisma.model.createMany({ data: world.models });
  await prisma.modelProvider.createMany({ data: world.providers });
  await prisma.modelRoute.createMany({ data: world.routes });
  await prisma.user.createMany({ data: world.users });
  await prisma.apiKey.createMany({ data: world.apiKeys });
}

/** A one-line description of a world, for a script to say what it seeded. */
export function describeWorld(world: World): string {
  return [
    `${world.clusters.length} clusters`,
    `${world.models.length} models`,
    `${world.providers.length} provider(s)`,
    `${world.routes.length} routes`,
    `${world.users.length} users`,
    `${world.apiKeys.length} API keys`,
  ].join(', ');
}
