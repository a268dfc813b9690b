// When an audit row is old enough to move to the archive: GPUStack's rule, as a pure
// function. Must never read a clock; the caller passes "now".

/**
 * `now` minus `months` calendar months, in UTC, the day clamped to the target month's
 * length and the time of day kept (13 months before 2027-05-31 10:00 is 2026-04-30 10:00),
 * as GPUStack's usage_details_archiver computes its cutoff. A row is past retention when
 * its completed_at, or its created_at when completed_at is NULL, is before the cutoff.
 */
export function retentionCutoff(now: Date, months: number): Date {
  const totalMonths = now.getUTCFullYear() * 12 + now.getUTCMonth() - months;
  const year = Math.floor(totalMonths / 12);
  const month = totalMonths - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const cutoff = new Date(now.getTime());
  cutoff.setUTCFullYear(year, month, Math.min(now.getUTCDate(), lastDay));
  return cutoff;
}
