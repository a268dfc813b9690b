// Compares a secret a client sent (gateway token, dashboard credentials) with the
// configured one. Only node:crypto, so the producer can import it and stay thin. Must
// never leak, by timing, which characters matched or how long the secret is.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** True when `given` equals `expected`; constant-time whatever the lengths (digests compared). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** `sameSecret` against one fixed secret, its digest computed once instead of per call. */
export function secretMatcher(expected: string): (given: string) => boolean {
  const expectedDigest = digest(expected);
  return (given) => timingSafeEqual(digest(given), expectedDigest);
}
