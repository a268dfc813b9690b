// Slows password guessing: per client address, the first few failed logins are free
// (typos), then each further attempt must wait twice as long as the last, up to a cap.
// Failures are logged as one line a minute with counts, never one line per attempt.
// Holds at most MAX_CLIENTS addresses, so a flood of addresses cannot grow memory.
import type { Logger } from '../logger.js';

const FREE_FAILURES = 5;
const FIRST_WAIT_MS = 500;
const MAX_WAIT_MS = 60_000;
const FORGET_AFTER_MS = 15 * 60_000;
const MAX_CLIENTS = 10_000;
const LOG_EVERY_MS = 60_000;

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

export class LoginThrottle {
  private readonly clients = new Map<string, Failures>();
  private failedSinceLog = 0;
  private readonly addressesSinceLog = new Set<string>();
  private lastLog = 0;

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** How long this client must still wait before its next attempt counts (0: go ahead). */
  waitMs(client: string): number {
    const entry = this.clients.get(client);
    if (entry === undefined) return 0;
    const now = this.now();
    if (now - entry.last > FORGET_AFTER_MS) {
      this.clients.delete(client);
      return 0;
    }
    return Math.max(0, entry.blockedUntil - now);
  }

  failed(client: string): void {
    const now = this.now();
    const entry = this.clients.get(client) ?? { count: 0, last: now, blockedUntil: 0 };
    entry.count += 1;
    entry.last = now;
    if (entry.count > FREE_FAILURES) {
      const wait = Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** (entry.count - FREE_FAILURES - 1));
      entry.blockedUntil = now + wait;
    }
    this.clients.delete(client); // re-inserted last: the map's order is oldest first
    this.clients.set(client, entry);
    if (this.clients.size > MAX_CLIENTS) {
      const oldest = this.clients.keys().next().value;
      if (oldest !== undefined) this.clients.delete(oldest);
    }
    this.failedSinceLog += 1;
    this.addressesSinceLog.add(client);
    if (now - this.lastLog >= LOG_EVERY_MS) {
      this.logger.warn(
        { failed: this.failedSinceLog, addresses: this.addressesSinceLog.size },
        'failed dashboard logins since the last line; repeated failures are slowed per address',
      );
      this.lastLog = now;
      this.failedSinceLog = 0;
      this.addressesSinceLog.clear();
    }
  }

  succeeded(client: string): void {
    this.clients.delete(client);
  }
}
