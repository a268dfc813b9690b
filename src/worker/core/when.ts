// When a report happened and which rollup day it belongs to.
import type { UsageReport } from '../../contract/report.js';

/** The report's instant in UnixMilli: completed_at, else started_at, else processing time. */
export function reportInstant(report: UsageReport, processedAt: number): number {
  return report.completed_at ?? report.started_at ?? processedAt;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar date (YYYY-MM-DD) of an instant in an IANA time zone. */
export function calendarDate(instant: number, timeZone: string): string {
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
