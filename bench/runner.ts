// Runs the registered benchmark sections in order against one harness, then prints the
// report and writes the dated results file. Options: --only=<section,...>, --cpu-prof
// (worker profiles into bench/profiles/), --strict (a missed target fails the run).
// Exit status: 1 when an invariant check or a section fails, or under --strict when a
// target is missed; otherwise 0. Must never know what any one section measures.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { Harness } from './harness.js';
import { Recorder } from './recorder.js';
import { closingReport } from './report.js';
import { currentCommit, loadAverageNow, machineAtStart } from '../devkit/run-record.js';
import { RESULTS_DIR, writeResults, type Results } from './results.js';
import type { Section } from './section.js';
import { fmt } from './stats.js';

export interface RunOptions {
  only: string[] | undefined;
  cpuProf: boolean;
  strict: boolean;
}

export function parseArgs(args: readonly string[]): RunOptions {
  return {
    only: args
      .find((a) => a.startsWith('--only='))
      ?.slice('--only='.length)
      .split(','),
    cpuProf: args.includes('--cpu-prof'),
    strict: args.includes('--strict'),
  };
}

async function loadSection(name: string): Promise<Section> {
  const module = (await import(`./sections/${name}.js`)) as { default?: Section };
  if (typeof module.default?.run !== 'function') {
    throw new Error(`bench/sections/${name}.ts has no default export with run()`);
  }
  return module.default;
}

/** Runs the named sections (files under bench/sections/) in order; resolves to the exit status. */
export async function runBench(sections: readonly string[], options: RunOptions): Promise<number> {
  const unknown = (options.only ?? []).filter((n) => !sections.includes(n));
  if (unknown.length > 0) {
    console.error(`unknown section(s) ${unknown.join(', ')}; known: ${sections.join(', ')}`);
    return 2;
  }
  const chosen = sections.filter((name) => options.only?.includes(name) ?? true);
  const modules = await Promise.all(chosen.map((name) => loadSection(name)));
  const config = loadConfig();
  const rec = new Recorder();
  const h = new Harness({ config, rec, cpuProf: options.cpuProf });
  const at = new Date().toISOString();
  const started = performance.now();
  const { commit, dirty } = currentCommit();
  const machine = machineAtStart();
  rec.say(
    `Tally benchmark ${h.runId} at ${commit.slice(0, 7)}${dirty ? ' (uncommitted changes)' : ''}: ` +
      `${machine.cores} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, ` +
      `load average ${machine.loadAverageAtStart.join(' ')}`,
  );
  rec.say(
    `worker config: TALLY_PAGE_SIZE=${config.pageSize} TALLY_WORKER_CONCURRENCY=${config.workerConcurrency} ` +
      `TALLY_ENTITY_CACHE_MS=${config.entityCacheMs} TALLY_FLUSH_INTERVAL_MS=${config.flushIntervalMs}`,
  );
  if (options.cpuProf) await mkdir(join(RESULTS_DIR, '..', 'profiles'), { recursive: true });
  try {
    await h.open();
    for (const section of modules) await section.run(h);
  } catch (error) {
    rec.fail(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  } finally {
    await h.close();
  }
  const seconds = (performance.now() - started) / 1000;
  for (const line of closingReport(rec.figures, rec.notes)) rec.say(line);
  rec.say(
    `\n${rec.checks.length} invariant checks, ${rec.checks.filter((c) => !c.ok).length} failed; ${fmt(seconds)} s in all`,
  );
  const results: Results = {
    runId: h.runId,
    at,
    seconds: Math.round(seconds),
    commit,
    dirty,
    sections: chosen,
    complete: chosen.length === sections.length,
    machine: { ...machine, loadAverageAtEnd: loadAverageNow() },
    config: {
      pageSize: config.pageSize,
      workerConcurrency: config.workerConcurrency,
      entityCacheMs: config.entityCacheMs,
      flushIntervalMs: config.flushIntervalMs,
      sealGraceMs: config.sealGraceMs,
    },
    figures: rec.figures,
    checks: rec.checks,
    notes: rec.notes,
    missed: rec.missed.map((f) => f.id),
    failures: rec.failures,
    ok: !rec.failed,
  };
  rec.say(`results: ${await writeResults(results)}`);
  if (rec.failed) {
    rec.say('FAILED');
    return 1;
  }
  if (options.strict && rec.missed.length > 0) {
    rec.say(`FAILED under --strict: ${rec.missed.length} target(s) MISSED`);
    return 1;
  }
  rec.say(rec.missed.length > 0 ? `ok, with ${rec.missed.length} target(s) MISSED` : 'ok');
  return 0;
}
