// A vitest reporter for the fault suite: when every scenario file ran and passed, it
// writes the run's `[fault]` lines (collected in the file named by TALLY_FAULTS_REPORT)
// with the machine, load average and commit into test/faults/results/. A partial or
// failed run writes nothing, so the docs are never generated from one.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reporter, TestModule, TestRunEndReason } from 'vitest/node';
import { currentCommit, loadAverageNow, machineAtStart } from '../../../devkit/run-record.js';
import { writeFaultResults } from './results.js';

const FAULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export class FaultResultsReporter implements Reporter {
  private readonly at = new Date().toISOString();
  private readonly started = performance.now();
  private readonly machine = machineAtStart();
  private readonly commit = currentCommit();

  constructor(private readonly linesFile: string) {
    rmSync(linesFile, { force: true });
  }

  async onTestRunEnd(
    modules: ReadonlyArray<TestModule>,
    _errors: unknown,
    reason: TestRunEndReason,
  ): Promise<void> {
    const all = readdirSync(FAULTS_DIR).filter((f) => f.endsWith('.test.ts'));
    const ran = modules.map((m) => m.moduleId.slice(FAULTS_DIR.length + 1));
    const complete = reason === 'passed' && all.every((f) => ran.includes(f));
    const lines = existsSync(this.linesFile)
      ? readFileSync(this.linesFile, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('[fault]'))
      : [];
    rmSync(this.linesFile, { force: true });
    if (!complete) {
      console.log('fault results: not written (only a complete, passing run is recorded)');
      return;
    }
    const file = await writeFaultResults({
      at: this.at,
      seconds: Math.round((performance.now() - this.started) / 1000),
      ...this.commit,
      machine: { ...this.machine, loadAverageAtEnd: loadAverageNow() },
      files: all,
      lines,
    });
    console.log(`fault results: ${file}`);
  }
}
