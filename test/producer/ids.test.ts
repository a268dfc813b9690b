import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createUuidV7, fnv1a32, partitionOf } from '../../src/producer/ids.js';
import { LogThrottle } from '../../src/producer/log-throttle.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('UUIDv7 report ids', () => {
  it('carries the millisecond timestamp, version 7 and the RFC variant', () => {
    const id = createUuidV7(() => 1_764_150_000_123)();
    expect(id).toMatch(UUID_V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(1_764_150_000_123);
  });

  it('sorts in mint order within one millisecond, across a counter overflow and a clock step back', () => {
    let now = 1_764_150_000_000;
    const next = createUuidV7(() => now);
    const ids: string[] = [];
    for (let i = 0; i < 5_000; i++) ids.push(next()); // more than the 12-bit counter holds
    now -= 10;
    for (let i = 0; i < 10; i++) ids.push(next());
    now += 1_000;
    ids.push(next());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(UUID_V7);
  });

  it('never reuses random bits, across many draws of the random pool', () => {
    let now = 1_764_150_000_000;
    const next = createUuidV7(() => (now += 1));
    const tails = Array.from({ length: 5_000 }, () => next().slice(19).replace('-', ''));
    expect(new Set(tails).size).toBe(tails.length);
    // The variant digit is 8, 9, a or b, each about a quarter of the time.
    const variants = new Map<string, number>();
    for (const tail of tails) variants.set(tail[0] ?? '', (variants.get(tail[0] ?? '') ?? 0) + 1);
    expect([...variants.keys()].sort()).toEqual(['8', '9', 'a', 'b']);
    for (const count of variants.values()) expect(count).toBeGreaterThan(1_000);
  });
});

describe('partitioning', () => {
  it('is FNV-1a 32-bit (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes of any text, ASCII or not', () => {
    const overBytes = (text: string) => {
      let hash = 0x811c9dc5;
      for (const byte of Buffer.from(text, 'utf8')) hash = Math.imul(hash ^ byte, 0x01000193);
      return hash >>> 0;
    };
    for (const text of ['é', 'report-é', 'a\u0000b', '😀x', 'x\u007f\u0080', '\ud800']) {
      expect(fnv1a32(text)).toBe(overBytes(text));
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => fnv1a32(text) === overBytes(text)),
    );
  });

  it('is stable and spreads time-ordered ids over every partition', () => {
    const next = createUuidV7();
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4_000; i++) {
      const id = next();
      const p = partitionOf(id, 4);
      expect(partitionOf(id, 4)).toBe(p);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });
});

describe('LogThrottle', () => {
  it('allows one line per interval and counts what it suppressed', () => {
    let now = 0;
    const throttle = new LogThrottle(10_000, () => now);
    expect(throttle.take()).toBe(0);
    now = 5_000;
    expect(throttle.take()).toBeUndefined();
    expect(throttle.take()).toBeUndefined();
    now = 10_000;
    expect(throttle.take()).toBe(2);
    now = 19_999;
    expect(throttle.take()).toBeUndefined();
  });
});
