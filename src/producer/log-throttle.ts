// Keeps a flood of identical failures (bad requests, a Redis outage) from flooding the
// logs: at most one line per interval, carrying how many were suppressed since.
// Must never hide the event itself: callers log every occurrence at debug as well.

export class LogThrottle {
  private lastAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The suppressed count to report when a line may be written now; undefined when it may not. */
  take(): number | undefined {
    const at = this.now();
    if (at - this.lastAt < this.intervalMs) {
      this.suppressed += 1;
      return undefined;
    }
    const suppressed = this.suppressed;
    this.lastAt = at;
    this.suppressed = 0;
    return suppressed;
  }
}
