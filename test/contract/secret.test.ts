// One constant-time comparison for every secret a client sends.
import { describe, expect, it } from 'vitest';
import { sameSecret, secretMatcher } from '../../src/contract/secret.js';

describe('sameSecret', () => {
  it('accepts the same secret', () => {
    expect(sameSecret('s3cret-token', 's3cret-token')).toBe(true);
    expect(sameSecret('', '')).toBe(true);
  });

  it.each([
    ['a different secret of the same length', 's3cret-tokeN'],
    ['a prefix', 's3cret'],
    ['a longer secret', 's3cret-token-and-more'],
    ['an empty one', ''],
    ['one differing only in case', 'S3CRET-TOKEN'],
  ])('refuses %s', (_name, given) => {
    expect(sameSecret(given, 's3cret-token')).toBe(false);
    expect(secretMatcher('s3cret-token')(given)).toBe(false);
  });

  it('answers the same through a matcher for one fixed secret', () => {
    const matches = secretMatcher('s3cret-token');
    expect(matches('s3cret-token')).toBe(true);
    expect(secretMatcher('')('')).toBe(true);
  });

  it('compares text as UTF-8, not as UTF-16 units', () => {
    expect(sameSecret('pässword', 'pässword')).toBe(true);
    expect(sameSecret('pässword', 'passwörd')).toBe(false);
  });
});
