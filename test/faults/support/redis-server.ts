// A dedicated redis-server for one scenario: its own port, its own temp dir, AOF with
// `appendfsync always`, so a test may SIGKILL, SIGSTOP or pause it without touching the
// shared Redis other engineers and test runs use.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from '../../support/services.js';
import { freePort } from './processes.js';

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
  /** An admin connection of the test's own (opened on demand, reconnects by itself). */
  admin(): Redis;
  cleanup(): Promise<void>;
}

export async function startDedicatedRedis(
  appendfsync: 'always' | 'everysec' = 'always',
): Promise<DedicatedRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'tally-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let admin: Redis | undefined;

  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        appendfsync,
        '--save',
        '',
        '--logfile',
        join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    const probe = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined); // refused while the server starts: expected
    try {
      await waitFor(
        `redis-server on port ${port}`,
        async () => {
          if (child?.exitCode !== null) throw new Error(`redis-server exited (${child?.exitCode})`);
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
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exit = once(c, 'exit');
    if (c.killed && signal !== 'SIGKILL') c.kill('SIGCONT');
    c.kill(signal);
    await exit;
  };

  await start();
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
    cleanup: async () => {
      admin?.disconnect();
      child?.kill('SIGCONT');
      await kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
