// Reads and deletes the stream entries of one window, a page at a time. Deleting is
// only ever done after the page's reports are committed (see batch-processor.ts).
import type { RedisClient } from '../redis.js';
import { REPORT_FIELD, type StreamEntry } from '../contract/keys.js';

/** The report field's name as the bytes Redis replies with. */
const REPORT_FIELD_BYTES = Buffer.from(REPORT_FIELD);

/** Up to `count` oldest entries with ids in [start, end) milliseconds. */
export async function readWindowPage(
  redis: RedisClient,
  key: string,
  start: number,
  end: number,
  count: number,
): Promise<StreamEntry[]> {
  // An end id without a sequence number means "every sequence of that millisecond".
  return readEntries(redis, key, `${start}-0`, `${end - 1}`, count);
}

/** Up to `count` oldest entries with ids from `first` to `last`, both included. */
export async function readEntries(
  redis: RedisClient,
  key: string,
  first: string,
  last: string,
  count: number,
): Promise<StreamEntry[]> {
  // Read as Buffers: a string reply is the same reply copied into new arrays of strings, and
  // only the id and the report field's value are needed as text.
  const raw = await redis.xrangeBuffer(key, first, last, 'COUNT', count);
  return raw.map(([id, fields]) => {
    let payload: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i]?.equals(REPORT_FIELD_BYTES) === true) payload = fields[i + 1]?.toString();
    }
    return { id: id.toString('latin1'), payload };
  });
}

export async function deleteEntries(redis: RedisClient, key: string, ids: string[]): Promise<void> {
  if (ids.length > 0) await redis.xdel(key, ...ids);
}
