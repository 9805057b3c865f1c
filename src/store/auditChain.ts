// The audit log's hash chain: each entry's hash covers the previous hash and the entry itself, so changing,
// inserting or deleting any entry before the newest breaks every hash after it.
import { createHash } from 'node:crypto';
import { checkTimestamp } from './inputChecks.ts';
import type { AuditEntry, NewAuditEntry } from './store.ts';

export const GENESIS_HASH = '0'.repeat(64);

const ACTOR_TYPES: ReadonlySet<string> = new Set(['app', 'user', 'device', 'system', 'cli']);
const RESULTS: ReadonlySet<string> = new Set(['success', 'failure']);

/** JSON with object keys sorted at every level and no whitespace: one byte string per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    // undefined, functions and symbols have no JSON form; inside arrays JSON uses null for them.
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined && typeof obj[k] !== 'function' && typeof obj[k] !== 'symbol')
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The fields of an entry, and only those: extra properties a caller passed are neither stored nor hashed. */
function entryFields(e: NewAuditEntry): NewAuditEntry {
  return {
    at: e.at,
    actorType: e.actorType,
    actorId: e.actorId,
    actorName: e.actorName,
    action: e.action,
    target: e.target,
    result: e.result,
    status: e.status,
    clientIp: e.clientIp,
    correlationId: e.correlationId,
    detail: e.detail,
  };
}

/** What the hash covers: every field except id (assigned by the store) and the hash itself. */
function hashedFields(e: Omit<AuditEntry, 'id' | 'hash'>): Omit<AuditEntry, 'id' | 'hash'> {
  return { ...entryFields(e), prevHash: e.prevHash };
}

export function auditHash(prevHash: string, entry: Omit<AuditEntry, 'id' | 'hash' | 'prevHash'>): string {
  const body = canonicalJson(hashedFields({ ...entry, prevHash }));
  return createHash('sha256').update(`${prevHash}\n${body}`).digest('hex');
}

/**
 * Checks a new entry and returns it in the exact form it will be stored and read back (detail through JSON),
 * so the hash computed now is the hash a verifier recomputes from the stored row. Throws on bad input.
 */
export function normalizeAuditEntry(e: NewAuditEntry): NewAuditEntry {
  if (!ACTOR_TYPES.has(e.actorType)) throw new TypeError(`audit actorType must be one of ${[...ACTOR_TYPES].join(', ')}`);
  if (!RESULTS.has(e.result)) throw new TypeError('audit result must be success or failure');
  for (const k of ['at', 'actorId', 'action'] as const) {
    if (typeof e[k] !== 'string' || e[k] === '') throw new TypeError(`audit ${k} must be a non-empty string`);
  }
  for (const k of ['actorName', 'target', 'clientIp', 'correlationId'] as const) {
    if (e[k] !== null && typeof e[k] !== 'string') throw new TypeError(`audit ${k} must be a string or null`);
  }
  if (e.status !== null && !Number.isInteger(e.status)) throw new TypeError('audit status must be an integer or null');
  checkTimestamp('audit at', e.at);
  const detailText = JSON.stringify(e.detail === undefined ? null : e.detail);
  return { ...entryFields(e), detail: JSON.parse(detailText) as unknown };
}

export type ChainCheck = { ok: true } | { ok: false; badId: number; reason: string };

/**
 * Verifies consecutive entries (oldest first). `prevHash` is the hash before the first entry given: GENESIS_HASH
 * when starting at the beginning of the log, or the hash of the entry before a page.
 */
export function verifyAuditChain(entries: readonly AuditEntry[], prevHash = GENESIS_HASH): ChainCheck {
  let prev = prevHash;
  for (const e of entries) {
    if (e.prevHash !== prev) return { ok: false, badId: e.id, reason: 'prevHash does not match the previous entry' };
    if (auditHash(prev, e) !== e.hash) return { ok: false, badId: e.id, reason: 'hash does not match the entry' };
    prev = e.hash;
  }
  return { ok: true };
}
