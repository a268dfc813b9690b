// When a report happened and which rollup day it belongs to.
import type { UsageReport } from '../../contract/report.js';

/** The report's instant in UnixMilli: completed_at, else started_at, else processing time. */
export function reportInstant(report: UsageReport, processedAt: number): number {
  return report.completed_at ?? report.started_at ?? processedAt;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

const MINUTE_MS = 60_000;
/** The largest |instant| a Date holds. */
const MAX_DATE_MS = 8.64e15;
/** Dates of recent minutes per time zone: formatting costs microseconds, a page has thousands. */
const minuteDates = new Map<string, Map<number, string>>();

/**
 * The calendar date (YYYY-MM-DD) of an instant in an IANA time zone. Cached per minute when
 * the minute's first and last millisecond have the same date (a zone whose offset is not whole
 * minutes, e.g. a historical LMT, is computed every time around its midnights).
 */
export function calendarDate(instant: number, timeZone: string): string {
  let cache = minuteDates.get(timeZone);
  if (cache === undefined) minuteDates.set(timeZone, (cache = new Map<number, string>()));
  const minute = Math.floor(instant / MINUTE_MS);
  const hit = cache.get(minute);
  if (hit !== undefined) return hit;
  const start = minute * MINUTE_MS;
  if (Math.abs(start) + MINUTE_MS > MAX_DATE_MS) return formatDate(instant, timeZone);
  const first = formatDate(start, timeZone);
  if (formatDate(start + MINUTE_MS - 1, timeZone) !== first) return formatDate(instant, timeZone);
  if (cache.size >= 10_000) cache.clear();
  cache.set(minute, first);
  return first;
}

function formatDate(instant: number, timeZone: string): string {
  let format = formatters.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    formatters.set(timeZone, format);
  }
  // Assembled from parts, so the result does not depend on a locale's date layout.
  let year = '';
  let month = '';
  let day = '';
  for (const part of format.formatToParts(instant)) {
    if (part.type === 'year') year = part.value;
    else if (part.type === 'month') month = part.value;
    else if (part.type === 'day') day = part.value;
  }
  return `${year}-${month}-${day}`;
}
