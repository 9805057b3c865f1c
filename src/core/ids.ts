// Identifier shapes MDE clients expect.
import { createHash, randomUUID } from 'node:crypto';

export const newGuid = (): string => randomUUID();

/**
 * A GUID whose first 48 bits are the creation time in ms (RFC 9562 version 7). Ids of rows written in time order
 * land at the end of their primary-key index instead of on a random page: a batch of new actions dirties a few
 * index pages instead of one per row (the largest share of a SQLite commit's cost, measured in bench/api).
 * Still a GUID to every client; the 74 random bits keep it unguessable.
 */
export function newTimeOrderedGuid(nowMs: number = Date.now()): string {
  const t = Math.max(0, Math.floor(nowMs)).toString(16).padStart(12, '0').slice(-12);
  // randomUUID draws from Node's pooled entropy; its version nibble (index 14) is replaced, its variant is kept.
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

/** `n` (≤ 30) random hex digits from pooled entropy: randomBytes per call costs ~10 µs on a hot path. */
export function randomHex(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError('randomHex: 0..30 digits');
  const u = randomUUID();
  // The 30 digits that are random (version at 14 and variant at 19 are fixed).
  return (u.slice(0, 8) + u.slice(9, 13) + u.slice(15, 18) + u.slice(20, 23) + u.slice(24, 36)).slice(0, n);
}

/** A 40-hex machine id derived from the device's public key: stable for a key, unguessable without it. */
export function machineIdFromPublicKey(publicKeyB64: string): string {
  return createHash('sha1').update('tourniquet-machine\n').update(publicKeyB64).digest('hex');
}
