// The figures sections of the docs, generated from committed results files: a block
// between two markers in a Markdown file is replaced by what a results file says, and
// the file is formatted as `npm run lint` expects. Pure apart from reading prettier's
// config; must never measure, and never touch text outside the markers.
import { format, resolveConfig } from 'prettier';
import { tableRows, TABLE_HEADER } from './report.js';
import type { Results } from './results.js';
import { fmt } from './stats.js';

export const START = '<!-- generated:figures:start';
export const END = '<!-- generated:figures:end -->';

const escape = (cell: string) => cell.replaceAll('|', '\\|');

/** Markdown for one benchmark run: where and when it ran, its table and what it missed. */
export function performanceFigures(r: Results, file: string): string {
  const m = r.machine;
  const date = `${r.at.slice(0, 10)} ${r.at.slice(11, 16)} UTC`;
  const rows = tableRows(r.figures).map((row) => `| ${row.map(escape).join(' | ')} |`);
  const missed = r.figures.filter((f) => f.met === false);
  return [
    `Run of ${date} at commit \`${r.commit.slice(0, 7)}\`${r.dirty ? ' (with uncommitted changes)' : ''}, ` +
      `from [\`bench/results/${file}\`](../bench/results/${file}): ${m.cores} × ${m.cpuModel}, ` +
      `${m.memoryGiB} GiB, Node ${m.node}, ${fmt(r.seconds)} s in all. Load average (1, 5, 15 min) ` +
      `${m.loadAverageAtStart.join(', ')} at the start and ${m.loadAverageAtEnd.join(', ')} at the end, ` +
      `on a machine shared with other work: absolute rates move with it, same-run ratios less so. ` +
      `Configuration: \`TALLY_PAGE_SIZE=${r.config.pageSize}\`, \`TALLY_WORKER_CONCURRENCY=${r.config.workerConcurrency}\`, ` +
      `\`TALLY_ENTITY_CACHE_MS=${r.config.entityCacheMs}\`, \`TALLY_FLUSH_INTERVAL_MS=${r.config.flushIntervalMs}\`, ` +
      `\`TALLY_SEAL_GRACE_MS=${r.config.sealGraceMs}\`.`,
    '',
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
              `- **${f.section}: ${escape(f.name)}**: ${fmt(f.value, f.unit === 'ms' || f.unit === 'MB' ? 1 : 0)} ${f.unit}` +
              `${f.ratio === undefined ? '' : ` (ratio ${fmt(f.ratio, 2)})`}, target ${f.target ?? ''}.`,
          ),
        ]),
    ...(r.notes.length === 0 ? [] : ['', ...r.notes.map((n) => `Note: ${n}`)]),
  ].join('\n');
}

/** `doc` with the block between the markers replaced by `block`. */
export function replaceBlock(doc: string, block: string, source: string): string {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`no ${START} … ${END} block in the document`);
  const marker = `${START}: \`npm run docs\` writes this block from ${source}; do not edit it by hand -->`;
  return `${doc.slice(0, start)}${marker}\n\n${block}\n\n${doc.slice(end)}`;
}

/** Formats Markdown as `prettier --check` expects it for `path`. */
export async function formatMarkdown(text: string, path: string): Promise<string> {
  const options = (await resolveConfig(path)) ?? {};
  return format(text, { ...options, parser: 'markdown' });
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
