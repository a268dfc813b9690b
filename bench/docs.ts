// docs/performance.md's generated block: a benchmark run (when, where, load), its table
// with start-up, baseline, ratio, target and verdict, and what it missed. Pure; must never
// measure, and never touch text outside the markers.
import { cell, formatMarkdown, replaceBlock } from '../devkit/generated-docs.js';
import { describeRun } from '../devkit/run-record.js';
import { digits } from './recorder.js';
import { tableRows, TABLE_HEADER } from './report.js';
import type { Results } from './results.js';
import { fmt } from './stats.js';

/** Markdown for one benchmark run (stored as bench/results/`file`). */
export function performanceFigures(r: Results, file: string): string {
  const rows = tableRows(r.figures).map((row) => `| ${row.map(cell).join(' | ')} |`);
  const missed = r.figures.filter((f) => f.met === false);
  return [
    `${describeRun(r, `bench/results/${file}`)} Absolute rates move with the load; ` +
      `same-run ratios less so. Configuration: \`TALLY_PAGE_SIZE=${r.config.pageSize}\`, ` +
      `\`TALLY_WORKER_CONCURRENCY=${r.config.workerConcurrency}\`, ` +
      `\`TALLY_ENTITY_CACHE_MS=${r.config.entityCacheMs}\`, ` +
      `\`TALLY_FLUSH_INTERVAL_MS=${r.config.flushIntervalMs}\`, ` +
      `\`TALLY_SEAL_GRACE_MS=${r.config.sealGraceMs}\`.`,
    '',
    ...(r.ok
      ? []
      : [
          `**This run FAILED**, so its figures are not to be trusted: ${r.failures.map(cell).join('; ')}.`,
          '',
        ]),
    `| ${TABLE_HEADER.map((h) => (h === '' ? 'verdict' : h)).join(' | ')} |`,
    `| ${TABLE_HEADER.map(() => '---').join(' | ')} |`,
    ...rows,
    '',
    `Invariant checks: ${r.checks.filter((c) => c.ok).length} of ${r.checks.length} held ` +
      `(committed + rejected = sent, and invariant 2, after every drain).`,
    '',
    ...(missed.length === 0
      ? ['Every target was met in this run.']
      : [
          `Targets MISSED in this run (${missed.length}):`,
          '',
          ...missed.map(
            (f) =>
              `- **${f.section}: ${cell(f.name)}**: ${fmt(f.value, digits(f.unit))} ${f.unit}` +
              `${f.ratio === undefined ? '' : ` (ratio ${fmt(f.ratio, 2)})`}, target ${f.target ?? ''}.`,
          ),
        ]),
    ...(r.notes.length === 0 ? [] : ['', ...r.notes.map((n) => `Note: ${n}`)]),
  ].join('\n');
}

/** docs/performance.md as generated from `results` (stored as bench/results/`file`). */
export async function generatePerformanceDoc(
  doc: string,
  results: Results,
  file: string,
  path: string,
): Promise<string> {
  const block = performanceFigures(results, file);
  return formatMarkdown(replaceBlock(doc, block, `bench/results/${file}`), path);
}
