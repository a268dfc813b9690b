// The benchmark's results file: one committed JSON file per run, named
// bench/results/YYYY-MM-DD-<shortcommit>.json, holding the machine, its load, the commit
// and every figure with its baseline, ratio, target and verdict. The docs are generated
// from the latest complete one. Must never hold anything the run did not measure.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../src/config.js';
import type { Check, Figure } from './recorder.js';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  /** 1, 5 and 15-minute load averages (os.loadavg()). */
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
}

export interface Results {
  runId: string;
  /** ISO time the run started. */
  at: string;
  seconds: number;
  commit: string;
  /** Uncommitted changes in the measured tree. */
  dirty: boolean;
  /** Sections run; `complete` when all registered sections ran. */
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
  ok: boolean;
}

function git(...args: string[]): string {
  return execFileSync('git', args, { encoding: 'utf8' }).trim();
}

/** The commit being measured, and whether tracked files differ from it. */
export function currentCommit(): { commit: string; dirty: boolean } {
  try {
    const changes = git('status', '--porcelain', '--untracked-files=no');
    return { commit: git('rev-parse', 'HEAD'), dirty: changes !== '' };
  } catch {
    return { commit: 'unknown', dirty: true };
  }
}

export function machineAtStart(): Machine {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    loadAverageAtEnd: [],
  };
}

export function loadAverageNow(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

export function resultsFileName(r: Pick<Results, 'at' | 'commit'>): string {
  return `${r.at.slice(0, 10)}-${r.commit.slice(0, 7)}.json`;
}

export async function writeResults(r: Results, dir = RESULTS_DIR): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, resultsFileName(r));
  await writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}

/** The latest run (by start time) that ran every section, or undefined when there is none. */
export function latestComplete(dir = RESULTS_DIR): { file: string; results: Results } | undefined {
  const runs = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ file: f, results: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Results }))
    .filter((r) => r.results.complete)
    .sort((a, b) => a.results.at.localeCompare(b.results.at));
  return runs[runs.length - 1];
}
