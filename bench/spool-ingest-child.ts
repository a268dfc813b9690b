// The ingest server with its spool as its own process, for the spool benchmark: the real
// producer, spool and buildIngestServer() on an ephemeral port, reported over IPC. Pointed
// at a Redis that refuses connections, every request takes the spool path.
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { UsageProducer } from '../src/producer/producer.js';
import { buildIngestServer } from '../src/producer/server.js';
import { openIngestSpool } from '../src/producer/spool/ingest-spool.js';
import type { IngestChildOptions } from './ingest-child.js';

/** The plain ingest child's options, and the spool's directory. */
export interface SpoolIngestChildOptions extends IngestChildOptions {
  spoolDir: string;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as SpoolIngestChildOptions;
  const config = loadConfig({
    REDIS_URL: options.redisUrl,
    TALLY_KEY_PREFIX: options.keyPrefix,
    TALLY_PARTITIONS: String(options.partitions),
    TALLY_SPOOL_DIR: options.spoolDir,
  });
  const producer = UsageProducer.fromConfig(config);
  const spool = await openIngestSpool(config, producer, silentLogger);
  if (spool === undefined) throw new Error('the spool is off');
  const server = buildIngestServer({
    producer: spool.producer,
    gatewayToken: options.token,
    logger: silentLogger,
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.on('message', () => {
    void server
      .close()
      .then(() => spool.close())
      .then(() => producer.close())
      .then(() => process.send?.({ type: 'stopped', spooled: spool.producer.spooled }))
      .then(() => process.disconnect());
  });
  process.send?.({ type: 'ready', port });
}

main().catch((error: unknown) => {
  console.error('bench spool ingest: failed', error);
  process.exit(1);
});
