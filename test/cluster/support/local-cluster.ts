// A real Redis Cluster on loopback for one test file: N masters (and optionally one replica
// each), every node its own redis-server process on a free port with its own temp dir,
// joined by `redis-cli --cluster create`. A test may SIGKILL a master and wait for its
// replica's failover. Never touches the shared Redis; `cleanup()` kills every node.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../../../devkit/services.js';
import type { RedisNode } from '../../../src/config.js';
import { waitFor } from '../../support/services.js';

const run = promisify(execFile);

export interface ClusterNode extends RedisNode {
  process: ChildProcess;
  dir: string;
}

export interface LocalCluster {
  nodes: ClusterNode[];
  /** host:port of every node, for TALLY_REDIS_CLUSTER_NODES. */
  seeds: RedisNode[];
  /** The node currently serving `slot` as master (asked of a live node). */
  masterOfSlot(slot: number): Promise<ClusterNode>;
  /** SIGKILLs `node` and waits for its exit. */
  kill(node: ClusterNode): Promise<void>;
  /** Waits until every slot is served again and the cluster state is ok. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  cleanup(): Promise<void>;
}

function alive(node: ClusterNode): boolean {
  return node.process.exitCode === null && node.process.signalCode === null;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 30_000 });
  return stdout;
}

export async function startLocalCluster(masters = 3, replicasPerMaster = 0): Promise<LocalCluster> {
  const nodes: ClusterNode[] = [];
  const cleanup = async () => {
    await Promise.all(
      nodes.map(async (n) => {
        if (alive(n)) {
          const exit = once(n.process, 'exit');
          n.process.kill('SIGKILL');
          await exit;
        }
        await rm(n.dir, { recursive: true, force: true });
      }),
    );
  };
  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i += 1) {
      const port = await freePort();
      const dir = await mkdtemp(join(tmpdir(), 'tally-cluster-'));
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, 'nodes.conf'),
          // A dead master is replaced within about a second of this timeout.
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--logfile',
          join(dir, 'redis.log'),
        ],
        { stdio: 'ignore' },
      );
      nodes.push({ host: '127.0.0.1', port, process: child, dir });
    }
    for (const node of nodes) {
      await waitFor(
        `cluster node on port ${node.port}`,
        async () => {
          if (!alive(node)) throw new Error(`redis-server on ${node.port} exited`);
          try {
            return (await cli(node.port, 'PING')).trim() === 'PONG' ? true : undefined;
          } catch {
            return undefined;
          }
        },
        20_000,
        50,
      );
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      { timeout: 60_000 },
    );
  } catch (error) {
    await cleanup();
    throw error;
  }

  const anyAlive = () => {
    const node = nodes.find(alive);
    if (node === undefined) throw new Error('no cluster node is alive');
    return node;
  };

  const cluster: LocalCluster = {
    nodes,
    seeds: nodes.map(({ host, port }) => ({ host, port })),
    async masterOfSlot(slot) {
      const admin = new Redis(anyAlive().port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        const ranges = (await admin.call('CLUSTER', 'SLOTS')) as [
          number,
          number,
          [string, number],
        ][];
        const range = ranges.find(([from, to]) => from <= slot && slot <= to);
        const port = range?.[2][1];
        const node = nodes.find((n) => n.port === port);
        if (node === undefined) throw new Error(`no master serves slot ${slot}`);
        return node;
      } finally {
        admin.disconnect();
      }
    },
    async kill(node) {
      if (!alive(node)) return;
      const exit = once(node.process, 'exit');
      node.process.kill('SIGKILL');
      await exit;
    },
    async waitHealthy(timeoutMs = 30_000) {
      await waitFor(
        'the cluster to serve every slot',
        async () => {
          const live = nodes.filter(alive);
          const infos = await Promise.all(
            live.map((n) => cli(n.port, 'CLUSTER', 'INFO').catch(() => '')),
          );
          return infos.every((i) => i.includes('cluster_state:ok')) ? true : undefined;
        },
        timeoutMs,
        100,
      );
    },
    cleanup,
  };
  await cluster.waitHealthy();
  return cluster;
}
