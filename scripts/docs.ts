// `npm run docs`: regenerates the figures sections of docs/performance.md from the
// latest complete results file in bench/results/. `--check` changes nothing and exits 1
// when the committed document differs from what it would write.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePerformanceDoc } from '../bench/docs.js';
import { latestComplete } from '../bench/results.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const latest = latestComplete();
if (latest === undefined) {
  console.error('docs: no complete results file in bench/results/ (run `npm run bench`)');
  process.exit(1);
}
const path = join(ROOT, 'docs', 'performance.md');
const before = readFileSync(path, 'utf8');
const after = await generatePerformanceDoc(before, latest.results, latest.file, path);
if (check) {
  console.log(before === after ? 'docs: up to date' : 'docs: docs/performance.md is stale');
  process.exit(before === after ? 0 : 1);
}
writeFileSync(path, after);
console.log(`docs: docs/performance.md from bench/results/${latest.file}`);
