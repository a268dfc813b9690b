// Every generated document and what it is generated from: docs/performance.md from the
// newest complete bench results file, docs/reliability.md from the newest fault-suite
// results file. Used by `npm run docs` and by the test that keeps the docs from drifting.
// Must never write a file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePerformanceDoc } from '../bench/docs.js';
import { latestComplete } from '../bench/results.js';
import { faultFigures, latestFaultResults } from '../test/faults/support/results.js';
import { formatMarkdown, replaceBlock } from '../devkit/generated-docs.js';

export interface GeneratedDoc {
  name: string;
  path: string;
  /** The results file it comes from, relative to the repository. */
  source: string;
  text: string;
}

/** With `trackedOnly`, from results files git tracks only (what a test of the commit uses). */
export async function generatedDocs(root: string, trackedOnly = false): Promise<GeneratedDoc[]> {
  const bench = latestComplete(trackedOnly);
  if (bench === undefined) throw new Error('no complete results file in bench/results/');
  const faults = latestFaultResults(trackedOnly);
  if (faults === undefined) throw new Error('no results file in test/faults/results/');
  const performance = join(root, 'docs', 'performance.md');
  const reliability = join(root, 'docs', 'reliability.md');
  const faultSource = `test/faults/results/${faults.file}`;
  return [
    {
      name: 'docs/performance.md',
      path: performance,
      source: `bench/results/${bench.file}`,
      text: await generatePerformanceDoc(
        readFileSync(performance, 'utf8'),
        bench.results,
        bench.file,
        performance,
      ),
    },
    {
      name: 'docs/reliability.md',
      path: reliability,
      source: faultSource,
      text: await formatMarkdown(
        replaceBlock(
          readFileSync(reliability, 'utf8'),
          faultFigures(faults.results, faults.file),
          faultSource,
        ),
        reliability,
      ),
    },
  ];
}
