// A worker process for the benchmark: the real startWorker(), driven over IPC by
// bench/workers.ts (seal now, stop), reporting on stop its peak RSS (the kernel's VmHWM)
// and the CPU it spent since it was ready, so module loading is not counted.
// Holds no benchmark logic of its own.
import { readFileSync } from 'node:fs';
import { createPrisma } from '../src/db/client.js';
import { createLogger } from '../src/logger.js';
import { startWorker, type WorkerConfig } from '../src/worker/worker.js';

export interface WorkerChildOptions {
  config: WorkerConfig;
  databaseUrl: string;
  /** Run the BullMQ sealer scheduler (the latency run); otherwise the parent says when. */
  seal: boolean;
}

export type ToWorker = { type: 'seal' } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'sealed'; windows: number }
  | { type: 'stopped'; peakRssBytes: number; cpuMsSinceReady: number };

function peakRssBytes(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match?.[1] === undefined ? process.memoryUsage().rss : Number(match[1]) * 1024;
}

function send(message: FromWorker): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as WorkerChildOptions;
  const prisma = createPrisma(options.databaseUrl);
  const logger = createLogger('warn', 'bench-worker');
  const worker = await startWorker({ config: options.config, prisma, logger, seal: options.seal });
  const atReady = process.cpuUsage();
  process.on('message', (message: ToWorker) => {
    if (message.type === 'seal') {
      worker.sealNow().then(
        (windows) => send({ type: 'sealed', windows }),
        (error: unknown) => {
          console.error('bench worker: seal failed', error);
          process.exit(1);
        },
      );
    } else {
      void (async () => {
        await worker.close();
        await prisma.$disconnect();
        const usage = process.cpuUsage(atReady);
        send({
          type: 'stopped',
          peakRssBytes: peakRssBytes(),
          cpuMsSinceReady: (usage.user + usage.system) / 1000,
        });
        process.disconnect();
      })();
    }
  });
  send({ type: 'ready' });
}

main().catch((error: unknown) => {
  console.error('bench worker: failed', error);
  process.exit(1);
});
