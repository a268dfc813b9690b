// What a benchmark section is, and the workload constants sections share. A section
// measures one thing against a baseline from the same run and records it through the
// harness's recorder; it must never print a table or write a results file (report.ts and
// results.ts do) and must leave the streams and tables empty for the next section.
import type { Harness } from './harness.js';

/**
 * The default export of bench/sections/<name>.ts; `<name>` is what `--only=` selects it
 * by and the prefix of its figures' ids.
 */
export interface Section {
  run(h: Harness): Promise<void>;
}

/** Partitions of every backlog unless a section says otherwise. */
export const PARTITIONS = 8;
/** Backlogs arrived at this rate: 10 s windows hold 100,000 reports over 8 partitions. */
export const ARRIVAL_PER_SECOND = 10_000;
/** Backlogs end this long ago, so every window is closed when a drain starts. */
export const ENDS_AGO_MS = 30_000;
