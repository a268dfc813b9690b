// What one benchmark run has found so far: its figures (each with its baseline, ratio,
// target and met/missed), its invariant checks and its notes, printed as they arrive.
// Owns no services and no I/O besides stdout; must never decide what a section measures.
import { fmt } from './stats.js';

/** Whether a rate's clock includes starting the processes that did the work. */
export type StartUp = 'included' | 'excluded';

export interface Figure {
  /** Stable key, `<section>.<name>`: the docs and later sections look figures up by it. */
  id: string;
  section: string;
  name: string;
  value: number;
  unit: string;
  /** For rates: whether process start-up is inside the timed interval. */
  startUp?: StartUp;
  baselineName?: string;
  /** Measured in the same run, in the same unit as `value`. */
  baseline?: number;
  /** value ÷ baseline. */
  ratio?: number;
  target?: string;
  met?: boolean;
  note?: string;
}

export type FigureInput = Omit<Figure, 'section' | 'ratio'>;

export interface Check {
  run: string;
  sent: number;
  committed: number;
  rejected: number;
  ok: boolean;
}

export class Recorder {
  readonly figures: Figure[] = [];
  readonly checks: Check[] = [];
  readonly notes: string[] = [];
  /** Why the run failed, one line per failure (failed invariant checks included). */
  readonly failures: string[] = [];
  private headings = 0;

  constructor(
    private readonly out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  ) {}

  say(line: string): void {
    this.out(line);
  }

  /** A section's title, numbered in the order the sections run. */
  heading(title: string): void {
    this.headings += 1;
    this.say(`\n${this.headings}. ${title}`);
  }

  /** Something went wrong that makes the run's figures untrustworthy (exit status 1). */
  fail(reason: string): void {
    this.failures.push(reason);
    this.say(`  FAILED: ${reason}`);
  }

  get failed(): boolean {
    return this.failures.length > 0;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  check(check: Check): void {
    this.checks.push(check);
    if (!check.ok) {
      this.failures.push(
        `check ${check.run}: sent ${check.sent}, committed ${check.committed}, rejected ${check.rejected}`,
      );
    }
  }

  figure(input: FigureInput): Figure {
    const section = input.id.split('.')[0] ?? input.id;
    const f: Figure = {
      ...input,
      section,
      ...(input.baseline === undefined ? {} : { ratio: input.value / input.baseline }),
    };
    this.figures.push(f);
    const base =
      f.baseline === undefined
        ? ''
        : ` | ${f.baselineName ?? 'baseline'} ${fmt(f.baseline, digits(f.unit))}`;
    const ratio = f.ratio === undefined ? '' : ` | ratio ${fmt(f.ratio, 2)}`;
    const verdict = f.met === undefined ? '' : f.met ? ' | met' : ' | MISSED';
    this.say(`  ${f.name}: ${fmt(f.value, digits(f.unit))} ${f.unit}${base}${ratio}${verdict}`);
    return f;
  }

  /** A figure recorded earlier in this run, or undefined when its section did not run. */
  value(id: string): number | undefined {
    return this.figures.find((f) => f.id === id)?.value;
  }

  get missed(): Figure[] {
    return this.figures.filter((f) => f.met === false);
  }
}

/** Decimal places a unit is shown with. */
export function digits(unit: string): number {
  return unit === 'ms' || unit === 'MB' ? 1 : 0;
}
