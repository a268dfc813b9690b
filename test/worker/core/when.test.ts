// A report's instant (completed_at, else started_at, else processing time) and its
// rollup date in the configured time zone.
import { describe, expect, it } from 'vitest';
import { calendarDate, reportInstant } from '../../../src/worker/core/when.js';
import { storedReport } from '../../support/fixtures.js';

const STARTED = Date.UTC(2026, 10, 26, 10, 0, 0);
const COMPLETED = Date.UTC(2026, 10, 26, 10, 0, 7, 250);
const PROCESSED = Date.UTC(2026, 10, 27, 3, 0, 0);

describe('reportInstant', () => {
  it.each([
    {
      name: 'completed_at beats started_at',
      started: STARTED,
      completed: COMPLETED,
      is: COMPLETED,
    },
    { name: 'completed_at alone', started: undefined, completed: COMPLETED, is: COMPLETED },
    {
      name: 'started_at beats processing time',
      started: STARTED,
      completed: undefined,
      is: STARTED,
    },
    {
      name: 'processing time when neither is reported',
      started: undefined,
      completed: undefined,
      is: PROCESSED,
    },
    { name: '0 means not reported (GPUStack sends 0)', started: 0, completed: 0, is: PROCESSED },
    {
      name: 'a negative completed_at falls back to started_at',
      started: STARTED,
      completed: -5,
      is: STARTED,
    },
  ])('$name', ({ started, completed, is }) => {
    const report = storedReport({ model: 'm', started_at: started, completed_at: completed });
    expect(reportInstant(report, PROCESSED)).toBe(is);
  });
});

describe('calendarDate', () => {
  it.each([
    { instant: '2026-11-26T23:30:00Z', zone: 'UTC', date: '2026-11-26' },
    { instant: '2026-11-26T23:30:00Z', zone: 'Asia/Shanghai', date: '2026-11-27' },
    { instant: '2026-11-26T15:59:59.999Z', zone: 'Asia/Shanghai', date: '2026-11-26' },
    { instant: '2026-11-26T16:00:00Z', zone: 'Asia/Shanghai', date: '2026-11-27' },
    { instant: '2026-11-27T05:00:00Z', zone: 'America/Los_Angeles', date: '2026-11-26' },
    { instant: '2026-11-27T07:59:59.999Z', zone: 'America/Los_Angeles', date: '2026-11-26' },
    { instant: '2026-11-27T08:00:00Z', zone: 'America/Los_Angeles', date: '2026-11-27' },
    { instant: '2026-11-27T00:00:00Z', zone: 'UTC', date: '2026-11-27' },
    { instant: '2026-11-26T23:59:59.999Z', zone: 'UTC', date: '2026-11-26' },
    // Year boundary and leap day.
    { instant: '2026-12-31T16:00:00Z', zone: 'Asia/Shanghai', date: '2027-01-01' },
    { instant: '2028-02-29T12:00:00Z', zone: 'UTC', date: '2028-02-29' },
    // DST: Los Angeles is UTC-7 in summer, UTC-8 in winter; midnight moves with it.
    { instant: '2026-07-15T06:59:59Z', zone: 'America/Los_Angeles', date: '2026-07-14' },
    { instant: '2026-07-15T07:00:00Z', zone: 'America/Los_Angeles', date: '2026-07-15' },
    // 2026-03-08 02:00 local does not exist (clocks jump to 03:00): the day still has a date.
    { instant: '2026-03-08T09:30:00Z', zone: 'America/Los_Angeles', date: '2026-03-08' },
    { instant: '2026-03-08T07:59:59Z', zone: 'America/Los_Angeles', date: '2026-03-07' },
    // Berlin leaves summer time on 2026-10-25: midnight is UTC+2 before, UTC+1 after.
    { instant: '2026-10-24T22:00:00Z', zone: 'Europe/Berlin', date: '2026-10-25' },
    { instant: '2026-10-25T22:59:59Z', zone: 'Europe/Berlin', date: '2026-10-25' },
    { instant: '2026-10-25T23:00:00Z', zone: 'Europe/Berlin', date: '2026-10-26' },
  ])('$instant in $zone is $date', ({ instant, zone, date }) => {
    expect(calendarDate(Date.parse(instant), zone)).toBe(date);
  });

  it('writes a date PostgreSQL reads as ISO for the earliest and latest instants a report may carry', () => {
    expect(calendarDate(1, 'UTC')).toBe('1970-01-01');
    expect(calendarDate(8.64e15, 'UTC')).toBe('275760-09-13');
  });

  it('keeps separate formatters per zone (a cached zone does not leak into another)', () => {
    const instant = Date.parse('2026-11-26T23:30:00Z');
    expect(calendarDate(instant, 'Asia/Shanghai')).toBe('2026-11-27');
    expect(calendarDate(instant, 'UTC')).toBe('2026-11-26');
    expect(calendarDate(instant, 'Asia/Shanghai')).toBe('2026-11-27');
  });
});
