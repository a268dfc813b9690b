// The fault suite's results file: one committed JSON file per complete run of
// `npm run test:faults`, test/faults/results/YYYY-MM-DD-<shortcommit>.json, holding the
// machine, its load, the commit and every `[fault]` line the scenarios printed; and the
// Markdown docs/reliability.md shows of it. Must never hold a line no scenario printed.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cell } from '../../../devkit/generated-docs.js';
import {
  describeRun,
  recordFileName,
  trackedFiles,
  type Machine,
} from '../../../devkit/run-record.js';

export const FAULT_RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export interface FaultResults {
  /** ISO time the run started. */
  at: string;
  seconds: number;
  commit: string;
  dirty: boolean;
  machine: Machine;
  /** Scenario files run; a results file is only written when all of them ran and passed. */
  files: string[];
  /** Every `[fault] …` line, in the order printed. */
  lines: string[];
}

const LINE =
  /^\[fault\] (.+?): sent (\d+), committed (\d+), duplicates (\d+), rejected (\d+), lost (\d+)(?:; (.*))?$/;

export async function writeFaultResults(r: FaultResults, dir = FAULT_RESULTS_DIR): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, recordFileName(r.at, r.commit));
  await writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}

/** The latest run by start time, or undefined; with `trackedOnly`, among files git tracks. */
export function latestFaultResults(
  trackedOnly = false,
  dir = FAULT_RESULTS_DIR,
): { file: string; results: FaultResults } | undefined {
  const tracked = trackedOnly ? trackedFiles(dir) : undefined;
  const runs = readdirSync(dir)
    .filter((f) => f.endsWith('.json') && (tracked?.has(f) ?? true))
    .map((f) => ({
      file: f,
      results: JSON.parse(readFileSync(join(dir, f), 'utf8')) as FaultResults,
    }))
    .sort((a, b) => a.results.at.localeCompare(b.results.at));
  return runs[runs.length - 1];
}

/** Markdown for one fault-suite run: where and when, and a row per printed line. */
export function faultFigures(r: FaultResults, file: string): string {
  const rows = r.lines.map((line) => {
    const m = LINE.exec(line);
    if (m === null) return `| ${cell(line.replace(/^\[fault\] /, ''))} | | | | | | |`;
    const [, scenario, sent, committed, duplicates, rejected, lost, extra] = m;
    return `| ${[scenario, sent, committed, duplicates, rejected, lost, extra ?? '']
      .map((c) => cell(c ?? ''))
      .join(' | ')} |`;
  });
  return [
    describeRun(r, `test/faults/results/${file}`),
    '',
    '| scenario | sent | committed | duplicates | rejected | lost | what else it saw |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
