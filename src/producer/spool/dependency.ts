// The spool as one entry of the ingest server's GET /readyz: its depth, its bound and the
// age of its oldest report, `unavailable` when it is full or its last write failed.
// Must never read the disk: it reports the spool's own counts.
import type { Dependency, DependencyState } from '../../readiness.js';
import type { DiskSpool } from './spool.js';

/** Free bytes below which the spool counts as full (a request rarely needs more). */
const FULL_MARGIN_BYTES = 64 * 1024;

export function spoolDependency(spool: DiskSpool, now: () => number = Date.now): Dependency {
  return {
    name: 'spool',
    check: () => Promise.resolve(state()),
  };

  function state(): DependencyState {
    const stats = spool.stats();
    const details = {
      dir: spool.dir,
      reports: stats.reports,
      bytes: stats.bytes,
      max_bytes: stats.maxBytes,
      oldest_age_seconds:
        stats.oldestSpooledAt === undefined ? 0 : (now() - stats.oldestSpooledAt) / 1000,
    };
    if (spool.writeError !== undefined) {
      return { status: 'unavailable', message: spool.writeError, ...details };
    }
    if (stats.bytes + Math.min(FULL_MARGIN_BYTES, stats.maxBytes / 10) > stats.maxBytes) {
      return {
        status: 'unavailable',
        message: `the spool is full (TALLY_SPOOL_MAX_BYTES); it empties as Redis takes its reports`,
        ...details,
      };
    }
    return { status: 'ok', ...details };
  }
}
