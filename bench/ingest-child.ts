// The ingest server as its own process for the HTTP benchmark: the real UsageProducer and
// buildIngestServer() on an ephemeral port, which it reports to the parent over IPC.
import { silentLogger } from '../src/logger.js';
import { UsageProducer } from '../src/producer/producer.js';
import { buildIngestServer } from '../src/producer/server.js';

export interface IngestChildOptions {
  redisUrl: string;
  keyPrefix: string;
  partitions: number;
  token: string;
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as IngestChildOptions;
  const producer = new UsageProducer({
    redis: options.redisUrl,
    partitions: options.partitions,
    keyPrefix: options.keyPrefix,
  });
  await producer.ping();
  const server = buildIngestServer({ producer, gatewayToken: options.token, logger: silentLogger });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.on('message', () => {
    void server
      .close()
      .then(() => producer.close())
      .then(() => process.disconnect());
  });
  process.send?.({ type: 'ready', port });
}

main().catch((error: unknown) => {
  console.error('bench ingest: failed', error);
  process.exit(1);
});
