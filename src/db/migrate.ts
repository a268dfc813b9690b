// Brings a database to Tally's schema. A fresh (or Tally-made) database gets
// prisma/migrations, applied with Prisma's schema engine compiled to WebAssembly, so
// migrating needs no engine download; it writes `_prisma_migrations` exactly as `prisma
// migrate deploy` does. A database GPUStack manages gets attach mode instead
// (src/db/attach.ts). Applying twice changes nothing.
import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
// @prisma/migrate is CommonJS whose named exports Node cannot detect statically.
import prismaMigrate from '@prisma/migrate';
import { MIGRATIONS_DIR, migrationNames } from './migrations.js';
import { attach, type AttachOptions, type AttachResult } from './attach.js';
import { isGpustackDatabase, probeSchema } from './gpustack-schema.js';

const { SchemaEngineWasm } = prismaMigrate;
type SchemaEngineWasm = Awaited<ReturnType<typeof SchemaEngineWasm.setup>>;

const require = createRequire(import.meta.url);
const filters = { externalTables: [], externalEnums: [] };

/**
 * @prisma/internals loads the engine from its own build/ folder, which its package does
 * not ship; the same file is published in @prisma/schema-engine-wasm (pinned to the same
 * version by @prisma/internals), so put it where the loader looks.
 */
async function ensureEngineWasm(): Promise<void> {
  const internalsDir = dirname(require.resolve('@prisma/internals/package.json'));
  const target = join(internalsDir, 'build', 'schema_engine_bg.wasm');
  if (await exists(target)) return;
  const requireFromInternals = createRequire(join(internalsDir, 'package.json'));
  const wasmDir = dirname(requireFromInternals.resolve('@prisma/schema-engine-wasm'));
  await mkdir(dirname(target), { recursive: true });
  await copyFile(join(wasmDir, 'schema_engine_bg.wasm'), target);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function withEngine<T>(
  databaseUrl: string,
  run: (engine: SchemaEngineWasm) => Promise<T>,
): Promise<T> {
  await ensureEngineWasm();
  // Our own pool, so its connections close now rather than after pg's idle timeout.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaPg(pool));
  try {
    const engine = await SchemaEngineWasm.setup({ adapter });
    try {
      return await run(engine);
    } finally {
      await engine.stop();
    }
  } finally {
    await pool.end();
  }
}

async function migrationsList() {
  const names = await migrationNames();
  const migrationDirectories = await Promise.all(
    names.map(async (name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: {
          tag: 'ok' as const,
          value: await readFile(join(MIGRATIONS_DIR, name, 'migration.sql'), 'utf8'),
        },
      },
    })),
  );
  return {
    baseDir: MIGRATIONS_DIR,
    lockfile: {
      path: 'migration_lock.toml',
      content: await readFile(join(MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8'),
    },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

/** Applies every committed migration not yet applied. Returns the names it applied. */
export async function migrate(databaseUrl: string): Promise<string[]> {
  const list = await migrationsList();
  return withEngine(databaseUrl, async (engine) => {
    const result = await engine.applyMigrations({ migrationsList: list, filters });
    return result.appliedMigrationNames;
  });
}

export type MigrateOutcome =
  { mode: 'prisma'; applied: string[] } | ({ mode: 'attach' } & AttachResult);

/**
 * `npm run migrate`: attach mode when GPUStack manages the database (probed, see
 * src/db/gpustack-schema.ts), Prisma's migrations otherwise.
 */
export async function migrateDatabase(
  databaseUrl: string,
  options: AttachOptions = {},
): Promise<MigrateOutcome> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const probe = await probeSchema(client);
    if (isGpustackDatabase(probe)) {
      return { mode: 'attach', ...(await attach(client, probe, options)) };
    }
  } finally {
    await client.end();
  }
  return { mode: 'prisma', applied: await migrate(databaseUrl) };
}
