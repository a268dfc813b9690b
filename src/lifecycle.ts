// Process lifecycle shared by every entry point: a configuration error or a missing
// dependency ends the process with its one-line message (no stack), and SIGINT/SIGTERM
// close everything once, in order.
import { ConfigError } from './config.js';
import type { Logger } from './logger.js';
import { DependencyError } from './readiness.js';

/** Runs `main`; a ConfigError or DependencyError prints its message and exits 1; anything else is logged. */
export function run(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError || error instanceof DependencyError) {
      console.error(`${name}: ${error.message}`);
    } else console.error(`${name}: failed to start:`, error);
    process.exit(1);
  });
}

/** On SIGINT/SIGTERM runs `close` once and exits; a second signal exits at once. */
export function closeOnSignals(logger: Logger, close: () => Promise<void>): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    closing = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error(
          { err: error instanceof Error ? error.message : String(error) },
          'shutdown failed',
        );
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
