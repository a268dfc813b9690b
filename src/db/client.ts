// The Prisma client, connected through the pg driver adapter (Prisma 7 needs no engine binary),
// and the pg pool under it, for the one hot statement that runs on the pool directly (the
// worker's page commit). Must never open a second pool for the same client.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type { PrismaClient };

export interface PrismaOptions {
  /** Connections in the pool. */
  max?: number;
}

const pools = new WeakMap<PrismaClient, pg.Pool>();

export function createPrisma(databaseUrl: string, options: PrismaOptions = {}): PrismaClient {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: options.max ?? 10 });
  // An idle connection's error (a restarted server) would otherwise be an unhandled 'error'
  // event before Prisma attaches its own listener; the next query reports the failure.
  pool.on('error', () => undefined);
  // $disconnect() ends the pool, as it ended the adapter's own pool before.
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  const prisma = new PrismaClient({ adapter });
  pools.set(prisma, pool);
  return prisma;
}

/** The pg pool under a client made by createPrisma (shared connections, same limits). */
export function poolOf(prisma: PrismaClient): pg.Pool | undefined {
  return pools.get(prisma);
}
