// The producer's Redis connection policy: how an owned connection is opened (no offline
// queue, bounded timeouts, endless background reconnects) and how a call waits for it.
// Must never let a call wait past its deadline or queue a command for a later connection.
import { Redis } from 'ioredis';
import { openRedis, type RedisClient, type RedisTarget } from '../redis.js';
import type { Logger } from '../logger.js';
import { LogThrottle } from './log-throttle.js';

/** A timer as a promise that rejects when it fires; `clear()` it when the work is done. */
export class Deadline {
  readonly expired: Promise<never>;
  private timer: NodeJS.Timeout | undefined;

  constructor(ms: number, onExpiry: () => Error) {
    this.expired = new Promise<never>((_, reject) => {
      this.timer = setTimeout(() => reject(onExpiry()), ms);
    });
    this.expired.catch(() => undefined); // observed by whichever race awaits it
  }

  async race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/** Calls sent in one millisecond, and how many of them still wait for their reply. */
export interface CallGroup {
  readonly at: number;
  waiting: number;
}

/**
 * The bound on every call to a ready single Redis the producer opened, with no timer per
 * call: calls are counted in groups by the millisecond they were sent, and a check every
 * `timeoutMs / 5` (only while calls wait) drops the connection once the oldest group still
 * waiting is `timeoutMs` old. Replies on one connection come in order, so a command that
 * old means the connection has stopped answering. The drop rejects every command in flight
 * (no resend, no offline queue: see openConnection) and ioredis reconnects in the
 * background, as after any lost connection. A call so rejected fails between `timeoutMs`
 * and `1.2 × timeoutMs` (plus the check's own lateness) after it was sent.
 */
export class StallWatch {
  /** Oldest first; groups whose calls all settled are dropped by the check. */
  private groups: CallGroup[] = [];
  private current: CallGroup | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly timeoutMs: number,
    private readonly onStall: (waitedMs: number) => void,
  ) {}

  /** Counts one call as sent now; hand the group back to `settled` when it has its answer. */
  sent(): CallGroup {
    const now = Date.now();
    let group = this.current;
    if (group === undefined || group.at !== now) {
      group = { at: now, waiting: 0 };
      this.current = group;
      this.groups.push(group);
      this.timer ??= setInterval(() => this.check(), Math.max(10, this.timeoutMs / 5)).unref();
    }
    group.waiting += 1;
    return group;
  }

  settled(group: CallGroup): void {
    group.waiting -= 1;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    let first = 0;
    while (first < this.groups.length && (this.groups[first] as CallGroup).waiting <= 0) first += 1;
    if (first > 0) this.groups = this.groups.slice(first);
    const oldest = this.groups[0];
    if (oldest === undefined) {
      this.current = undefined;
      this.stop(); // nothing waits: no timer while the producer is idle
      return;
    }
    const waited = Date.now() - oldest.at;
    if (waited < this.timeoutMs || this.redis.status !== 'ready') return;
    // Its calls are rejected by the drop; later calls start new groups on a new connection.
    this.groups = [];
    this.current = undefined;
    this.stop();
    this.onStall(waited);
    this.redis.disconnect(true);
  }
}

/** Opens a connection the producer owns (Redis or Redis Cluster), tuned to fail fast and recover by itself. */
export function openConnection(
  target: RedisTarget,
  timeoutMs: number,
  logger: Logger,
): RedisClient {
  const redis = openRedis(target, {
    // A command is written now or rejected now; a queued report would outlive the
    // caller's timeout and could be stored after the caller was told it failed.
    enableOfflineQueue: false,
    // Commands issued in one event-loop tick go out in one write: 256 concurrent report()
    // calls cost a few syscalls, not 256.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: timeoutMs,
    // No commandTimeout: its timer per command (and the object it leaves in dictionary mode)
    // cost report() about a tenth of its rate. A ready connection's calls are bounded by a
    // StallWatch instead, which drops the connection; a drop must reject at once, not after
    // waiting for a peer that has stopped answering to close its side.
    disconnectTimeout: 0,
    // A connection that stops answering is dropped and rebuilt rather than trusted.
    socketTimeout: Math.max(2 * timeoutMs, 1_000),
    // Never gives up: the producer recovers by itself when Redis comes back.
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  });
  if (redis instanceof Redis) clearSocketTimerOnClose(redis);
  const throttle = new LogThrottle();
  let failing = false;
  redis.on('error', (error: Error) => {
    failing = true;
    const suppressed = throttle.take();
    const fields = { err: { message: error.message }, suppressed };
    if (suppressed === undefined) logger.debug(fields, 'Redis connection error');
    else logger.warn(fields, 'Redis connection error; reconnecting in the background');
  });
  redis.on('ready', () => {
    if (failing) logger.info('Redis connection restored');
    failing = false;
  });
  return redis;
}

/**
 * ioredis 5 keeps the `socketTimeout` timer on the client rather than on the socket it
 * watches, and clears it only when data arrives. A timer armed on a connection that then
 * closed (a StallWatch drop, a Redis restart) fires on the next connection and destroys
 * it, healthy or not, one `socketTimeout` after the command that armed it
 * (redis/ioredis#2147, fixed in ioredis 6). Cleared here when its connection closes.
 * A cluster's node connections, as openRedis makes them, never reconnect: each socket gets
 * a client of its own, so they are not affected.
 */
function clearSocketTimerOnClose(redis: Redis): void {
  const client = redis as unknown as { socketTimeoutTimer?: NodeJS.Timeout };
  redis.on('close', () => {
    clearTimeout(client.socketTimeoutTimer);
    client.socketTimeoutTimer = undefined;
  });
}

/**
 * Resolves once `redis` is ready. Waits (until the deadline) only for a connection
 * attempt in progress; with none, fails at once, so a gateway does not pay the whole
 * timeout on every report during an outage.
 */
export async function untilReady(
  redis: RedisClient,
  deadline: Deadline,
  unavailable: (reason: string) => Error,
): Promise<void> {
  switch (redis.status) {
    case 'ready':
      return;
    case 'wait':
      redis.connect().catch(() => undefined);
      break;
    case 'connecting':
    case 'connect':
      break;
    case 'end':
      throw unavailable('the connection is closed');
    default:
      throw unavailable(`connection ${redis.status}`);
  }
  let unsubscribe = (): void => undefined;
  const settled = new Promise<void>((resolve, reject) => {
    unsubscribe = watchAttempt(redis, (failed) =>
      failed ? reject(unavailable('the connection attempt failed')) : resolve(),
    );
  });
  try {
    await deadline.race(settled);
  } finally {
    unsubscribe();
  }
}

type AttemptWatcher = (failed: boolean) => void;
const attempts = new WeakMap<RedisClient, AttemptWatchers>();

/**
 * The callers waiting on one connection attempt. They share one pair of listeners on the
 * connection, so a burst of reports during a reconnect does not pile listeners onto it;
 * the pair goes when the attempt ends or its last watcher leaves.
 */
class AttemptWatchers {
  private readonly members = new Set<AttemptWatcher>();
  private readonly onReady = () => this.settle(false);
  private readonly onClose = () => this.settle(true);

  constructor(private readonly redis: RedisClient) {
    redis.once('ready', this.onReady);
    redis.once('close', this.onClose);
  }

  add(watcher: AttemptWatcher): () => void {
    this.members.add(watcher);
    return () => {
      this.members.delete(watcher);
      if (this.members.size === 0) this.detach();
    };
  }

  private settle(failed: boolean): void {
    this.detach();
    for (const member of this.members) member(failed);
  }

  private detach(): void {
    this.redis.off('ready', this.onReady);
    this.redis.off('close', this.onClose);
    if (attempts.get(this.redis) === this) attempts.delete(this.redis);
  }
}

/** Calls `watcher` when the connection attempt in progress ends; returns the unsubscribe. */
function watchAttempt(redis: RedisClient, watcher: AttemptWatcher): () => void {
  let group = attempts.get(redis);
  if (!group) {
    group = new AttemptWatchers(redis);
    attempts.set(redis, group);
  }
  return group.add(watcher);
}
