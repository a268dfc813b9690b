// The spool's on-disk record format, as pure functions over buffers: one record per
// spooled request, framed as [u32 payload length][u32 CRC32 of the payload][payload], big
// endian, the payload being JSON `{"t": spooledAtMs, "r": [report, ...]}` with every
// report_id already assigned. Must never return a record whose checksum does not match,
// nor read past a frame it cannot trust: decoding stops there.
import { crc32 } from 'node:zlib';
import type { StoredReport } from '../../contract/index.js';

export const HEADER_BYTES = 8;
/** A frame claiming more than this is damage, not a record (a request body is ≤ 256 MiB). */
export const MAX_PAYLOAD_BYTES = 512 * 1024 * 1024;

export interface SpoolRecord {
  /** When the ingest server spooled it (UnixMilli). */
  spooledAt: number;
  reports: StoredReport[];
}

export function encodeRecord(record: SpoolRecord): Buffer {
  const payload = Buffer.from(JSON.stringify({ t: record.spooledAt, r: record.reports }), 'utf8');
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(crc32(payload), 4);
  payload.copy(frame, HEADER_BYTES);
  return frame;
}

export interface DecodedSegment {
  records: SpoolRecord[];
  /** Bytes holding whole, checked records; everything from here on was not trusted. */
  validBytes: number;
  /** Why decoding stopped before the end, if it did. */
  damage?: { offset: number; reason: 'torn' | 'checksum' | 'payload' };
}

/** Decodes every whole record from the start of `buffer`, stopping at the first damage. */
export function decodeSegment(buffer: Buffer): DecodedSegment {
  const records: SpoolRecord[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const damage = (reason: 'torn' | 'checksum' | 'payload'): DecodedSegment => ({
      records,
      validBytes: offset,
      damage: { offset, reason },
    });
    if (buffer.length - offset < HEADER_BYTES) return damage('torn');
    const length = buffer.readUInt32BE(offset);
    const checksum = buffer.readUInt32BE(offset + 4);
    if (length > MAX_PAYLOAD_BYTES) return damage('checksum');
    const end = offset + HEADER_BYTES + length;
    if (end > buffer.length) return damage('torn');
    const payload = buffer.subarray(offset + HEADER_BYTES, end);
    if (crc32(payload) !== checksum) return damage('checksum');
    const record = parsePayload(payload);
    if (record === undefined) return damage('payload');
    records.push(record);
    offset = end;
  }
  return { records, validBytes: offset };
}

function parsePayload(payload: Buffer): SpoolRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { t, r } = value as { t?: unknown; r?: unknown };
  if (typeof t !== 'number' || !Array.isArray(r)) return undefined;
  const reports = r as unknown[];
  const wellFormed = reports.every(
    (report) =>
      typeof report === 'object' &&
      report !== null &&
      typeof (report as { report_id?: unknown }).report_id === 'string',
  );
  return wellFormed ? { spooledAt: t, reports: reports as StoredReport[] } : undefined;
}
