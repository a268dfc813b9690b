// The retention cutoff: calendar months back from now, in UTC, the day clamped, as
// GPUStack's archiver computes it.
import { describe, expect, it } from 'vitest';
import { retentionCutoff } from '../../../src/worker/core/retention.js';

const at = (iso: string) => new Date(iso);

describe('retentionCutoff', () => {
  it('goes back calendar months, keeping the day and the time of day', () => {
    expect(retentionCutoff(at('2026-05-07T03:00:00.250Z'), 13)).toEqual(
      at('2025-04-07T03:00:00.250Z'),
    );
    expect(retentionCutoff(at('2026-11-28T10:00:00Z'), 1)).toEqual(at('2026-10-28T10:00:00Z'));
  });

  it('clamps the day to the target month', () => {
    expect(retentionCutoff(at('2027-05-31T10:00:00Z'), 13)).toEqual(at('2026-04-30T10:00:00Z'));
    expect(retentionCutoff(at('2024-03-31T00:00:00Z'), 1)).toEqual(at('2024-02-29T00:00:00Z'));
    expect(retentionCutoff(at('2025-03-31T00:00:00Z'), 1)).toEqual(at('2025-02-28T00:00:00Z'));
  });

  it('crosses years both ways and works in UTC whatever the local zone', () => {
    expect(retentionCutoff(at('2026-01-15T23:30:00Z'), 1)).toEqual(at('2025-12-15T23:30:00Z'));
    expect(retentionCutoff(at('2026-12-01T00:00:00Z'), 24)).toEqual(at('2024-12-01T00:00:00Z'));
    expect(retentionCutoff(at('2026-01-31T00:00:00Z'), 0)).toEqual(at('2026-01-31T00:00:00Z'));
  });
});
