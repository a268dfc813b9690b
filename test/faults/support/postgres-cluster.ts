// A dedicated PostgreSQL 15 cluster for one scenario (its own data dir, port and socket
// dir), so a test may stop it with `-m immediate` without touching the shared server.
// initdb refuses to run as root: every pg binary runs as the postgres user.
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { migrate } from '../../../src/db/migrate.js';
import { freePort } from './processes.js';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface DedicatedPostgres {
  port: number;
  /** URL of the migrated database `tally`. */
  url: string;
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate`: no shutdown checkpoint, connections cut at once. */
  stopImmediately(): Promise<void>;
  cleanup(): Promise<void>;
}

async function asPostgres(binary: string, args: string[]): Promise<string> {
  const { stdout } = await run('runuser', ['-u', 'postgres', '--', join(BIN, binary), ...args], {
    timeout: 60_000,
  });
  return stdout;
}

export async function startDedicatedPostgres(): Promise<DedicatedPostgres> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'tally-pg-'));
  const { uid, gid } = await lookupPostgres();
  await chown(dir, uid, gid);
  const data = join(dir, 'data');
  await asPostgres('initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  let running = false;
  const start = async () => {
    await asPostgres('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`,
      '-w',
      '-t',
      '60',
      'start',
    ]);
    running = true;
  };
  const stopImmediately = async () => {
    await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    running = false;
  };
  await start();
  await asPostgres('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'tally']);
  const url = `postgresql://postgres@127.0.0.1:${port}/tally`;
  await migrate(url);
  return {
    port,
    url,
    start,
    stopImmediately,
    cleanup: async () => {
      if (running) await stopImmediately().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function lookupPostgres(): Promise<{ uid: number; gid: number }> {
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}
