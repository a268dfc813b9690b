// `npm run docs`: regenerates the figures of docs/performance.md from the newest complete
// results file in bench/results/, and those of docs/reliability.md from the newest in
// test/faults/results/. `--check` changes nothing and exits 1 when a committed document
// differs from what it would write.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedDocs } from './generated-docs.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

let stale = 0;
for (const doc of await generatedDocs(ROOT)) {
  const before = readFileSync(doc.path, 'utf8');
  if (before === doc.text) {
    console.log(`docs: ${doc.name} is up to date (${doc.source})`);
  } else if (check) {
    stale += 1;
    console.log(`docs: ${doc.name} differs from what ${doc.source} generates`);
  } else {
    writeFileSync(doc.path, doc.text);
    console.log(`docs: ${doc.name} written from ${doc.source}`);
  }
}
process.exit(stale === 0 ? 0 : 1);
