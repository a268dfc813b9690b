// The fault suite's results file: one JSON file per complete, passing run of
// `npm run test:faults`, test/faults/results/YYYY-MM-DD-<shortcommit>.json, holding the
// machine, its load, the commit and every `[fault]` line the scenarios printed. Must never
// hold a line no scenario printed.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordFileName, type Machine } from '../../../devkit/run-record.js';

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

export async function writeFaultResults(r: FaultResults, dir = FAULT_RESULTS_DIR): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, recordFileName(r.at, r.commit));
  await writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}
