// The stream key format has one owner: a key written by streamKey() parses back to its
// partition, and nothing else does.
import { describe, expect, it } from 'vitest';
import {
  hashSlot,
  parseStreamKey,
  queuePrefix,
  streamEntryTime,
  streamKey,
  streamKeyPattern,
} from '../../src/contract/keys.js';

describe('stream keys', () => {
  it.each([0, 1, 7, 4095])('parses partition %i back from its key', (partition) => {
    expect(parseStreamKey('tally', streamKey('tally', partition))).toBe(partition);
  });

  it('parses keys under a prefix that itself holds colons', () => {
    expect(parseStreamKey('a:b', streamKey('a:b', 3))).toBe(3);
  });

  it.each([
    ['another prefix', 'other:1:reports'],
    ['another suffix', 'tally:1:jobs'],
    ['no partition', 'tally::reports'],
    ['a non-numeric partition', 'tally:x:reports'],
    ['a negative partition', 'tally:-1:reports'],
    ['a nested key', 'tally:1:2:reports'],
    ['a BullMQ key', 'tally:batches:id'],
  ])('returns undefined for %s', (_name, key) => {
    expect(parseStreamKey('tally', key)).toBeUndefined();
  });

  it('matches every partition stream with its SCAN pattern', () => {
    expect(streamKeyPattern('tally')).toBe('tally:*:reports');
  });

  it('reads the acceptance time from a stream entry id', () => {
    expect(streamEntryTime('1764158400000-7')).toBe(1764158400000);
    expect(streamEntryTime('1764158400000')).toBe(1764158400000);
  });
});

describe('hash-tagged keys (Redis Cluster)', () => {
  it('puts each partition stream under a tag of its own and parses it back', () => {
    expect(streamKey('tally', 3, true)).toBe('tally:{3}:reports');
    expect(parseStreamKey('tally', streamKey('tally', 3, true))).toBe(3);
    expect(parseStreamKey('tally', 'tally:{x}:reports')).toBeUndefined();
    expect(parseStreamKey('tally', 'tally:{}:reports')).toBeUndefined();
  });

  it('puts both queues under one tag, and leaves single-Redis names as they were', () => {
    expect(queuePrefix('tally', true)).toBe('{tally}');
    expect(queuePrefix('tally')).toBe('tally');
    expect(streamKey('tally', 3)).toBe('tally:3:reports');
  });

  it('computes the slots Redis Cluster documents', () => {
    // CRC16/XMODEM check value of "123456789" is 0x31C3; "foo" is slot 12182.
    expect(hashSlot('123456789')).toBe(0x31c3 % 16384);
    expect(hashSlot('foo')).toBe(12182);
    expect(hashSlot('{foo}:bar')).toBe(12182);
    expect(hashSlot('a{}b')).not.toBe(hashSlot('')); // an empty tag hashes the whole key
  });
});
