// `npm run entities -- import <file.json>` and `npm run entities -- list`: how a
// standalone Tally learns the clusters, principals, models, providers, routes and API keys
// that reports refer to, without hand-written SQL. All wiring lives here.
import { readFile } from 'node:fs/promises';
import { loadConfig, requireDatabaseUrl } from '../config.js';
import { createPrisma } from '../db/client.js';
import { postgresDependency } from '../db/readiness.js';
import { run } from '../lifecycle.js';
import { requireDependencies } from '../readiness.js';
import {
  EntitiesFileError,
  ENTITY_KINDS,
  importEntities,
  listEntities,
  parseEntitiesFile,
} from './entities.js';

export const ENTITIES_USAGE = [
  'usage: npm run entities -- import <file.json>   upsert every entity in the file, by id',
  '       npm run entities -- list                 print every entity, in the same format',
  '',
  'The file holds any of: clusters, principals, models, providers, routes, api_keys',
  '(see examples/entities.json). Needs DATABASE_URL, migrated (npm run migrate).',
].join('\n');

function usageError(message: string): never {
  console.error(`entities: ${message}\n${ENTITIES_USAGE}`);
  process.exit(2);
}

run('entities', async () => {
  const [command, path, ...rest] = process.argv.slice(2);
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(ENTITIES_USAGE);
    process.exit(0);
  }
  if (command !== 'import' && command !== 'list') usageError('say import or list');
  if (command === 'import' && path === undefined) usageError('import needs a file');
  if (rest.length > 0 || (command === 'list' && path !== undefined)) {
    usageError('too many arguments');
  }
  let file;
  if (path !== undefined) {
    try {
      file = parseEntitiesFile(await readFile(path, 'utf8'));
    } catch (error) {
      const why = error instanceof EntitiesFileError ? error.message : (error as Error).message;
      console.error(`entities: ${path}: ${why}`);
      process.exit(1);
    }
  }
  const config = loadConfig();
  const databaseUrl = requireDatabaseUrl(config);
  const prisma = createPrisma(databaseUrl, { max: 2 });
  try {
    await requireDependencies([postgresDependency(prisma, databaseUrl)]);
    if (file !== undefined) {
      const counts = await importEntities(prisma, file);
      const parts = ENTITY_KINDS.map((k) => `${counts[k]} ${k}`);
      console.log(`entities: imported ${parts.join(', ')} (upserted by id, in one transaction)`);
    } else {
      console.log(JSON.stringify(await listEntities(prisma), null, 2));
    }
  } finally {
    await prisma.$disconnect();
  }
});
