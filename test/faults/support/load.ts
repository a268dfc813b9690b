// An HTTP load generator for the ingest endpoint: paced, bounded in requests and time,
// loopback only. It keeps the report_ids of every acknowledged request (200) and the
// statuses of the others, so a scenario checks exactly what the gateway was told.
import { INGEST_PATH, TOKEN_HEADER } from '../../../src/producer/server.js';

export interface LoadOptions {
  base: string;
  token: string;
  /** Builds the reports of request number `n`. */
  body: (n: number) => Record<string, unknown>[];
  /** Reports per second to aim for (requests are paced accordingly). */
  ratePerSecond: number;
  reportsPerRequest: number;
  durationMs: number;
  /** Requests in flight at most. */
  concurrency: number;
  /** Hard stop, whatever happens. */
  deadlineMs?: number;
}

export interface LoadResult {
  acknowledged: string[];
  statuses: Map<number, number>;
  requests: number;
  elapsedMs: number;
  achievedPerSecond: number;
}

export async function post(
  base: string,
  token: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${base}${INGEST_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [TOKEN_HEADER]: token },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const started = Date.now();
  const hardStop = started + (options.deadlineMs ?? options.durationMs * 3);
  const totalRequests = Math.ceil(
    (options.ratePerSecond * options.durationMs) / 1000 / options.reportsPerRequest,
  );
  const intervalMs = (1000 * options.reportsPerRequest) / options.ratePerSecond;
  const acknowledged: string[] = [];
  const statuses = new Map<number, number>();
  let next = 0;

  const client = async () => {
    while (next < totalRequests && Date.now() < hardStop) {
      const n = next++;
      const due = started + n * intervalMs;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // pacing, not a condition
      let status = 0;
      try {
        const reply = await post(options.base, options.token, options.body(n));
        status = reply.status;
        if (status === 200) acknowledged.push(...(reply.json['report_ids'] as string[]));
      } catch {
        status = -1;
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  const elapsedMs = Date.now() - started;
  return {
    acknowledged,
    statuses,
    requests: next,
    elapsedMs,
    achievedPerSecond: Math.round((acknowledged.length * 1000) / elapsedMs),
  };
}
