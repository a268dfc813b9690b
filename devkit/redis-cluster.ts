// A real Redis Cluster on loopback, for tests and the bench: N masters (and optionally
// replicas), every node its own redis-server process on a free port with its own temp dir
// (spawned as devkit/redis-server.ts spawns one), joined by `redis-cli --cluster create`.
// A caller may SIGKILL or freeze a master and wait for its replica's failover. Must never
// touch the shared Redis; `cleanup()` kills every node, frozen ones too.
import { execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { RedisNode } from '../src/config.js';
import { spawnRedisServer, waitUntilAnswering } from './redis-server.js';
import { freePort, waitFor } from './services.js';

const run = promisify(execFile);

export interface ClusterNode extends RedisNode {
  /** The cluster bus port, chosen free like `port` (not the default port + 10000). */
  busPort: number;
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
  /** SIGSTOP / SIGCONT: its ports stay open but it answers nothing, not even its peers. */
  freeze(node: ClusterNode): void;
  thaw(node: ClusterNode): void;
  /** Starts a killed node again on its port and dir: it rejoins, as a replica if it was failed over. */
  restart(node: ClusterNode): Promise<void>;
  /** Replication bytes `master` has that its replicas have not confirmed (largest gap). */
  replicaGapBytes(master: ClusterNode): Promise<number>;
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

function spawnNode(port: number, busPort: number, dir: string): ChildProcess {
  return spawnRedisServer(port, dir, [
    '--cluster-enabled',
    'yes',
    '--cluster-port',
    String(busPort),
    '--cluster-config-file',
    join(dir, 'nodes.conf'),
    // A dead master is replaced within about a second of this timeout.
    '--cluster-node-timeout',
    '2000',
    '--appendonly',
    'no',
  ]);
}

const START_ATTEMPTS = 3;

/**
 * Starts a node in `dir` on two free ports (client and bus). A port can be taken between
 * freePort() and the server's bind, and the server then exits at once: it is started again
 * on new ports, up to START_ATTEMPTS times.
 */
async function startNode(dir: string): Promise<ClusterNode> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    const busPort = await freePort();
    const node: ClusterNode = {
      host: '127.0.0.1',
      port,
      busPort,
      dir,
      process: spawnNode(port, busPort, dir),
    };
    try {
      await waitUntilAnswering(port, node.process);
      return node;
    } catch (error) {
      if (alive(node)) {
        const exit = once(node.process, 'exit');
        node.process.kill('SIGKILL');
        await exit;
        throw error; // not a port taken: it started and did not answer
      }
      if (attempt >= START_ATTEMPTS) throw error;
    }
  }
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
      const dir = await mkdtemp(join(tmpdir(), 'tally-cluster-'));
      try {
        nodes.push(await startNode(dir));
      } catch (error) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
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

  const frozen = new Set<ClusterNode>();
  const answers = (node: ClusterNode) => alive(node) && !frozen.has(node);
  const anyAlive = () => {
    const node = nodes.find(answers);
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
    freeze(node) {
      frozen.add(node);
      node.process.kill('SIGSTOP');
    },
    thaw(node) {
      frozen.delete(node);
      node.process.kill('SIGCONT');
    },
    async restart(node) {
      node.process = spawnNode(node.port, node.busPort, node.dir);
      await waitUntilAnswering(node.port, node.process);
    },
    async replicaGapBytes(master) {
      const info = await cli(master.port, 'INFO', 'replication');
      const own = Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? 0);
      const offsets = [...info.matchAll(/slave\d+:.*?offset=(\d+)/g)].map((m) => Number(m[1]));
      return offsets.length === 0 ? own : own - Math.min(...offsets);
    },
    async waitHealthy(timeoutMs = 30_000) {
      await waitFor(
        'the cluster to serve every slot',
        async () => {
          const live = nodes.filter(answers);
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
  if (replicasPerMaster > 0) {
    // A replica that never synced may not fail over: wait until every one has.
    await waitFor(
      'every replica to sync with its master',
      async () => {
        const roles = await Promise.all(nodes.map((n) => cli(n.port, 'INFO', 'replication')));
        const replicas = roles.filter((r) => r.includes('role:slave'));
        return replicas.length === masters * replicasPerMaster &&
          replicas.every((r) => r.includes('master_link_status:up'))
          ? true
          : undefined;
      },
      30_000,
      100,
    );
  }
  return cluster;
}
