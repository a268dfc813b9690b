// The benchmark's console report: every figure of the run as one aligned table, then the
// notes and the missed targets. Pure formatting over figures; must never measure or write.
import { digits, type Figure } from './recorder.js';
import { fmt } from './stats.js';

export const TABLE_HEADER = [
  'section',
  'figure',
  'value',
  'start-up',
  'baseline (same run)',
  'ratio',
  'target',
  '',
];

export function tableRows(figures: readonly Figure[]): string[][] {
  return figures.map((f) => [
    f.section,
    f.name,
    `${fmt(f.value, digits(f.unit))} ${f.unit}`,
    f.startUp ?? '',
    f.baseline === undefined ? '' : `${fmt(f.baseline, digits(f.unit))} (${f.baselineName ?? ''})`,
    f.ratio === undefined ? '' : fmt(f.ratio, 2),
    f.target ?? '',
    f.met === undefined ? '' : f.met ? 'met' : 'MISSED',
  ]);
}

/** The figures as a plain-text table, one line per figure. */
export function textTable(figures: readonly Figure[]): string[] {
  const rows = tableRows(figures);
  const widths = TABLE_HEADER.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join(' | ')
      .trimEnd();
  return [line(TABLE_HEADER), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)];
}

/** The closing lines: the table, notes and a MISSED line per missed target. */
export function closingReport(figures: readonly Figure[], notes: readonly string[]): string[] {
  const missed = figures.filter((f) => f.met === false);
  return [
    '',
    ...textTable(figures),
    ...notes.map((n) => `note: ${n}`),
    ...(missed.length === 0
      ? ['all targets met']
      : [
          `MISSED ${missed.length} target(s):`,
          ...missed.map((f) => `  MISSED ${f.section}: ${f.name} (target ${f.target ?? ''})`),
        ]),
  ];
}
