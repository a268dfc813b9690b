// Reads and deletes the stream entries of one window, a page at a time. Deleting is
// only ever done after the page's reports are committed (see batch-processor.ts).
import type { RedisClient } from '../redis.js';
import { REPORT_FIELD, type StreamEntry } from '../contract/keys.js';

/** Up to `count` oldest entries with ids in [start, end) milliseconds. */
export async function readWindowPage(
  redis: RedisClient,
  key: string,
  start: number,
  end: number,
  count: number,
): Promise<StreamEntry[]> {
  // An end id without a sequence number means "every sequence of that millisecond".
  const raw = await redis.xrange(key, `${start}-0`, `${end - 1}`, 'COUNT', count);
  return raw.map(([id, fields]) => {
    let payload: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === REPORT_FIELD) payload = fields[i + 1];
    }
    return { id, payload };
  });
}

export async function deleteEntries(redis: RedisClient, key: string, ids: string[]): Promise<void> {
  if (ids.length > 0) await redis.xdel(key, ...ids);
}
