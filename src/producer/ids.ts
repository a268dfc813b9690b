// Report ids and partition choice: pure functions of a string and a clock.
// Must stay stable: changing the hash moves a report_id to another partition.
import { randomFillSync, randomInt } from 'node:crypto';

/**
 * A UUIDv7 generator (RFC 9562): 48-bit UnixMilli, then a 12-bit counter (seeded at
 * random each millisecond) so ids minted in one millisecond still sort in order, then
 * 62 random bits. A clock that steps back reuses the last millisecond, never goes back.
 */
export function createUuidV7(now: () => number = Date.now): () => string {
  let lastMs = -1;
  let counter = 0;
  const bytes = Buffer.alloc(16);
  // Random bytes are drawn 4 KiB at a time: one randomFillSync per id was 12% of report().
  const pool = Buffer.alloc(4096);
  let poolOffset = pool.length;
  return () => {
    let ms = now();
    if (ms > lastMs) {
      counter = randomInt(0x800); // top bit clear: room to count up within the millisecond
    } else if (counter < 0xfff) {
      ms = lastMs;
      counter += 1;
    } else {
      ms = lastMs + 1; // counter exhausted: borrow the next millisecond
      counter = randomInt(0x800);
    }
    lastMs = ms;
    bytes.writeUIntBE(ms, 0, 6);
    bytes[6] = 0x70 | (counter >> 8);
    bytes[7] = counter & 0xff;
    if (poolOffset === pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    pool.copy(bytes, 8, poolOffset, poolOffset + 8);
    poolOffset += 8;
    bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
    const h = bytes.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
}

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  let ascii = true;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    // An ASCII character is its own UTF-8 byte: no buffer per id (every minted id is ASCII).
    if (code > 0x7f) {
      ascii = false;
      break;
    }
    hash ^= code;
    hash = Math.imul(hash, 0x01000193);
  }
  if (ascii) return hash >>> 0;
  hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The partition (0..partitions-1) a report_id always lands in. */
export function partitionOf(reportId: string, partitions: number): number {
  return fnv1a32(reportId) % partitions;
}
