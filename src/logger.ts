// Structured logging (pino). Loggers carry ids, windows and counts; never a whole
// report or a secret: the redaction list below is the last line of defence.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        'req.headers["x-gpustack-auth-token"]',
        'req.headers.authorization',
        '*.password',
        '*.token',
        'token',
        'password',
      ],
      censor: '[redacted]',
    },
  });
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * An error's first meaningful line, for a log field or a one-line message. Prisma opens
 * its messages with blank lines and an "Invalid `prisma.…()` invocation:" banner.
 */
export function errorLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const lines = text.split('\n').map((line) => line.trim());
  return (
    lines.find((line) => line !== '' && !/^Invalid `.*` invocation:?$/.test(line)) ??
    (lines.find((line) => line !== '') || 'unknown error')
  );
}
