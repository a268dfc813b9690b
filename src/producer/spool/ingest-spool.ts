// Opens the ingest server's spool from the configuration and starts its drainer: the one
// place both ingest entry points (ingest role, all-in-one) get it from. Must never open a
// spool when TALLY_SPOOL_MAX_BYTES is 0.
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
import { DependencyError } from '../../readiness.js';
import type { UsageProducer } from '../producer.js';
import { spoolDependency } from './dependency.js';
import { SpoolDrainer } from './drainer.js';
import { SpoolLockedError } from './errors.js';
import { DiskSpool } from './spool.js';
import { SpoolingProducer, type WriteTimings } from './spooling-producer.js';

export interface IngestSpool {
  spool: DiskSpool;
  producer: SpoolingProducer;
  drainer: SpoolDrainer;
  dependency: ReturnType<typeof spoolDependency>;
  /** Stops the drainer, waits for appends in progress, releases the lock. */
  close(): Promise<void>;
}

/** The spool with its drainer running, or undefined when the configuration turns it off. */
export async function openIngestSpool(
  config: Config,
  producer: UsageProducer,
  logger: Logger,
  timings?: WriteTimings,
): Promise<IngestSpool | undefined> {
  if (config.spoolMaxBytes === 0) return undefined;
  let spool: DiskSpool;
  try {
    spool = await DiskSpool.open({ dir: config.spoolDir, maxBytes: config.spoolMaxBytes, logger });
  } catch (error) {
    if (error instanceof SpoolLockedError) throw new DependencyError(error.message);
    const reason = error instanceof Error ? error.message : String(error);
    throw new DependencyError(
      `cannot open the spool directory TALLY_SPOOL_DIR (${config.spoolDir}): ${reason}; make it writable or point TALLY_SPOOL_DIR elsewhere`,
    );
  }
  const drainer = new SpoolDrainer(spool, producer, logger);
  drainer.start();
  return {
    spool,
    producer: new SpoolingProducer(producer, spool, logger, timings),
    drainer,
    dependency: spoolDependency(spool),
    close: async () => {
      await drainer.stop();
      await spool.close();
    },
  };
}
