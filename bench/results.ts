// The benchmark's results file: one committed JSON file per run, named
// bench/results/YYYY-MM-DD-<shortcommit>.json, holding the machine, its load, the commit
// and every figure with its baseline, ratio, target and verdict. The docs are generated
// from the latest complete one. Must never hold anything the run did not measure.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../src/config.js';
import { recordFileName, trackedFiles, type Machine } from '../devkit/run-record.js';
import type { Check, Figure } from './recorder.js';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

export interface Results {
  runId: string;
  /** ISO time the run started. */
  at: string;
  seconds: number;
  commit: string;
  /** Uncommitted changes in the measured tree. */
  dirty: boolean;
  /** Sections run; `complete` when all registered sections ran (failed or not). */
  sections: string[];
  complete: boolean;
  machine: Machine;
  config: Pick<
    Config,
    'pageSize' | 'workerConcurrency' | 'entityCacheMs' | 'flushIntervalMs' | 'sealGraceMs'
  >;
  figures: Figure[];
  checks: Check[];
  notes: string[];
  missed: string[];
  /** Why the run failed (a failed invariant check, a drain that timed out, …); empty when ok. */
  failures: string[];
  ok: boolean;
}

export async function writeResults(r: Results, dir = RESULTS_DIR): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, recordFileName(r.at, r.commit));
  await writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}

/**
 * The latest run (by start time) that ran every section, or undefined when there is none;
 * with `trackedOnly`, only among files git tracks.
 */
export function latestComplete(
  trackedOnly = false,
  dir = RESULTS_DIR,
): { file: string; results: Results } | undefined {
  const tracked = trackedOnly ? trackedFiles(dir) : undefined;
  const runs = readdirSync(dir)
    .filter((f) => f.endsWith('.json') && (tracked?.has(f) ?? true))
    .map((f) => ({ file: f, results: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Results }))
    .filter((r) => r.results.complete)
    .sort((a, b) => a.results.at.localeCompare(b.results.at));
  return runs[runs.length - 1];
}
