// A master of a real Redis Cluster (3 masters, 3 replicas) SIGKILLed under load, or frozen
// and left frozen (its replica must then take over without any socket closing). Redis
// replicates asynchronously: a report the master acknowledged just before it died may
// never have reached the replica that takes over. Without WAIT this test counts and prints
// what was lost (it asserts no number: the loss is timing-dependent); with
// TALLY_REDIS_WAIT_REPLICAS=1 no acknowledged report may be lost. Either way nothing is
// committed twice and the rollups match the audit rows. Figures: docs/redis-cluster.md.
import { afterEach, describe, expect, it } from 'vitest';
import { hashSlot, queuePrefix, streamKey } from '../../src/contract/keys.js';
import { RedisUnavailableError } from '../../src/producer/errors.js';
import type { UsageProducer } from '../../src/producer/producer.js';
import { waitFor } from '../support/services.js';
import { startClusterPipeline, type ClusterPipeline } from './support/cluster-pipeline.js';
import { startLocalCluster, type LocalCluster } from '../../devkit/redis-cluster.js';

const GATEWAYS = 16;
const LOAD_DEADLINE_MS = 90_000;

let cluster: LocalCluster | undefined;
let pipeline: ClusterPipeline | undefined;

afterEach(async () => {
  await pipeline?.close();
  await cluster?.cleanup();
  pipeline = undefined;
  cluster = undefined;
}, 120_000);

function report(i: number) {
  return {
    model: 'qwen3-8b',
    model_id: 1,
    user_id: 1 + (i % 2),
    input_token: 1 + (i % 5),
    output_token: 1,
    completed: true,
  };
}

/** Gateways calling report() back to back until stop(); acknowledged ids and refusals counted. */
function startLoad(producer: UsageProducer) {
  const acked: string[] = [];
  let refused = 0;
  let stopped = false;
  const deadline = Date.now() + LOAD_DEADLINE_MS;
  const done = Promise.all(
    Array.from({ length: GATEWAYS }, async (_, g) => {
      for (let i = g; !stopped && Date.now() < deadline; i += GATEWAYS) {
        try {
          acked.push(await producer.report(report(i)));
        } catch (error) {
          if (!(error instanceof RedisUnavailableError)) throw error;
          refused += 1;
          // A refused call fails fast; a gateway would not spin on it either.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }),
  );
  return {
    acked,
    refused: () => refused,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** How the master dies: SIGKILLed (its sockets close), or frozen (they stay open, silent). */
type Outage = 'kill' | 'freeze';

/** The victim: the master of partition 0's stream, or of BullMQ's queues (one slot). */
type Victim = 'stream' | 'queues';

interface Setting {
  waitReplicas: number;
  outage: Outage;
  victimOf: Victim;
}

async function failoverUnderLoad(setting: Setting) {
  const { waitReplicas, victimOf } = setting;
  cluster = await startLocalCluster(3, 1);
  pipeline = await startClusterPipeline(cluster);
  const p = pipeline;
  const c = cluster;
  const producer = p.producer({ redisWaitReplicas: waitReplicas, redisWaitTimeoutMs: 500 });
  const prefix = p.config.keyPrefix;
  const slot = hashSlot(
    victimOf === 'stream' ? streamKey(prefix, 0, true) : `${queuePrefix(prefix, true)}:wait`,
  );
  const victim = await c.masterOfSlot(slot);

  const load = startLoad(producer);
  try {
    return await measure(p, c, load, slot, victim, setting);
  } finally {
    await load.stop();
  }
}

async function measure(
  p: ClusterPipeline,
  c: LocalCluster,
  load: ReturnType<typeof startLoad>,
  slot: number,
  victim: Awaited<ReturnType<LocalCluster['masterOfSlot']>>,
  setting: Setting,
) {
  const { outage } = setting;
  const startedAt = Date.now();
  await waitFor('2,000 acknowledged reports before the outage', () =>
    load.acked.length >= 2_000 ? true : undefined,
  );
  const beforeKill = load.acked.length;
  const beforeKillMs = Date.now() - startedAt;
  // What the replica lacked just before the kill: the acknowledged writes at risk.
  const replicaGapBytes = await c.replicaGapBytes(victim);
  if (outage === 'kill') await c.kill(victim);
  else c.freeze(victim);
  const killedAt = Date.now();
  const promoted = await waitFor(
    "the victim's replica to take over its slots",
    async () => {
      const master = await c.masterOfSlot(slot);
      return master.port === victim.port ? undefined : master;
    },
    30_000,
    100,
  );
  const failoverMs = Date.now() - killedAt;
  if (outage === 'kill') {
    // The old master comes back as the new master's replica, so WAIT can be met again.
    await c.restart(victim);
    await c.waitHealthy();
  }
  // A frozen one stays frozen to the end: everything after this point is served without it.
  const resumedAt = load.acked.length;
  await waitFor('1,000 more acknowledged reports after the failover', () =>
    load.acked.length >= resumedAt + 1_000 ? true : undefined,
  );
  await load.stop();

  await p.drained();
  const counts = await p.auditCounts(load.acked);
  const rejected = await p.db.prisma.rejectedUsageReport.count();
  const lost = load.acked.filter((id) => !counts.has(id));
  const figures = {
    ...setting,
    acknowledged: load.acked.length,
    refused: load.refused(),
    lost: lost.length,
    failoverMs,
    replicaGapBytes,
    reportsPerSecondBeforeKill: Math.round((beforeKill / beforeKillMs) * 1000),
    promotedPort: promoted.port,
  };
  console.log(`redis cluster failover: ${JSON.stringify(figures)}`);
  expect(figures.acknowledged).toBeGreaterThanOrEqual(3_000);
  expect(rejected).toBe(0);
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
  return figures;
}

describe('a master SIGKILLed under load', () => {
  it('without WAIT: counts the acknowledged reports the failover lost', async () => {
    await failoverUnderLoad({ waitReplicas: 0, outage: 'kill', victimOf: 'stream' });
  });

  it('with TALLY_REDIS_WAIT_REPLICAS=1: loses no acknowledged report', async () => {
    const figures = await failoverUnderLoad({
      waitReplicas: 1,
      outage: 'kill',
      victimOf: 'stream',
    });
    expect(figures.lost).toBe(0);
  });
});

describe('a master frozen (SIGSTOP) under load, and left frozen: the replica takes over', () => {
  it("partition 0's master: the drain finishes, each report committed once", async () => {
    await failoverUnderLoad({ waitReplicas: 0, outage: 'freeze', victimOf: 'stream' });
  });

  it("BullMQ's master: the workers take their jobs again, each report committed once", async () => {
    await failoverUnderLoad({ waitReplicas: 0, outage: 'freeze', victimOf: 'queues' });
  });
});
