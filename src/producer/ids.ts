// Report ids and partition choice: pure functions of a string and a clock.
// Must stay stable: changing the hash moves a report_id to another partition.
import { randomFillSync, randomInt } from 'node:crypto';

/** The variant nibble (binary 10xx) for each hex digit of random data. */
const VARIANT_DIGIT: Record<string, string> = Object.fromEntries(
  [...'0123456789abcdef'].map((digit) => [digit, '89ab'[parseInt(digit, 16) & 3] as string]),
);

/**
 * A UUIDv7 generator (RFC 9562): 48-bit UnixMilli, then a 12-bit counter (seeded at
 * random each millisecond) so ids minted in one millisecond still sort in order, then
 * 62 random bits. A clock that steps back reuses the last millisecond, never goes back.
 */
export function createUuidV7(now: () => number = Date.now): () => string {
  let lastMs = -1;
  let counter = 0;
  // The time digits change once a millisecond, not once an id: formatted when they change.
  let timeDigits = '';
  // Random digits are drawn 4 KiB at a time and formatted as hex once per draw: one
  // randomFillSync per id was 12% of report(), one Buffer formatting per id 3%.
  const pool = Buffer.alloc(4096);
  let randomDigits = '';
  let offset = 0;
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
    if (ms !== lastMs) {
      const hex = ms.toString(16).padStart(12, '0');
      timeDigits = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7`;
    }
    lastMs = ms;
    if (offset === randomDigits.length) {
      randomFillSync(pool);
      randomDigits = pool.toString('hex');
      offset = 0;
    }
    const variant = VARIANT_DIGIT[randomDigits[offset] as string] as string;
    const id =
      timeDigits +
      counter.toString(16).padStart(3, '0') +
      '-' +
      variant +
      randomDigits.slice(offset + 1, offset + 4) +
      '-' +
      randomDigits.slice(offset + 4, offset + 16);
    offset += 16;
    return id;
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
