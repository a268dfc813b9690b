// @prisma/migrate 7.10 points its "types" at a path it does not ship; its declarations
// are at dist/src. Only the wasm schema engine is used (see src/db/migrate.ts).
declare module '@prisma/migrate' {
  import type { SchemaEngineWasm } from '@prisma/migrate/dist/src/SchemaEngineWasm.js';

  const prismaMigrate: { SchemaEngineWasm: typeof SchemaEngineWasm };
  export default prismaMigrate;
}
