// Proof Key for Code Exchange (RFC 7636), S256 only: the plain method would let anyone who sees the
// authorization request redeem the code.
import { createHash, timingSafeEqual } from 'node:crypto';

/** 43–128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1). */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** base64url of a SHA-256 digest: exactly 43 characters, no padding. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export const isCodeVerifier = (v: string): boolean => VERIFIER.test(v);
export const isS256Challenge = (c: string): boolean => S256_CHALLENGE.test(c);

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** Whether `verifier` is the one `challenge` was derived from (constant-time comparison). */
export function verifierMatches(verifier: string, challenge: string): boolean {
  if (!isCodeVerifier(verifier) || !isS256Challenge(challenge)) return false;
  return timingSafeEqual(Buffer.from(s256(verifier)), Buffer.from(challenge));
}
