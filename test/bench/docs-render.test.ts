// The performance page's generator: a missed target shows as MISSED in the table and in
// the list under it, a met one as met, and text outside the markers is left alone.
import { describe, expect, it } from 'vitest';
import { performanceFigures } from '../../bench/docs.js';
import { END, replaceBlock, START } from '../../devkit/generated-docs.js';
import type { Results } from '../../bench/results.js';

const results: Results = {
  runId: 'r1',
  at: '2026-01-02T03:04:05.000Z',
  seconds: 200,
  commit: '0123456789abcdef',
  dirty: false,
  sections: ['x'],
  complete: true,
  machine: {
    cpuModel: 'CPU',
    cores: 2,
    memoryGiB: 4,
    node: 'v24.0.0',
    loadAverageAtStart: [3.5, 2, 1],
    loadAverageAtEnd: [4, 3, 2],
  },
  config: {
    pageSize: 2000,
    workerConcurrency: 2,
    entityCacheMs: 5000,
    flushIntervalMs: 10000,
    sealGraceMs: 250,
  },
  figures: [
    {
      id: 'x.a',
      section: 'x',
      name: 'fast',
      value: 2,
      unit: 'reports/s',
      target: '≥ 1',
      met: true,
    },
    {
      id: 'x.b',
      section: 'x',
      name: 'slow',
      value: 1,
      unit: 'reports/s',
      target: '≥ 2',
      met: false,
    },
  ],
  checks: [],
  notes: [],
  missed: ['x.b'],
  failures: [],
  ok: true,
};

describe('the performance page generator', () => {
  it('marks a missed target MISSED and a met one met, and records the run', () => {
    const md = performanceFigures(results, '2026-01-02-0123456.json');
    expect(md).toMatch(/\| x \| fast \|.*\| met \|/);
    expect(md).toMatch(/\| x \| slow \|.*\| MISSED \|/);
    expect(md).toContain('Targets MISSED in this run (1):');
    expect(md).toContain('- **x: slow**');
    expect(md).toContain('commit `0123456`');
    expect(md).toContain('3.5, 2, 1 at the start');
    expect(md).toContain('bench/results/2026-01-02-0123456.json');
  });

  it('says a failed run FAILED, and why', () => {
    const failed = { ...results, ok: false, failures: ['drain timed out after 120000 ms'] };
    expect(performanceFigures(failed, 'f.json')).toContain(
      '**This run FAILED**, so its figures are not to be trusted: drain timed out after 120000 ms.',
    );
    expect(performanceFigures(results, 'f.json')).not.toContain('FAILED');
  });

  it('says so when every target is met', () => {
    const met = { ...results, figures: results.figures.filter((f) => f.met === true) };
    expect(performanceFigures(met, 'f.json')).toContain('Every target was met in this run.');
  });

  it('replaces only the block between the markers', () => {
    const doc = `# T\n\nbefore\n\n${START} -->\nold\n${END}\n\nafter\n`;
    const out = replaceBlock(doc, 'new', 'f.json');
    expect(out.startsWith('# T\n\nbefore\n\n')).toBe(true);
    expect(out.endsWith(`new\n\n${END}\n\nafter\n`)).toBe(true);
    expect(out).not.toContain('old');
    expect(() => replaceBlock('# no markers', 'new', 'f.json')).toThrow(/no .* block/);
  });
});
