// A redis-server process of the caller's own on loopback, for tests and the bench: its own
// free port, its own temp dir (log and data files), so a caller may SIGKILL, SIGSTOP or
// pause it without touching the shared Redis others use. devkit/redis-cluster.ts starts
// its nodes with the same spawn and readiness probe. Must never touch the shared Redis;
// `cleanup()` kills the server and removes its dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './services.js';

/** How a dedicated server persists: an AOF fsynced on every write or every second, or nothing. */
export type Persistence = 'always' | 'everysec' | 'none';

/** Spawns redis-server on 127.0.0.1:`port` with `dir` for its files and log, no RDB snapshots. */
export function spawnRedisServer(
  port: number,
  dir: string,
  extraArgs: readonly string[],
): ChildProcess {
  return spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--logfile',
      join(dir, 'redis.log'),
      ...extraArgs,
    ],
    { stdio: 'ignore' },
  );
}

/** Resolves when the server on `port` answers PING; fails at once if `child` has exited. */
export async function waitUntilAnswering(port: number, child: ChildProcess): Promise<void> {
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    // Each probe is bounded, so a server that accepts but never answers cannot stall the wait.
    connectTimeout: 1_000,
    commandTimeout: 1_000,
  });
  probe.on('error', () => undefined); // refused while the server starts: expected
  try {
    await waitFor(
      `redis-server on port ${port}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode})`);
        if (probe.status !== 'ready') {
          probe.disconnect();
          await probe.connect();
        }
        return (await probe.ping()) === 'PONG' ? true : undefined;
      },
      20_000,
      50,
    );
  } finally {
    probe.disconnect();
  }
}

export interface DedicatedRedis {
  port: number;
  url: string;
  dir: string;
  pid(): number | undefined;
  /** Starts the server (again) on the same port and dir; resolves when it answers PING. */
  start(): Promise<void>;
  /** Kills with `signal` and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP / SIGCONT: the port stays open but nothing answers. */
  freeze(): void;
  thaw(): void;
  /** An admin connection of the caller's own (opened on demand, reconnects by itself). */
  admin(): Redis;
  /** Kills the server and removes its dir. */
  cleanup(): Promise<void>;
}

export async function startDedicatedRedis(
  persistence: Persistence = 'always',
): Promise<DedicatedRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'tally-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  const persistenceArgs =
    persistence === 'none'
      ? ['--appendonly', 'no']
      : ['--appendonly', 'yes', '--appendfsync', persistence];
  let child: ChildProcess | undefined;
  let admin: Redis | undefined;

  const start = async () => {
    child = spawnRedisServer(port, dir, persistenceArgs);
    await waitUntilAnswering(port, child);
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exit = once(c, 'exit');
    if (c.killed && signal !== 'SIGKILL') c.kill('SIGCONT');
    c.kill(signal);
    await exit;
  };

  const cleanup = async () => {
    admin?.disconnect();
    child?.kill('SIGCONT');
    await kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await start();
  } catch (error) {
    await cleanup();
    throw error;
  }
  return {
    port,
    url,
    dir,
    pid: () => child?.pid,
    start,
    kill,
    freeze: () => void child?.kill('SIGSTOP'),
    thaw: () => void child?.kill('SIGCONT'),
    admin: () => {
      if (admin === undefined) {
        admin = new Redis(url, { maxRetriesPerRequest: 1 });
        admin.on('error', () => undefined); // the server is killed on purpose
      }
      return admin;
    },
    cleanup,
  };
}
