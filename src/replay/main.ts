// `npm run replay-rejected -- [--reason r] [--since t] [--until t]`: puts recorded
// rejections back on their streams once their cause is fixed (e.g. an entity restored).
// Safe to run twice or to interrupt: see src/replay/replay.ts.
import { loadConfig, requireDatabaseUrl } from '../config.js';
import { createPrisma } from '../db/client.js';
import { createLogger } from '../logger.js';
import { run } from '../lifecycle.js';
import { UsageProducer } from '../producer/index.js';
import {
  parseReplayArgs,
  replayRejected,
  REPLAY_USAGE,
  ReplayUsageError,
  wantsHelp,
} from './replay.js';

run('replay-rejected', async () => {
  if (wantsHelp(process.argv.slice(2))) {
    console.log(REPLAY_USAGE);
    process.exit(0);
  }
  let filter;
  try {
    filter = parseReplayArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof ReplayUsageError)) throw error;
    console.error(`replay-rejected: ${error.message}`);
    process.exit(2);
  }
  const config = loadConfig();
  const prisma = createPrisma(requireDatabaseUrl(config), { max: 2 });
  const producer = UsageProducer.fromConfig(config, createLogger(config.logLevel, 'tally-replay'));
  const what = [
    filter.reason === undefined ? 'every reason' : `reason ${filter.reason}`,
    filter.since === undefined ? undefined : `since ${filter.since.toISOString()}`,
    filter.until === undefined ? undefined : `until ${filter.until.toISOString()}`,
  ].filter((p) => p !== undefined);
  console.log(`replay-rejected: replaying rejections with ${what.join(', ')}`);
  try {
    const summary = await replayRejected(
      {
        prisma,
        enqueue: (reports) => producer.reportMany(reports),
        onPage: (p) =>
          console.log(
            `replay-rejected: page ${p.page}: ${p.replayed} replayed, ${p.unreplayable} not replayable`,
          ),
      },
      filter,
    );
    console.log(
      `replay-rejected: matched ${summary.matched}, replayed ${summary.replayed}, not replayable ${summary.unreplayable} (left in place)`,
    );
    for (const [why, n] of Object.entries(summary.unreplayableWhy)) {
      console.log(`replay-rejected:   ${n} not replayable: ${why}`);
    }
  } finally {
    await producer.close();
    await prisma.$disconnect();
  }
  process.exit(0);
});
