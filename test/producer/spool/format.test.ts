import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import {
  decodeSegment,
  encodeRecord,
  HEADER_BYTES,
  type SpoolRecord,
} from '../../../src/producer/spool/format.js';

const record = (n: number): SpoolRecord => ({
  spooledAt: 1_700_000_000_000 + n,
  reports: [{ report_id: `r-${n}`, model: 'qwen3-8b', input_token: n } as never],
});

describe('spool record format', () => {
  it('frames a record as length, CRC32 of the payload, payload', () => {
    const frame = encodeRecord(record(1));
    const length = frame.readUInt32BE(0);
    expect(frame.length).toBe(HEADER_BYTES + length);
    const payload = frame.subarray(HEADER_BYTES);
    expect(frame.readUInt32BE(4)).toBe(crc32(payload));
    expect(JSON.parse(payload.toString('utf8'))).toEqual({
      t: 1_700_000_000_001,
      r: record(1).reports,
    });
  });

  it('decodes what it encodes, in order', () => {
    const buffer = Buffer.concat([record(1), record(2), record(3)].map(encodeRecord));
    const decoded = decodeSegment(buffer);
    expect(decoded.records).toEqual([record(1), record(2), record(3)]);
    expect(decoded.validBytes).toBe(buffer.length);
    expect(decoded.damage).toBeUndefined();
  });

  it.each([1, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 5])(
    'stops at a torn last record (cut %i bytes into it) and keeps the whole ones',
    (cut) => {
      const whole = Buffer.concat([encodeRecord(record(1)), encodeRecord(record(2))]);
      const torn = Buffer.concat([whole, encodeRecord(record(3)).subarray(0, cut)]);
      const decoded = decodeSegment(torn);
      expect(decoded.records).toEqual([record(1), record(2)]);
      expect(decoded.validBytes).toBe(whole.length);
      expect(decoded.damage).toEqual({ offset: whole.length, reason: 'torn' });
    },
  );

  it('rejects a record whose payload does not match its checksum, never half-parsing it', () => {
    const first = encodeRecord(record(1));
    const second = encodeRecord(record(2));
    second.writeUInt8(second.readUInt8(HEADER_BYTES + 3) ^ 0xff, HEADER_BYTES + 3); // one flipped byte in the JSON
    const decoded = decodeSegment(Buffer.concat([first, second, encodeRecord(record(3))]));
    expect(decoded.records).toEqual([record(1)]);
    expect(decoded.damage).toEqual({ offset: first.length, reason: 'checksum' });
  });

  it('rejects a length that cannot be a record', () => {
    const frame = encodeRecord(record(1));
    frame.writeUInt32BE(0xffffffff, 0);
    expect(decodeSegment(frame).damage?.reason).toBe('checksum');
  });

  it('rejects a checksummed payload that is not a spool record', () => {
    const payload = Buffer.from('{"t":1,"r":[{"no_id":true}]}');
    const frame = Buffer.alloc(HEADER_BYTES + payload.length);
    frame.writeUInt32BE(payload.length, 0);
    frame.writeUInt32BE(crc32(payload), 4);
    payload.copy(frame, HEADER_BYTES);
    expect(decodeSegment(frame).damage?.reason).toBe('payload');
  });
});
