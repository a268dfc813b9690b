// `npm run bench`: Tally's performance benchmark against the local Redis and PostgreSQL,
// each figure next to a baseline from the same run. This file is the registry: a section
// is bench/sections/<name>.ts, added to the run with one line below. How a run goes, its
// options and exit status: runner.ts; what a section is: section.ts. Must never hold
// measurement logic.
import { parseArgs, runBench } from './runner.js';

/** In run order; `memory` sizes its backlog from `drain`'s rate, so it comes after it. */
const SECTIONS = [
  'producer', // the SDK against plain XADD
  'http', // HTTP ingest: one report and arrays of 100 per request
  'spool', // HTTP ingest with Redis refusing: every report through the disk spool
  'drain', // one worker against the seed's algorithm and the database's ceiling
  'latency', // report() → committed at a steady rate
  'memory', // peak RSS of the deployed worker on a large backlog; Redis bytes per report
  'scaling', // worker processes and partitions
];

process.exit(await runBench(SECTIONS, parseArgs(process.argv.slice(2))));
