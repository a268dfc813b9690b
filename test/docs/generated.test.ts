// The committed figures cannot drift: each generated document must be exactly what
// `npm run docs` writes from the latest results file git tracks, and must name that file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatedDocs } from '../../scripts/generated-docs.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('generated docs', async () => {
  const docs = await generatedDocs(ROOT, true);

  it.each(docs.map((d) => [d.name, d] as const))(
    '%s is what `npm run docs` generates from the latest results file',
    (_name, doc) => {
      const committed = readFileSync(doc.path, 'utf8');
      expect(committed).toContain(doc.source);
      expect(committed).toBe(doc.text);
    },
  );
});
