// The ingest server's bounds in time and shape: how long a request and an idle socket may
// last, how many connections may be open, and how deeply a JSON body may nest. Depth is
// checked by a linear pre-scan of the raw text before JSON.parse, which would otherwise
// spend about a second of event loop on 4 MiB of nested brackets. Must never parse a body
// it has not scanned, nor let a bound default to "unlimited".
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../config.js';

export interface IngestLimits {
  /** Longest time to receive a whole request (headers and body); 408 and close after. */
  requestTimeoutMs: number;
  /** Longest a socket may sit without traffic (also between keep-alive requests). */
  connectionTimeoutMs: number;
  /** Open connections beyond this are closed as soon as they are accepted. */
  maxConnections: number;
  /** Deepest nesting of arrays and objects a JSON body may have; 400 beyond. */
  maxJsonDepth: number;
}

export function ingestLimitsFromConfig(config: Config): IngestLimits {
  return {
    requestTimeoutMs: config.ingestRequestTimeoutMs,
    connectionTimeoutMs: config.ingestConnectionTimeoutMs,
    maxConnections: config.ingestMaxConnections,
    maxJsonDepth: config.ingestMaxJsonDepth,
  };
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = ingestLimitsFromConfig(loadConfig({}));

/** A body nested deeper than the limit: refused before it is parsed. */
export class JsonTooDeepError extends Error {
  override readonly name = 'JsonTooDeepError';
  readonly code = 'TALLY_JSON_TOO_DEEP';
  readonly statusCode = 400;
  constructor(readonly maxDepth: number) {
    super(
      `the JSON nests deeper than ${maxDepth} levels; a report is an object, or an array of them`,
    );
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * True when `text` opens more than `maxDepth` arrays/objects at once, counting only
 * brackets outside strings. One pass, no allocation; malformed JSON is left to the parser.
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i += 1;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth -= 1;
    }
  }
  return false;
}

/** The fastify factory options that bound time and sockets. */
export function serverLimitOptions(limits: IngestLimits): {
  requestTimeout: number;
  connectionTimeout: number;
  keepAliveTimeout: number;
  http: ServerOptions;
} {
  return {
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: Math.min(limits.connectionTimeoutMs, 72_000),
    http: {
      // Node enforces requestTimeout only when it sweeps its connections (every 30 s by
      // default); sweep often enough that the timeout means what it says.
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(1_000, Math.floor(limits.requestTimeoutMs / 4)),
      ),
      headersTimeout: limits.requestTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
    },
  };
}

/** Applies the socket bounds fastify has no option for, and the depth-checked JSON parser. */
export function applyIngestLimits<L extends FastifyBaseLogger>(
  server: FastifyInstance<Server, IncomingMessage, ServerResponse, L>,
  limits: IngestLimits,
): void {
  server.server.maxConnections = limits.maxConnections;
  const parseJson = server.getDefaultJsonParser('error', 'error');
  server.removeContentTypeParser('application/json');
  server.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (nestsDeeperThan(text, limits.maxJsonDepth)) {
      done(new JsonTooDeepError(limits.maxJsonDepth), undefined);
      return;
    }
    void parseJson(request, text, done);
  });
}
